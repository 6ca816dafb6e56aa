//! What the app is about, below every source: a model's type and format, where it comes from, its status, and
//! the one record of a model that every source produces and every face shows.

pub mod kind;

pub use kind::{ModelFormat, ModelType, TypeOrigin, UnknownType};

use crate::error::ErrorPayload;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Where a model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ModelSource {
    /// The Hugging Face cache this app downloads into.
    HuggingFace,
    /// A read-only library folder the user added.
    Folder,
    /// Imported from elsewhere on disk (referenced, or copied into the app's models folder).
    Imported,
    /// Downloaded from a direct URL into the app's models folder.
    Url,
    /// A model of the local Ollama server.
    Ollama,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    Queued,
    Downloading,
    Available,
    Partial,
    Error,
    Active,
}

/// One model in the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryModel {
    /// The repo id, `org/name`.
    pub id: String,
    /// The name part of the id.
    pub display_name: String,
    pub source: ModelSource,
    pub model_type: ModelType,
    pub type_origin: TypeOrigin,
    pub status: ModelStatus,
    /// The branch or tag of the main revision (`main` first), if a ref names it.
    pub revision: Option<String>,
    pub commit: Option<String>,
    /// Revisions cached.
    pub revisions: u32,
    /// Files of the main revision.
    pub files: u32,
    /// Bytes on disk, every revision, shared blobs once.
    pub size: u64,
    pub format: ModelFormat,
    /// When the last download started (recorded by this app), else when the newest file was written; Unix seconds.
    pub downloaded_at: Option<u64>,
    /// When it was last activated; Unix seconds.
    pub last_used: Option<u64>,
    /// The repo folder.
    pub path: String,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
    pub architectures: Vec<String>,
    pub tags: Vec<String>,
    pub gated: bool,
    /// The download's failure, for status `error`.
    pub error: Option<ErrorPayload>,
    /// The download in the queue, for statuses `queued`, `downloading` and `error`.
    pub download_id: Option<u64>,
}

/// A model imported from elsewhere on disk, as the settings keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ImportedModel {
    /// `local/{name}`.
    pub id: String,
    /// The file or folder, where it was (a reference) or in the models folder (a copy).
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub format: ModelFormat,
    /// The type its content suggested when imported.
    pub guessed_type: ModelType,
    /// Unix seconds.
    pub added_at: u64,
    /// Copied into the app's models folder (deleting it deletes the copy); else referenced in place (deleting it
    /// only forgets it).
    pub copied: bool,
}
