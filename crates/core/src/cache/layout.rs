//! Names in the cache: repo ids, repo kinds, the `models--org--name` folder names, and the tree record this
//! app keeps beside a snapshot so that a missing file can be told from a file the repo never had.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use ts_rs::TS;

/// What a cached repo holds; the prefix of its folder name (`models--`, `datasets--`, `spaces--`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    Model,
    Dataset,
    Space,
}

impl RepoKind {
    pub fn folder_prefix(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
            RepoKind::Space => "spaces",
        }
    }

    fn from_folder_prefix(prefix: &str) -> Option<RepoKind> {
        match prefix {
            "models" => Some(RepoKind::Model),
            "datasets" => Some(RepoKind::Dataset),
            "spaces" => Some(RepoKind::Space),
            _ => None,
        }
    }
}

/// A hub repo id, `org/name` or `name`, validated by the hub's own rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId(String);

/// Why a repo id is not valid; the message names the id and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{id}\" is not a valid repo id: {reason} (expected org/name, e.g. Qwen/Qwen2.5-0.5B-Instruct)")]
pub struct InvalidRepoId {
    pub id: String,
    pub reason: &'static str,
}

const MAX_REPO_ID_LEN: usize = 96;

impl RepoId {
    /// Parses and validates `org/name` or `name`: letters, digits, `-`, `_` and `.`; no `--` or `..`; no part
    /// that starts or ends with `-` or `.`; at most 96 characters.
    pub fn parse(id: &str) -> Result<RepoId, InvalidRepoId> {
        let fail = |reason| Err(InvalidRepoId { id: id.to_string(), reason });
        if id.is_empty() {
            return fail("it is empty");
        }
        if id.len() > MAX_REPO_ID_LEN {
            return fail("it is longer than 96 characters");
        }
        let parts: Vec<&str> = id.split('/').collect();
        if parts.len() > 2 {
            return fail("it has more than one '/'");
        }
        for part in &parts {
            if part.is_empty() {
                return fail("a part is empty");
            }
            if !part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
                return fail("only letters, digits, '-', '_' and '.' are allowed");
            }
            if part.contains("--") || part.contains("..") {
                return fail("'--' and '..' are not allowed");
            }
            if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
                return fail("a part cannot start or end with '-' or '.'");
            }
        }
        Ok(RepoId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cache folder name for this repo: `models--org--name`.
    pub fn folder_name(&self, kind: RepoKind) -> String {
        format!("{}--{}", kind.folder_prefix(), self.0.replace('/', "--"))
    }

    /// The repo's folder under `cache_dir`.
    pub fn folder(&self, cache_dir: &Path, kind: RepoKind) -> PathBuf {
        cache_dir.join(self.folder_name(kind))
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a cache folder name such as `models--org--name` back into its kind and repo id; `None` when the name
/// is not a cache entry.
pub fn parse_folder_name(name: &str) -> Option<(RepoKind, RepoId)> {
    let (prefix, rest) = name.split_once("--")?;
    let kind = RepoKind::from_folder_prefix(prefix)?;
    let id = RepoId::parse(&rest.replace("--", "/")).ok()?;
    Some((kind, id))
}

/// Whether `s` looks like a full git commit id (40 lowercase hex digits).
pub fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A sha256 (64 hex digits) for LFS files, a git sha1 (40) for the rest: anything else could name a path.
pub fn is_blob_name(blob: &str, lfs: bool) -> bool {
    let len = if lfs { 64 } else { 40 };
    blob.len() == len && blob.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Appended to a partial file's name: the record of which of its pieces are on disk (a file fetched over several
/// connections), which belongs to that partial file and goes with it.
pub const PIECES_SUFFIX: &str = ".ranges";

/// Where this app records, beside a repo's snapshots, the full file list of a commit it downloads. The folder
/// starts with a dot so `huggingface_hub`'s cache scan passes over it.
pub const TREE_RECORD_DIR: &str = ".model-manager/trees";

/// The tree record of `commit` inside a repo folder; a writer checks `commit` is a commit id first.
pub fn tree_record_path(repo_dir: &Path, commit: &str) -> PathBuf {
    repo_dir.join(TREE_RECORD_DIR).join(format!("{commit}.json"))
}

/// What the hub said about a repo when this app last resolved it, kept for offline type inference and details.
pub const HUB_INFO_RECORD: &str = ".model-manager/info.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HubInfoRecord {
    pub pipeline_tag: Option<String>,
    pub tags: Vec<String>,
    pub library_name: Option<String>,
    pub gated: bool,
    /// Whether the hub said the repo is private; none in a record an older version wrote (not known to be public).
    pub private: Option<bool>,
    /// The model card's metadata block (license, language, base_model, ...), as the hub returned it.
    pub card_data: Option<serde_json::Value>,
    /// When the last download of this repo started, in Unix seconds.
    pub downloaded_at: Option<u64>,
}

/// The hub's word on a repo kept in `repo_dir`, if this app recorded one (another tool records nothing).
pub fn read_hub_info(repo_dir: &Path) -> Option<HubInfoRecord> {
    std::fs::read(repo_dir.join(HUB_INFO_RECORD)).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

/// The complete file list of one commit, as the hub listed it when this app resolved a download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeRecord {
    pub commit: String,
    pub files: Vec<TreeRecordFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeRecordFile {
    pub path: String,
    pub size: u64,
    /// The blob name: the sha256 of an LFS file or the git blob sha1 of a small one.
    pub blob: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hub_style_ids() {
        for id in ["gpt2", "Qwen/Qwen2.5-0.5B-Instruct", "org_1/name.v2", "a/b"] {
            assert_eq!(RepoId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_malformed_ids_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("a/b/c", "more than one"),
            ("/name", "part is empty"),
            ("org/", "part is empty"),
            ("org/na me", "only letters"),
            ("org/../x", "more than one"),
            ("org/..", "'--' and '..'"),
            ("org--x/name", "'--' and '..'"),
            ("-org/name", "start or end"),
            ("org/name.", "start or end"),
            ("org/na\0me", "only letters"),
        ];
        for (id, reason) in cases {
            let err = RepoId::parse(id).unwrap_err();
            assert!(err.reason.contains(reason), "{id:?}: {}", err.reason);
            assert!(err.to_string().contains("is not a valid repo id"));
        }
        assert!(RepoId::parse(&"a".repeat(97)).is_err());
    }

    #[test]
    fn folder_names_round_trip() {
        let id = RepoId::parse("Qwen/Qwen2.5-0.5B").unwrap();
        assert_eq!(id.folder_name(RepoKind::Model), "models--Qwen--Qwen2.5-0.5B");
        assert_eq!(parse_folder_name("models--Qwen--Qwen2.5-0.5B"), Some((RepoKind::Model, id)));
        let single = RepoId::parse("gpt2").unwrap();
        assert_eq!(parse_folder_name("models--gpt2"), Some((RepoKind::Model, single.clone())));
        assert_eq!(single.folder_name(RepoKind::Dataset), "datasets--gpt2");
        assert_eq!(parse_folder_name("spaces--a--b").unwrap().0, RepoKind::Space);
        for bad in ["models", "models--", "widgets--a--b", "models--a--b--c", ".locks", "models--a----b"] {
            assert_eq!(parse_folder_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn commit_hashes_are_40_lowercase_hex() {
        assert!(is_commit_hash(&"a1".repeat(20)));
        assert!(!is_commit_hash(&"A1".repeat(20)));
        assert!(!is_commit_hash("main"));
        assert!(!is_commit_hash(&"a".repeat(41)));
    }
}
