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
            // Through an `https://` tunnel every answer is the server's own.
            401 if url.scheme() == "http" => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut response = http::Response::builder().status(status);
        for (k, v) in headers {
            response = response.header(*k, *v);
        }
        reqwest::Response::from(response.body(Vec::<u8>::new()).unwrap())
    }

    #[test]
    fn only_the_proxy_s_own_refusals_are_said_to_be_the_proxy_s() {
        let with = Proxies::from_vars(|n| {
            matches!(n, "HTTP_PROXY" | "HTTPS_PROXY").then(|| "http://u:p@proxy.corp:3128".to_string())
        });
        let plain = reqwest::Url::parse("http://mirror.lan:8765/api/models/a/b").unwrap();
        let tunneled = reqwest::Url::parse("https://huggingface.co/api/models/a/b").unwrap();
        let refused = |url: &reqwest::Url, r: reqwest::Response| HubError::from_proxy_answer(&with, url, &r);
        assert!(matches!(refused(&tunneled, answer(407, &[])), Some(HubError::ProxyRefused { status: 407, .. })));
        assert!(matches!(refused(&plain, answer(401, &[])), Some(HubError::ProxyRefused { status: 401, .. })));
        // The hub's own 401s: through a tunnel, forwarded (Via), or in the hub's shape (X-Error-Code).
        assert!(refused(&tunneled, answer(401, &[])).is_none(), "a tunnel's answers are the server's");
        assert!(refused(&plain, answer(401, &[("via", "1.1 squid")])).is_none());
        assert!(refused(&plain, answer(401, &[("x-error-code", "RepoNotFound")])).is_none());
        assert!(refused(&plain, answer(404, &[])).is_none());
        let without = Proxies::from_vars(|n| (n == "HTTP_PROXY").then(|| "http://proxy.corp:3128".to_string()));
        assert!(HubError::from_proxy_answer(&without, &plain, &answer(401, &[])).is_none(), "no credentials were sent");
    }
}
