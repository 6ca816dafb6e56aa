//! Requirements of models on disk: one weights file, a snapshot folder, or a model of the library.

use super::estimate::{self, CompatReport, ModelConfig};
use super::hardware::HardwareInfo;
use super::{gguf, safetensors, CompatError};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

const FIRST_READ: u64 = 1 << 20;

fn io(path: &Path) -> impl Fn(std::io::Error) -> CompatError + '_ {
    move |source| CompatError::Io { path: path.display().to_string(), source }
}

/// The first `n` bytes of a file (fewer if it is shorter).
fn read_prefix(path: &Path, n: u64) -> Result<Vec<u8>, CompatError> {
    let mut out = Vec::new();
    File::open(path).map_err(io(path))?.take(n).read_to_end(&mut out).map_err(io(path))?;
    Ok(out)
}

/// A GGUF header, reading more of the file only when the parser asks.
pub fn read_gguf(path: &Path) -> Result<gguf::GgufSummary, CompatError> {
    let size = std::fs::metadata(path).map_err(io(path))?.len();
    let mut want = FIRST_READ.min(size);
    loop {
        let prefix = read_prefix(path, want)?;
        match gguf::parse(&prefix, size) {
            Err(CompatError::NeedMore { at_least }) if at_least > want && at_least <= size.min(gguf::MAX_HEADER) => {
                want = at_least
            }
            Err(CompatError::NeedMore { .. }) => {
                return Err(CompatError::invalid(
                    "GGUF",
                    format!("its header runs past the end of the file or beyond {} MB", gguf::MAX_HEADER >> 20),
                ))
            }
            other => return other,
        }
    }
}

pub fn read_safetensors(path: &Path) -> Result<safetensors::SafetensorsSummary, CompatError> {
    let size = std::fs::metadata(path).map_err(io(path))?.len();
    let first = read_prefix(path, 8)?;
    let n = safetensors::header_len(&first, size)?;
    let prefix = read_prefix(path, 8 + n)?;
    safetensors::parse(&prefix, size)
}

fn read_config(dir: &Path) -> ModelConfig {
    std::fs::read(dir.join("config.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Every file under `dir` (following links, as snapshots are links), relative paths, sorted.
fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0)];
    while let Some((d, prefix, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            match std::fs::metadata(e.path()) {
                Ok(m) if m.is_dir() && depth < 8 => stack.push((e.path(), rel, depth + 1)),
                Ok(m) if m.is_file() => out.push((rel, e.path())),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Assesses a weights file or a model folder on `hw`.
pub fn assess_path(path: &Path, context: Option<u64>, hw: &HardwareInfo) -> Result<CompatReport, CompatError> {
    let meta = std::fs::metadata(path).map_err(|_| CompatError::NotFound(path.display().to_string()))?;
    let name = path.display().to_string();
    let mut entries = Vec::new();
    if meta.is_file() {
        let magic = read_prefix(path, 4)?;
        let r = if magic == b"GGUF" {
            estimate::from_gguf(&read_gguf(path)?, context)
        } else {
            let s = read_safetensors(path)?;
            estimate::from_safetensors(&s, &read_config(path.parent().unwrap_or(Path::new("."))), context)
        };
        entries.push(estimate::assess(path.file_name().map(|f| f.to_string_lossy().to_string()), meta.len(), r, hw, 0));
        return Ok(CompatReport { model: name, entries, download_bytes: 0, disk_free: hw.disk_free });
    }
    let all = files(path);
    let ggufs: Vec<&(String, PathBuf)> = all.iter().filter(|(p, _)| p.to_lowercase().ends_with(".gguf")).collect();
    for (rel, file) in &ggufs {
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let r = estimate::from_gguf(&read_gguf(file)?, context);
        entries.push(estimate::assess(Some(rel.clone()), size, r, hw, 0));
    }
    if ggufs.is_empty() {
        let index = std::fs::read(path.join("model.safetensors.index.json")).ok();
        let rels: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
        let chosen = safetensors::weight_files(&rels, index.as_deref())?;
        let shards: Vec<&(String, PathBuf)> = all.iter().filter(|(p, _)| chosen.contains(&p.as_str())).collect();
        if shards.is_empty() {
            return Err(CompatError::NoWeights(name));
        }
        let mut total = safetensors::SafetensorsSummary::default();
        let mut bytes = 0;
        for (_, file) in &shards {
            safetensors::merge(&mut total, read_safetensors(file)?);
            bytes += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        }
        let r = estimate::from_safetensors(&total, &read_config(path), context);
        entries.push(estimate::assess(None, bytes, r, hw, 0));
    }
    Ok(CompatReport { model: name, entries, download_bytes: 0, disk_free: hw.disk_free })
}

/// The fit of one library model, for its badge.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelFit {
    pub fit: super::Fit,
    pub summary: String,
    /// What it took the last time it was loaded here, beside the estimate.
    pub measured: Option<super::measured::Measurement>,
}

/// The verdict that speaks for a model: with several GGUF quantisations, the best of them.
pub fn best_fit(report: &CompatReport) -> Option<ModelFit> {
    let rank = |f: super::Fit| match f {
        super::Fit::FitsGpu => 0,
        super::Fit::PartialOffload => 1,
        super::Fit::CpuOnly => 2,
        super::Fit::InsufficientDisk => 3,
        super::Fit::TooLarge => 4,
    };
    let best = report.entries.iter().min_by_key(|e| rank(e.now.fit))?;
    Some(ModelFit { fit: best.now.fit, summary: best.now.summary.clone(), measured: None })
}

/// The requirements of an Ollama model, read from the GGUF file its Modelfile names (`/api/show`), reported
/// under its library id (`ollama/<name:tag>`).
pub async fn assess_ollama(
    ollama: &crate::ollama::Ollama,
    name: &str,
    context: Option<u64>,
    hw: &HardwareInfo,
) -> Result<CompatReport, CompatError> {
    let id = format!("{}{name}", crate::ollama::OLLAMA_PREFIX);
    let file = ollama.model_file(name).await?;
    if std::fs::File::open(&file).is_err() {
        return Err(CompatError::OllamaFile { id, path: file.display().to_string() });
    }
    let hw = hw.clone();
    let mut report = tokio::task::spawn_blocking(move || assess_path(&file, context, &hw))
        .await
        .map_err(|e| CompatError::Io { path: id.clone(), source: std::io::Error::other(e) })??;
    report.model = id;
    Ok(report)
}

/// The fit of each of `models` that is on the Ollama server, from its GGUF file; a model whose file cannot be
/// read from here (a server on another machine) is left out, as a model whose weights cannot be read is.
pub async fn ollama_fit(
    ollama: &crate::ollama::Ollama,
    models: &[crate::model::LibraryModel],
    hw: &HardwareInfo,
) -> std::collections::BTreeMap<String, ModelFit> {
    let mut out = std::collections::BTreeMap::new();
    for m in models {
        let Some(name) = m.id.strip_prefix(crate::ollama::OLLAMA_PREFIX) else { continue };
        if let Some(fit) = assess_ollama(ollama, name, None, hw).await.ok().as_ref().and_then(best_fit) {
            out.insert(m.id.clone(), fit);
        }
    }
    out
}
