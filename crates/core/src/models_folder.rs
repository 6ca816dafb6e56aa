//! The app's own models folder (`{data}/models`): files downloaded from URLs and imports copied in, each with a
//! record beside it (`.model-manager/{name}.json`) of where it came from and its hashes. It sits below both the
//! URL download (`download::url`), which writes files and records, and `local`, which lists and imports them.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The prefix of ids of imported and downloaded-by-URL models: `local/{name}`.
pub const LOCAL_PREFIX: &str = "local/";

/// What is recorded beside a file in the models folder: where it came from and its hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    pub sha256: String,
    #[serde(default)]
    pub md5: Option<String>,
    /// The URL it was downloaded from, if it was.
    #[serde(default)]
    pub url: Option<String>,
    pub added_at: u64,
}

/// The app's own models folder: URL downloads and copied imports.
pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

/// Where the record of `name` in the models folder is kept.
pub fn record_path(models_dir: &Path, name: &str) -> PathBuf {
    models_dir.join(".model-manager").join(format!("{name}.json"))
}

pub fn read_record(models_dir: &Path, name: &str) -> Option<FileRecord> {
    serde_json::from_slice(&std::fs::read(record_path(models_dir, name)).ok()?).ok()
}

pub fn write_record(models_dir: &Path, name: &str, record: &FileRecord) -> std::io::Result<()> {
    crate::disk::write_atomic(&record_path(models_dir, name), &serde_json::to_vec_pretty(record).unwrap(), 0o644)
}

/// A file name made safe to create in a folder: no path separators, no control characters, not hidden, not
/// empty, at most 200 bytes.
pub fn sanitize_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        return None;
    }
    let mut cut = cleaned.len().min(200);
    while !cleaned.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(cleaned[..cut].to_string())
}
