//! Downloads into the cache. A hub repo is resolved to one commit and its files chosen ([`plan`], with
//! [`filter`]'s globs), then fetched file by file ([`transfer`]): through the Xet CAS ([`xet`]) where the hub says
//! so, else over HTTP, as one stream ([`ranged`]) or in pieces over several connections for a large file
//! ([`parts`]), both from one origin ([`origin`]), hashed as they are written ([`hasher`]), counted and throttled
//! ([`progress`]). A file is visible under `snapshots/` only once verified. A URL takes [`url`] instead of plan and
//! transfer. [`queue`] runs them: a concurrency limit, pause, resume, cancel, a journal across restarts;
//! [`marker`] tells other processes that `mm download` is fetching a repo.

pub mod filter;
mod hasher;
pub mod marker;
mod origin;
mod parts;
pub mod plan;
mod progress;
pub mod queue;
mod ranged;
mod transfer;
pub mod url;
pub mod xet;

pub use crate::settings::DEFAULT_CONNECTIONS_PER_FILE;
pub use plan::{preview, DownloadPreview, PreviewFile};
pub use queue::{DownloadOptions, Downloads};

use crate::cache::layout::InvalidRepoId;
use crate::error::{Coded, ErrorCode, ErrorPayload};
use crate::hub::HubError;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What to download: a repo, a revision (branch, tag or commit; default `main`), and optional globs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadRequest {
    pub repo: String,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Exactly these paths (used by repair); empty for all that the globs select.
    #[serde(default)]
    pub files: Vec<String>,
    /// A direct download from a URL into the app's models folder instead of a hub repo (`repo` is then the id it
    /// shows under, `local/{name}`).
    #[serde(default)]
    pub url: Option<url::UrlSource>,
    /// Remove the models the preview's `room` names (least recently used, nobody's) when the storage limit or the
    /// free-space floor asks room for it; without it, such a download is refused before its first byte.
    #[serde(default)]
    pub evict: bool,
}

impl DownloadRequest {
    /// The same request with `repo` reduced to `org/name`: a pasted hub URL or `org/name@rev` gives its revision
    /// unless one is set. Fails with the reason when the repo id is malformed.
    pub fn normalized(mut self) -> Result<DownloadRequest, DownloadError> {
        if let Some(source) = self.url.as_mut() {
            self.repo = source.check()?;
            self.revision = None;
            return Ok(self);
        }
        let (repo, revision) = crate::hub::parse_repo_reference(&self.repo)?;
        self.repo = repo.to_string();
        if self.revision.as_deref().is_none_or(str::is_empty) {
            self.revision = revision;
        }
        self.include.retain(|p| !p.trim().is_empty());
        self.exclude.retain(|p| !p.trim().is_empty());
        Ok(self)
    }

    pub fn revision(&self) -> &str {
        if self.url.is_some() {
            // A file from a URL has no revision.
            return "";
        }
        self.revision.as_deref().filter(|r| !r.is_empty()).unwrap_or("main")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DownloadState {
    Queued,
    Downloading,
    /// Re-hashing bytes already on disk before resuming.
    Verifying,
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl DownloadState {
    pub fn is_finished(self) -> bool {
        matches!(self, DownloadState::Completed | DownloadState::Failed | DownloadState::Cancelled)
    }
}

/// Where one download stands; sent at most ~10 times a second while bytes move, and on every state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadProgress {
    pub id: u64,
    pub repo: String,
    pub revision: String,
    /// The commit the revision resolved to, once known.
    pub commit: Option<String>,
    pub state: DownloadState,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub files_done: u32,
    pub files_total: u32,
    /// Over the last few seconds.
    pub bytes_per_second: u64,
    pub eta_seconds: Option<u64>,
    pub error: Option<ErrorPayload>,
    /// How the bytes came: "Xet", "HTTP", or HTTP after Xet failed, with the reason.
    pub transport: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleKind {
    Queued,
    Started,
    Paused,
    Resumed,
    Completed,
    Failed,
    Cancelled,
    Deleted,
    Activated,
    Deactivated,
    Imported,
}

/// A model's state changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelLifecycle {
    pub kind: LifecycleKind,
    pub repo: String,
    pub revision: String,
    pub download_id: Option<u64>,
    pub error: Option<ErrorPayload>,
}

/// What a [`Downloads`] subscriber receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(tag = "type", content = "payload", rename_all = "camelCase")]
pub enum DownloadEvent {
    Progress(DownloadProgress),
    Lifecycle(ModelLifecycle),
    /// Events were missed (another machine's stream was reset, or dropped this client): whoever shows state read
    /// it again.
    Stale,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    InvalidRepoId(#[from] InvalidRepoId),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("refusing to download {repo}: the hub listed the unsafe path {path:?} ({reason})")]
    UnsafePath { repo: String, path: String, reason: &'static str },
    #[error("refusing to download {repo}: the hub gave {path:?} the malformed hash {blob:?}")]
    UnsafeBlob { repo: String, path: String, blob: String },
    #[error("no file of {repo} at {revision} matches the include/exclude patterns")]
    NothingSelected { repo: String, revision: String },
    #[error(
        "{path} of {repo} failed verification: expected {algorithm} {expected}, got {actual}; the bytes were deleted"
    )]
    ChecksumMismatch { repo: String, path: String, algorithm: &'static str, expected: String, actual: String },
    #[error("{path} of {repo} should be {expected} bytes but the server sent {actual}; the bytes were deleted")]
    SizeMismatch { repo: String, path: String, expected: u64, actual: u64 },
    #[error("not enough disk space for {repo}: it needs {} more but {} has only {} free", crate::format::bytes(*needed), .path, crate::format::bytes(*free))]
    InsufficientSpace { repo: String, path: String, needed: u64, free: u64 },
    #[error("{what} failed: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} of {repo} stopped arriving: {reason} (tried {attempts} times)")]
    Transfer { repo: String, path: String, reason: String, attempts: u32 },
    #[error("there is no download {0}")]
    UnknownDownload(u64),
    #[error("the download was cancelled")]
    Cancelled,
    #[error("cannot download {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl DownloadError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> DownloadError {
        DownloadError::Io { what: what.into(), source }
    }
}

impl Coded for DownloadError {
    fn code(&self) -> ErrorCode {
        match self {
            DownloadError::InvalidRepoId(_) | DownloadError::UnsafePath { .. } | DownloadError::UnsafeBlob { .. } => {
                ErrorCode::InvalidInput
            }
            DownloadError::Hub(e) => e.code(),
            DownloadError::NothingSelected { .. } | DownloadError::UnknownDownload(_) => ErrorCode::NotFound,
            DownloadError::ChecksumMismatch { .. } | DownloadError::SizeMismatch { .. } => ErrorCode::ChecksumMismatch,
            DownloadError::InsufficientSpace { .. } => ErrorCode::InsufficientSpace,
            DownloadError::Io { source, .. } => ErrorCode::of_io(source),
            DownloadError::Transfer { .. } => ErrorCode::Network,
            DownloadError::Cancelled => ErrorCode::Cancelled,
            DownloadError::InvalidUrl { .. } => ErrorCode::InvalidInput,
        }
    }
}
