//! The model library: one list of every model on the machine, derived from what the disk holds (the Hugging Face
//! cache and read-only library folders) plus the user's intent (types, active models) and the download queue.
//! Also what one does with a model: details ([`list`]), delete ([`delete`]), verify and repair ([`verify`]), and
//! the storage they take ([`storage`]).

pub mod adapters;
pub mod delete;
pub mod evict;
pub mod fit;
pub mod index;
pub mod list;
pub mod relocate;
pub mod storage;
pub mod usage;
pub mod verify;

// The domain types, where callers of the library have always found them.
pub use crate::model::{kind, LibraryModel, ModelFormat, ModelSource, ModelStatus, ModelType, TypeOrigin};
pub use list::{LibraryQuery, ModelDetails, SortKey};

use crate::error::{Coded, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("no model \"{0}\" in the library")]
    NotFound(String),
    #[error("{id} has no revision \"{revision}\" on this machine")]
    RevisionNotFound { id: String, revision: String },
    #[error("{id} is the active {model_type} model: activate another one or deactivate it first")]
    InUse { id: String, model_type: String },
    #[error("{id} is being downloaded: cancel the download first")]
    Downloading { id: String },
    #[error("{id} lives in the read-only library folder {folder}: remove it there")]
    ReadOnly { id: String, folder: String },
    #[error(transparent)]
    UnknownType(#[from] crate::model::UnknownType),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
    #[error("repairing {id} failed: {}", .error.message)]
    RepairFailed { id: String, error: crate::ErrorPayload },
    #[error("{what} failed: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl LibraryError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> LibraryError {
        LibraryError::Io { what: what.into(), source }
    }
}

impl Coded for LibraryError {
    fn code(&self) -> ErrorCode {
        match self {
            LibraryError::NotFound(_) | LibraryError::RevisionNotFound { .. } => ErrorCode::NotFound,
            // Not in a state that allows it: active, or being downloaded.
            LibraryError::InUse { .. } | LibraryError::Downloading { .. } => ErrorCode::Conflict,
            LibraryError::UnknownType(_) => ErrorCode::InvalidInput,
            LibraryError::ReadOnly { .. } => ErrorCode::Permission,
            LibraryError::Cache(e) => e.code(),
            LibraryError::Settings(e) => e.code(),
            LibraryError::Download(e) => e.code(),
            LibraryError::RepairFailed { error, .. } => error.code,
            LibraryError::Io { source, .. } => ErrorCode::of_io(source),
        }
    }
}
