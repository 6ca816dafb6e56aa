//! The hub's failures, told apart so that each gets its own message and fix.

use crate::error::{Coded, ErrorCode};

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
    #[error("{url} answered {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status { url: String, status: u16, message: Option<String> },
    #[error("the hub's answer for {what} could not be read: {reason}")]
    Protocol { what: String, reason: String },
}

impl HubError {
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
            HubError::Network { .. } => true,
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
            | HubError::Status { .. }
            | HubError::Protocol { .. } => ErrorCode::Network,
            HubError::TokenRequired { .. } | HubError::AccessDenied { .. } | HubError::TokenInvalid { .. } => {
                ErrorCode::Auth
            }
            HubError::RepoNotFound { .. } | HubError::RevisionNotFound { .. } | HubError::FileNotFound { .. } => {
                ErrorCode::NotFound
            }
        }
    }
}
