//! The hub's failures, told apart so that each gets its own message and fix.

use crate::error::{Coded, ErrorCode};
use crate::proxy::Proxies;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("HF_HUB_OFFLINE is set, so {what} cannot be fetched: unset it to use the network")]
    Offline { what: String },
    #[error("{repo} is gated and needs a token with access: set HF_TOKEN or add one in Settings")]
    TokenRequired { repo: String },
    #[error("your token has no access to {repo}: accept its terms or request access at {endpoint}/{repo}")]
    AccessDenied { repo: String, endpoint: String },
    #[error("the hub rejected your token for {repo}: it is invalid or expired; set a new one in HF_TOKEN or Settings")]
    TokenInvalid { repo: String },
    #[error("{repo} was not found on {endpoint}: check the id (if the repo is private, set HF_TOKEN)")]
    RepoNotFound { repo: String, endpoint: String },
    #[error("{repo} has no revision \"{revision}\": use a branch, tag or commit that exists (default: main)")]
    RevisionNotFound { repo: String, revision: String },
    #[error("{repo} has no file \"{path}\" at {revision}")]
    FileNotFound { repo: String, revision: String, path: String },
    #[error("could not reach {url}: {reason}")]
    Network { url: String, reason: String },
    #[error(
        "the proxy {proxy} refused the request for {url} (it answered {status} itself): it wants a user and \
         password, or not these; give them as http://USER:PASSWORD@HOST:PORT in the proxy setting (mm config set \
         proxy ...) or in HTTPS_PROXY"
    )]
    ProxyRefused { proxy: String, url: String, status: u16 },
    #[error(
        "could not reach {url} through the proxy {proxy}: {reason}; check the proxy setting or HTTPS_PROXY, \
         HTTP_PROXY and ALL_PROXY (NO_PROXY names the hosts reached directly)"
    )]
    ProxyUnreachable { proxy: String, url: String, reason: String },
    #[error("{url} answered {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status { url: String, status: u16, message: Option<String> },
    #[error("the hub's answer for {what} could not be read: {reason}")]
    Protocol { what: String, reason: String },
}

impl HubError {
    /// A transport failure of a request for `url` that went through one of `proxies`: the proxy's refusal of a
    /// tunnel (`407`) or no connection through it names the proxy; anything else is [`HubError::from_reqwest`].
    pub fn from_transport(proxies: &Proxies, url: &reqwest::Url, err: &reqwest::Error) -> HubError {
        let plain = HubError::from_reqwest(url, err);
        let (Some(proxy), HubError::Network { url, reason }) = (proxies.for_url(url), &plain) else { return plain };
        if reason.contains("proxy authorization required") {
            HubError::ProxyRefused { proxy, url: url.clone(), status: 407 }
        } else if err.is_connect() {
            HubError::ProxyUnreachable { proxy, url: url.clone(), reason: reason.clone() }
        } else {
            plain
        }
    }

    /// The proxy's own refusal of a plain `http://` request, if `response` is one: a `407`, or a `401` that no
    /// server behind the proxy sent (no `Via` header, which a proxy adds to what it forwards, and none of the hub's
    /// error headers) to a request that carried the proxy's credentials, as tinyproxy answers wrong ones.
    pub fn from_proxy_answer(proxies: &Proxies, url: &reqwest::Url, response: &reqwest::Response) -> Option<HubError> {
        let refused = match response.status().as_u16() {
            407 => true,
            401 => {
                let headers = response.headers();
                proxies.has_credentials_for(url)
                    && !headers.contains_key("via")
                    && !headers.contains_key("x-error-code")
            }
            _ => false,
        };
        refused.then(|| HubError::ProxyRefused {
            proxy: proxies.for_url(url).unwrap_or_else(|| "on the way".into()),
            url: crate::logs::redact_url(url.as_str()),
            status: response.status().as_u16(),
        })
    }

    /// A transport failure (connect, reset, body) as a network error that names the URL and every cause.
    pub fn from_reqwest(url: &reqwest::Url, err: &reqwest::Error) -> HubError {
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        // A signed redirect target's signature stays out of messages and logs: the URL asked for, and the one the
        // error names (a redirect's error names the hop it failed on).
        for named in [Some(url), err.url()].into_iter().flatten() {
            reason = reason.replace(named.as_str(), &crate::logs::redact_url(named.as_str()));
        }
        HubError::Network { reason, url: crate::logs::redact_url(url.as_str()) }
    }

    /// Whether trying again may succeed: the network, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            HubError::Network { .. } | HubError::ProxyUnreachable { .. } => true,
            HubError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl Coded for HubError {
    fn code(&self) -> ErrorCode {
        match self {
            HubError::Offline { .. }
            | HubError::Network { .. }
            | HubError::ProxyUnreachable { .. }
            | HubError::Status { .. }
            | HubError::Protocol { .. } => ErrorCode::Network,
            HubError::TokenRequired { .. }
            | HubError::AccessDenied { .. }
            | HubError::TokenInvalid { .. }
            | HubError::ProxyRefused { .. } => ErrorCode::Auth,
            HubError::RepoNotFound { .. } | HubError::RevisionNotFound { .. } | HubError::FileNotFound { .. } => {
                ErrorCode::NotFound
            }
        }
    }
}
