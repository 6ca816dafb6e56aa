//! The starter catalog: a few small, well-known models per type, kept as data in `crates/core/data/
//! starter-catalog.json` and built into the app, so it shows without the network.

use crate::download::DownloadRequest;
use crate::library::ModelType;
use serde::{Deserialize, Serialize};
use std::path::Path;
use ts_rs::TS;

/// The catalog file as shipped.
pub const STARTER_CATALOG_JSON: &str = include_str!("../../data/starter-catalog.json");

/// The types the catalog has entries for, in the order it shows them.
pub const CATALOG_TYPES: [ModelType; 5] = [
    ModelType::TextGeneration,
    ModelType::Embedding,
    ModelType::AudioToText,
    ModelType::TextToAudio,
    ModelType::TextToImage,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub model_type: ModelType,
    /// What is downloaded: these files, or the whole repo when empty.
    #[serde(default)]
    pub files: Vec<String>,
    /// The download size in bytes, as the hub listed it when the entry was chosen.
    pub size: u64,
    pub purpose: String,
    pub license: Option<String>,
    /// Already in the local cache (set when the catalog is read for a cache).
    #[serde(default)]
    pub installed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StarterCatalog {
    pub entries: Vec<CatalogEntry>,
    /// The hub cannot be used (`HF_HUB_OFFLINE`): the catalog shows, but nothing in it can be downloaded.
    #[serde(default)]
    pub offline: bool,
}

#[derive(Deserialize)]
struct CatalogFile {
    entries: Vec<CatalogEntry>,
}

/// Why a catalog file is not usable, naming the entry.
#[derive(Debug, thiserror::Error)]
#[error("the starter catalog is invalid: {0}")]
pub struct CatalogError(pub String);

/// Reads and checks a catalog: ids are repo ids, types are among [`CATALOG_TYPES`], sizes are set, file paths
/// stay inside the repo, and no id repeats.
pub fn parse(json: &str) -> Result<Vec<CatalogEntry>, CatalogError> {
    let file: CatalogFile = serde_json::from_str(json).map_err(|e| CatalogError(e.to_string()))?;
    let mut seen = std::collections::HashSet::new();
    for e in &file.entries {
        let fail = |why: String| Err(CatalogError(format!("{}: {why}", e.id)));
        if let Err(err) = crate::cache::RepoId::parse(&e.id) {
            return fail(err.to_string());
        }
        if !CATALOG_TYPES.contains(&e.model_type) {
            return fail(format!("type {} is not one the catalog shows", e.model_type.as_str()));
        }
        if e.size == 0 {
            return fail("no size".into());
        }
        if e.name.trim().is_empty() || e.purpose.trim().is_empty() {
            return fail("no name or purpose".into());
        }
        for f in &e.files {
            if crate::cache::write::check_repo_path(f).is_err() {
                return fail(format!("the file \"{f}\" is not a path inside the repo"));
            }
        }
        if !seen.insert(e.id.clone()) {
            return fail("listed twice".into());
        }
    }
    Ok(file.entries)
}

/// The shipped catalog, each entry marked installed when the cache holds its files.
pub fn starter(cache_dir: &Path, offline: bool) -> StarterCatalog {
    let mut entries = parse(STARTER_CATALOG_JSON).expect("the shipped catalog is checked by its test");
    for e in &mut entries {
        e.installed = super::installed(cache_dir, &e.id, &e.files);
    }
    StarterCatalog { entries, offline }
}

impl CatalogEntry {
    /// The download this entry stands for.
    pub fn request(&self) -> DownloadRequest {
        DownloadRequest { repo: self.id.clone(), files: self.files.clone(), ..DownloadRequest::default() }
    }
}
