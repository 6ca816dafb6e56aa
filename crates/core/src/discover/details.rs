//! What a hub repo offers, read without downloading it: its files and sizes, the GGUF quantisations among them,
//! and its model card rendered safely.

use crate::cache::{RepoId, RepoKind};
use crate::hub::{HubClient, HubError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use ts_rs::TS;

/// Model cards past this size are cut (the rest is rarely more than tables of benchmark numbers).
const MAX_CARD: u64 = 512 << 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoDetails {
    pub id: String,
    pub revision: String,
    pub commit: String,
    pub gated: bool,
    pub task: Option<String>,
    pub library: Option<String>,
    pub license: Option<String>,
    pub tags: Vec<String>,
    pub files: Vec<RepoFile>,
    pub total_size: u64,
    /// The GGUF quantisations offered, smallest first; empty when the repo has no GGUF files.
    pub quantisations: Vec<Quantisation>,
    /// The README as safe HTML: no scripts, no raw HTML, links only to http(s) and mail.
    pub card_html: Option<String>,
    /// Why there is no card (none in the repo, or it could not be read).
    pub card_note: Option<String>,
    /// The repo's page on the hub.
    pub page_url: String,
    /// Free space where downloads go.
    pub disk_free: u64,
    /// Every file is already in the local cache.
    pub installed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoFile {
    pub path: String,
    pub size: u64,
    /// This file's content is already in the local cache.
    pub installed: bool,
    #[serde(skip)]
    #[ts(skip)]
    pub blob: String,
}

/// One quantisation of a GGUF model: its files (several when split into shards) and their total size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quantisation {
    /// As the file names say it: `Q4_K_M`, `IQ2_XXS`, `F16`; the file's stem when they do not.
    pub name: String,
    pub files: Vec<String>,
    pub size: u64,
}

pub(crate) async fn fetch(hub: &HubClient, repo: &RepoId, revision: &str) -> Result<RepoDetails, HubError> {
    let info = hub.repo_info(repo, revision).await?;
    let files: Vec<RepoFile> = info
        .files
        .iter()
        .map(|f| RepoFile { path: f.path.clone(), size: f.size, installed: false, blob: f.blob.clone() })
        .collect();
    let license = info
        .card_data
        .as_ref()
        .and_then(|c| c.get("license"))
        .and_then(|l| l.as_str())
        .map(str::to_owned)
        .or_else(|| info.tags.iter().find_map(|t| t.strip_prefix("license:")).map(str::to_owned));
    let base = format!("{}/{repo}", hub.config().endpoint);
    let readme = files.iter().find(|f| f.path.eq_ignore_ascii_case("README.md"));
    let (card_html, card_note) = match readme {
        None => (None, Some("This repo has no model card.".to_string())),
        Some(f) => match hub.fetch_small(repo, &info.commit, &f.path, MAX_CARD).await {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let html = super::card::render(
                    &text,
                    &format!("{base}/blob/{}/", info.commit),
                    &format!("{base}/resolve/{}/", info.commit),
                );
                let note = (f.size > MAX_CARD).then(|| format!("The card is cut at {} KB.", MAX_CARD >> 10));
                (Some(html), note)
            }
            Err(e) => (None, Some(format!("The model card could not be read: {e}"))),
        },
    };
    Ok(RepoDetails {
        id: repo.to_string(),
        revision: revision.to_string(),
        commit: info.commit.clone(),
        gated: info.gated,
        task: info.pipeline_tag,
        library: info.library_name,
        license,
        tags: info.tags,
        total_size: files.iter().map(|f| f.size).sum(),
        quantisations: quantisations(files.iter().map(|f| (f.path.as_str(), f.size))),
        files,
        card_html,
        card_note,
        page_url: base,
        disk_free: 0,
        installed: false,
    })
}

impl RepoDetails {
    /// With what this machine has: which files are already cached, and the free space for the rest.
    pub fn with_local_state(mut self, cache_dir: &Path) -> RepoDetails {
        let blobs = RepoId::parse(&self.id).ok().map(|id| id.folder(cache_dir, RepoKind::Model).join("blobs"));
        for f in &mut self.files {
            f.installed = blobs.as_ref().is_some_and(|b| b.join(&f.blob).is_file());
        }
        self.installed = !self.files.is_empty() && self.files.iter().all(|f| f.installed);
        let existing = cache_dir.ancestors().find(|p| p.exists()).unwrap_or(cache_dir);
        self.disk_free = crate::disk::free_space(existing).unwrap_or(0);
        self
    }
}

/// The quantisations among a repo's GGUF files, grouped by name (shards together), smallest first. Vision
/// projectors (`mmproj-*`) are not quantisations of the model and are left out.
pub fn quantisations<'a>(files: impl Iterator<Item = (&'a str, u64)>) -> Vec<Quantisation> {
    let mut out: Vec<Quantisation> = Vec::new();
    for (path, size) in files {
        let name = path.rsplit('/').next().unwrap_or(path);
        let lower = name.to_ascii_lowercase();
        if !lower.ends_with(".gguf") || lower.starts_with("mmproj") {
            continue;
        }
        let stem = strip_shard(&name[..name.len() - 5]);
        let quant = quant_name(stem).unwrap_or_else(|| stem.to_string());
        match out.iter_mut().find(|q| q.name == quant) {
            Some(q) => {
                q.files.push(path.to_string());
                q.size += size;
            }
            None => out.push(Quantisation { name: quant, files: vec![path.to_string()], size }),
        }
    }
    for q in &mut out {
        q.files.sort();
    }
    out.sort_by(|a, b| a.size.cmp(&b.size).then_with(|| a.name.cmp(&b.name)));
    out
}

