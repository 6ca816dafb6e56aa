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
    /// When it was last used: activated, loaded, asked for by a request, served by the mirror, or downloaded
    /// ([`crate::library::usage`]); Unix seconds.
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
    /// When it is an adapter (a LoRA): what it is and the base it runs on.
    #[serde(default)]
    pub adapter: Option<Adapter>,
    /// The adapters linked to it (a base), by id.
    #[serde(default)]
    pub adapters: Vec<String>,
    /// Pinned: never removed to make room (`mm pin`).
    #[serde(default)]
    pub pinned: bool,
}

/// An adapter: a LoRA that runs on a base model, as the library found it and linked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Adapter {
    /// `gguf`: a GGUF LoRA llama-server applies; `peft`: a PEFT folder (`adapter_config.json`), for the programs
    /// that read them.
    pub format: AdapterFormat,
    /// The base it names (`org/name`), if it names one.
    pub base_named: Option<String>,
    /// The installed model it runs on, when one is linked.
    pub base: Option<String>,
    /// How the base was found.
    pub linked_by: Option<LinkedBy>,
    /// Why no base is linked, with what to do.
    pub problem: Option<String>,
    /// The GGUF adapter file (what `--lora` takes).
    pub file: Option<String>,
    pub rank: Option<u64>,
    pub alpha: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdapterFormat {
    Gguf,
    Peft,
}

/// How an adapter's base was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkedBy {
    /// The user linked it by hand.
    User,
    /// The adapter names it (its metadata, `adapter_config.json`, or its card).
    Named,
    /// The only installed model whose architecture and tensor shapes it fits.
    Fits,
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
