//! Requirements of a hub repo before downloading it: headers through ranged reads (two per safetensors file, a
//! growing prefix per GGUF file), `config.json` whole, and the same estimate as for files on disk.

use super::estimate::{self, CompatReport, ModelConfig};
use super::hardware::HardwareInfo;
use super::{gguf, safetensors, CompatError};
use crate::cache::{RepoId, RepoKind};
use crate::hub::HubClient;
use std::path::Path;

const FIRST_READ: u64 = 1 << 20;
/// At most this many ranged reads for one file's header: each read at least doubles what is held, so a real
/// header of up to [`gguf::MAX_HEADER`] needs far fewer.
const MAX_READS: u32 = 12;
/// At most this many GGUF files of one repo are assessed (quantisation collections can list dozens).
const MAX_GGUF_FILES: usize = 24;

pub async fn assess_repo(
    hub: &HubClient,
    cache_dir: &Path,
    repo: &str,
    revision: Option<&str>,
    context: Option<u64>,
    hw: &HardwareInfo,
) -> Result<CompatReport, CompatError> {
    let (repo, url_revision) = crate::hub::parse_repo_reference(repo)?;
    let revision = revision.map(str::to_owned).or(url_revision).unwrap_or_else(|| "main".into());
    let info = hub.repo_info(&repo, &revision).await?;
    let commit = info.commit.clone();
    let blobs = repo.folder(cache_dir, RepoKind::Model).join("blobs");
    let missing = |f: &crate::hub::RemoteFile| if blobs.join(&f.blob).exists() { 0 } else { f.size };
    let mut entries = Vec::new();
    let ggufs: Vec<_> =
        info.files.iter().filter(|f| f.path.to_lowercase().ends_with(".gguf")).take(MAX_GGUF_FILES).collect();
    for f in &ggufs {
        let s = gguf_header(hub, &repo, &commit, &f.path, f.size).await?;
        entries.push(estimate::assess(Some(f.path.clone()), f.size, estimate::from_gguf(&s, context), hw, missing(f)));
    }
    let mut download_bytes: u64 = ggufs.iter().map(|f| missing(f)).max().unwrap_or(0);
    if ggufs.is_empty() {
        let index = match info.files.iter().find(|f| f.path == "model.safetensors.index.json") {
            Some(_) => Some(hub.fetch_small(&repo, &commit, "model.safetensors.index.json", 16 << 20).await?),
            None => None,
        };
        let paths: Vec<&str> = info.files.iter().map(|f| f.path.as_str()).collect();
        let chosen = safetensors::weight_files(&paths, index.as_deref())?;
        let shards: Vec<_> = info.files.iter().filter(|f| chosen.contains(&f.path.as_str())).collect();
        if shards.is_empty() {
            return Err(CompatError::NoWeights(repo.to_string()));
        }
        let mut total = safetensors::SafetensorsSummary::default();
        for f in &shards {
            let first = exact_range(hub, &repo, &commit, &f.path, 0, 8.min(f.size)).await?;
            let n = safetensors::header_len(&first, f.size)?;
            let json = exact_range(hub, &repo, &commit, &f.path, 8, 8 + n).await?;
            safetensors::merge(&mut total, safetensors::parse_header(&json, f.size)?);
        }
        let config: ModelConfig = match info.files.iter().find(|f| f.path == "config.json") {
            Some(_) => serde_json::from_slice(&hub.fetch_small(&repo, &commit, "config.json", 4 << 20).await?)
                .unwrap_or_default(),
            None => ModelConfig::default(),
        };
        download_bytes = info.files.iter().map(missing).sum();
        let weights: u64 = shards.iter().map(|f| f.size).sum();
        entries.push(estimate::assess(
            None,
            weights,
            estimate::from_safetensors(&total, &config, context),
            hw,
            download_bytes,
        ));
    }
    Ok(CompatReport { model: repo.to_string(), entries, download_bytes, disk_free: hw.disk_free })
}

async fn gguf_header(
    hub: &HubClient,
    repo: &RepoId,
    commit: &str,
    path: &str,
    size: u64,
) -> Result<gguf::GgufSummary, CompatError> {
    let mut prefix = exact_range(hub, repo, commit, path, 0, FIRST_READ.min(size)).await?;
    let mut reads = 1;
    loop {
        match gguf::parse(&prefix, size) {
            Err(CompatError::NeedMore { at_least })
                if at_least <= gguf::MAX_HEADER && at_least > prefix.len() as u64 =>
            {
                if reads >= MAX_READS {
                    return Err(CompatError::invalid(
                        "GGUF",
                        format!("the header of {path} was not whole after {reads} reads from the server"),
                    ));
                }
                reads += 1;
                let more = exact_range(hub, repo, commit, path, prefix.len() as u64, at_least).await?;
                prefix.extend_from_slice(&more);
            }
            Err(CompatError::NeedMore { .. }) => {
                return Err(CompatError::invalid(
                    "GGUF",
                    format!("the header of {path} is larger than {} MB", gguf::MAX_HEADER >> 20),
                ))
            }
            other => return other,
        }
    }
}

/// Bytes `[start, end)` of a file, all of them: a server that sends fewer (one byte at a time, say) is refused
/// instead of being asked again and again.
async fn exact_range(
    hub: &HubClient,
    repo: &RepoId,
    commit: &str,
    path: &str,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, CompatError> {
    let bytes = hub.fetch_range(repo, commit, path, start, end).await?;
    if (bytes.len() as u64) < end - start {
        return Err(CompatError::invalid(
            "model header",
            format!("the server sent {} of the {} bytes asked for of {path}", bytes.len(), end - start),
        ));
    }
    Ok(bytes)
}