/// `name-00001-of-00003` without its shard suffix.
fn strip_shard(stem: &str) -> &str {
    // "-NNNNN-of-NNNNN" is 15 ASCII bytes; a name of other characters has no such tail (and is never cut inside
    // a character).
    let Some(cut) = stem.len().checked_sub(15).filter(|c| *c > 0 && stem.is_char_boundary(*c)) else { return stem };
    let tail = &stem.as_bytes()[cut..];
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if tail[0] == b'-' && &tail[6..10] == b"-of-" && digits(&tail[1..6]) && digits(&tail[10..]) {
        &stem[..cut]
    } else {
        stem
    }
}

/// The quantisation a GGUF file name states: the last token such as `Q4_K_M`, `IQ3_XXS`, `Q8_0`, `BF16`, `F16`.
pub fn quant_name(stem: &str) -> Option<String> {
    let upper = stem.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let is_sep = |c: u8| matches!(c, b'-' | b'.' | b'_');
    let mut found = None;
    for start in 0..bytes.len() {
        if start > 0 && !is_sep(bytes[start - 1]) {
            continue;
        }
        if let Some(len) = match_quant(&bytes[start..]) {
            let end = start + len;
            if end == bytes.len() || is_sep(bytes[end]) {
                found = Some(upper[start..end].to_string());
            }
        }
    }
    found
}

/// The length of a quantisation token at the start of `s`, if one starts there.
fn match_quant(s: &[u8]) -> Option<usize> {
    for plain in ["BF16", "FP16", "FP32", "F16", "F32", "F64"] {
        if s.starts_with(plain.as_bytes()) {
            return Some(plain.len());
        }
    }
    let mut i = 0;
    if s.get(i) == Some(&b'I') {
        i += 1;
    }
    if s.get(i) == Some(&b'T') {
        i += 1;
    }
    if s.get(i) != Some(&b'Q') {
        return None;
    }
    i += 1;
    let digits = s[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 1 {
        return None;
    }
    i += digits;
    // `_` followed by a known part, as many times as they come.
    const PARTS: [&str; 10] = ["XXS", "XS", "XL", "NL", "K", "S", "M", "L", "0", "1"];
    'parts: while s.get(i) == Some(&b'_') {
        for part in PARTS {
            let p = part.as_bytes();
            if s[i + 1..].starts_with(p) {
                let after = s.get(i + 1 + p.len());
                if after.is_none_or(|c| !c.is_ascii_alphanumeric()) {
                    i += 1 + p.len();
                    continue 'parts;
                }
            }
        }
        break;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_names_come_from_the_file_names() {
        let cases = [
            ("Llama-3.2-1B-Instruct-Q4_K_M", Some("Q4_K_M")),
            ("qwen2.5-0.5b-instruct-q8_0", Some("Q8_0")),
            ("model.IQ2_XXS", Some("IQ2_XXS")),
            ("Phi-3-mini-4k-instruct-fp16", Some("FP16")),
            ("gemma-2b.BF16", Some("BF16")),
            ("tinyllama-1.1b-chat-v1.0.Q5_K_S", Some("Q5_K_S")),
            ("Qwen3-4B-Q4_0", Some("Q4_0")),
            ("DeepSeek-R1-UD-TQ1_0", Some("TQ1_0")),
            ("Qwen2-VL", None),
            ("model", None),
            ("q4_k_m_extra_words", Some("Q4_K_M")),
        ];
        for (stem, want) in cases {
            assert_eq!(quant_name(stem).as_deref(), want, "{stem}");
        }
    }

    #[test]
    fn shards_group_into_one_quantisation_and_projectors_are_left_out() {
        let files = [
            ("m-Q8_0-00001-of-00002.gguf", 60),
            ("m-Q8_0-00002-of-00002.gguf", 40),
            ("m-Q4_K_M.gguf", 55),
            ("mmproj-m-f16.gguf", 10),
            ("README.md", 1),
            ("sub/m-F16.gguf", 200),
        ];
        let q = quantisations(files.into_iter());
        let names: Vec<(&str, u64, usize)> = q.iter().map(|q| (q.name.as_str(), q.size, q.files.len())).collect();
        assert_eq!(names, [("Q4_K_M", 55, 1), ("Q8_0", 100, 2), ("F16", 200, 1)]);
    }

    #[test]
    fn names_in_any_script_are_grouped_without_cutting_a_character() {
        // Each of these panicked when the shard suffix was looked for 15 bytes from the end of the name.
        let files = [("模型名称很长的一个模型-q4_k_m.gguf", 5), ("ÉÉÉÉÉÉÉÉ.gguf", 6), ("模型-00001-of-00002.gguf", 7)];
        let q = quantisations(files.into_iter());
        let names: Vec<&str> = q.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["Q4_K_M", "ÉÉÉÉÉÉÉÉ", "模型"]);
    }

    proptest::proptest! {
        #[test]
        fn any_file_name_is_read_without_panicking(name in "\\PC{0,40}", size in 0u64..1000) {
            let path = format!("{name}.gguf");
            let _ = quantisations([(path.as_str(), size)].into_iter());
            let _ = quant_name(&name);
        }
    }
}
