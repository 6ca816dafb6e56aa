//! Adapters linked to their base. A model of the library is an adapter when it is a GGUF LoRA (`general.type`
//! `adapter`, `adapter.type` `lora`), a PEFT folder (`adapter_config.json`), or a hub repo whose card says
//! `base_model_relation: adapter`. Its base is, in this order:
//!
//! 1. the installed model the user linked it to by hand (the settings' `adapterBases`);
//! 2. the installed model it names (`general.base_model.0.repo_url`, `base_model_name_or_path`, the card's
//!    `base_model`), when a GGUF adapter fits it;
//! 3. for a GGUF adapter, the one installed GGUF model whose architecture and tensor shapes it fits (several: the
//!    user picks; none: it says so, with the base it names to get).
//!
//! Each adapter's [`Adapter`] says which and why; each base lists its adapters. GGUF headers and tensor shapes are
//! read once per file (its path, length and time) and kept.

use crate::compat::gguf::{self, GgufSummary, TensorShape};
use crate::model::{Adapter, AdapterFormat, LibraryModel, LinkedBy, ModelFormat, ModelSource};
use crate::settings::Settings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// GGUF files larger than this are taken for models, not adapters, and not read for it.
const MAX_ADAPTER_FILE: u64 = 4 << 30;

/// The GGUF file a model runs from: a local model's file, else the first `.gguf` of its main revision.
pub fn gguf_file(m: &LibraryModel) -> Option<PathBuf> {
    if m.format != ModelFormat::Gguf || m.source == ModelSource::Ollama {
        return None;
    }
    let path = Path::new(&m.path);
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    let snapshot = path.join("snapshots").join(m.commit.as_deref()?);
    let mut files: Vec<PathBuf> = walk(&snapshot).into_iter().filter(|f| is_gguf(f)).collect();
    files.sort();
    files.into_iter().next()
}

fn is_gguf(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// The files under `dir`, two levels deep (quantisations in folders of their own).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(
                std::fs::read_dir(&path).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_file()),
            );
        } else {
            out.push(path);
        }
    }
    out
}

type Key = (PathBuf, u64, Option<std::time::SystemTime>);

fn key(path: &Path) -> Option<Key> {
    let meta = std::fs::metadata(path).ok()?;
    Some((path.to_path_buf(), meta.len(), meta.modified().ok()))
}

/// What was read of a file, kept while it is unchanged.
fn kept<T: Clone>(cache: &Mutex<HashMap<Key, T>>, path: &Path, read: impl FnOnce() -> Option<T>) -> Option<T> {
    let key = key(path)?;
    if let Some(v) = cache.lock().expect("cache").get(&key) {
        return Some(v.clone());
    }
    let value = read()?;
    let mut cache = cache.lock().expect("cache");
    if cache.len() > 4096 {
        cache.clear();
    }
    cache.insert(key, value.clone());
    Some(value)
}

fn summary(path: &Path) -> Option<Arc<GgufSummary>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<Key, Arc<GgufSummary>>>> = std::sync::OnceLock::new();
    kept(CACHE.get_or_init(Default::default), path, || crate::compat::local::read_gguf(path).ok().map(Arc::new))
}

fn shapes(path: &Path) -> Option<Arc<Vec<TensorShape>>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<Key, Arc<Vec<TensorShape>>>>> = std::sync::OnceLock::new();
    kept(CACHE.get_or_init(Default::default), path, || gguf::read_tensor_shapes(path).ok().map(Arc::new))
}

/// What a model is as an adapter, before its base is looked for.
struct Found {
    adapter: Adapter,
    /// A GGUF adapter's header (for the shapes it needs).
    gguf: Option<Arc<GgufSummary>>,
}

fn found(format: AdapterFormat, base_named: Option<String>) -> Adapter {
    Adapter { format, base_named, base: None, linked_by: None, problem: None, file: None, rank: None, alpha: None }
}

/// `org/name` from a Hub URL or a repo id, if it is one.
fn repo_id(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/');
    let id = ["https://huggingface.co/", "http://huggingface.co/", "hf.co/"]
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .unwrap_or(text);
    let mut parts = id.split('/');
    let (org, name) = (parts.next()?, parts.next()?);
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    (parts.next().is_none() && ok(org) && ok(name)).then(|| format!("{org}/{name}"))
}

/// The folder a model's files are in: a local folder, or the main revision's snapshot.
fn folder(m: &LibraryModel) -> Option<PathBuf> {
    let path = Path::new(&m.path);
    if path.is_dir() && m.commit.is_none() {
        return Some(path.to_path_buf());
    }
    m.commit.as_deref().map(|c| path.join("snapshots").join(c)).filter(|p| p.is_dir())
}

fn detect(m: &LibraryModel, card: Option<&serde_json::Value>) -> Option<Found> {
    if let Some(file) = gguf_file(m) {
        let size = std::fs::metadata(&file).map_or(u64::MAX, |meta| meta.len());
        if size <= MAX_ADAPTER_FILE {
            if let Some(s) = summary(&file).filter(|s| s.is_lora_adapter()) {
                let named = s.base_models.iter().find_map(|b| {
                    b.repo_url.as_deref().and_then(repo_id).or_else(|| {
                        let (org, name) = (b.organization.as_deref()?, b.name.as_deref()?);
                        repo_id(&format!("{org}/{name}"))
                    })
                });
                let mut adapter = found(AdapterFormat::Gguf, named.or_else(|| card.and_then(card_base)));
                adapter.file = Some(file.display().to_string());
                adapter.alpha = s.lora_alpha;
                adapter.rank = s
                    .adapter_tensors
                    .iter()
                    .find(|(n, _)| n.ends_with(".lora_a"))
                    .and_then(|(_, ne)| ne.get(1).copied());
                return Some(Found { adapter, gguf: Some(s) });
            }
        }
    }
    if let Some(peft) = folder(m).and_then(|dir| crate::compat::peft::read_peft_adapter(&dir)) {
        let mut adapter = found(
            AdapterFormat::Peft,
            peft.base_model.as_deref().and_then(repo_id).or_else(|| card.and_then(card_base)),
        );
        adapter.rank = peft.rank;
        adapter.alpha = peft.alpha;
        return Some(Found { adapter, gguf: None });
    }
    let card = card?;
    (card.get("base_model_relation").and_then(|r| r.as_str()) == Some("adapter"))
        .then(|| Found { adapter: found(AdapterFormat::Peft, card_base(card)), gguf: None })
}

/// The card's `base_model` (a repo id, or a list of them: the first).
fn card_base(card: &serde_json::Value) -> Option<String> {
    match card.get("base_model")? {
        serde_json::Value::String(s) => repo_id(s),
        serde_json::Value::Array(a) => a.iter().find_map(|v| v.as_str().and_then(repo_id)),
        _ => None,
    }
}

/// Whether the GGUF adapter fits `base` (a GGUF model of the library), or why not.
pub fn fits(adapter: &GgufSummary, base: &LibraryModel) -> Result<(), String> {
    let file = gguf_file(base).ok_or_else(|| format!("{} has no GGUF file", base.id))?;
    let (s, t) = (summary(&file), shapes(&file));
    match (s, t) {
        (Some(s), Some(t)) => gguf::adapter_fits(adapter, &s, &t),
        _ => Err(format!("{} cannot be read", file.display())),
    }
}

/// A hub model's card metadata, as this app recorded it when it downloaded the repo.
fn card_of(m: &LibraryModel) -> Option<serde_json::Value> {
    matches!(m.source, ModelSource::HuggingFace | ModelSource::Folder)
        .then(|| crate::cache::layout::read_hub_info(Path::new(&m.path))?.card_data)
        .flatten()
}

/// Marks the adapters of `models` and links each to its base (see the module's order).
pub fn link(models: &mut [LibraryModel], settings: &Settings) {
    let detected: Vec<Option<Found>> = models.iter().map(|m| detect(m, card_of(m).as_ref())).collect();
    // The models an adapter may run on: GGUF models that are not adapters, with their headers.
    let bases: Vec<(usize, Arc<GgufSummary>)> = models
        .iter()
        .enumerate()
        .filter(|(i, _)| detected[*i].is_none())
        .filter_map(|(i, m)| Some((i, summary(&gguf_file(m)?)?)))
        .collect();
    let installed = |id: &str| models.iter().position(|m| m.id == id);
    let mut links: Vec<(usize, Adapter)> = Vec::new();
    for (i, found) in detected.into_iter().enumerate() {
        let Some(Found { mut adapter, gguf }) = found else { continue };
        let fit = |b: usize| match &gguf {
            Some(a) => fits(a, &models[b]),
            None => Ok(()),
        };
        let chosen = settings.adapter_bases.get(&models[i].id);
        if let Some(base) = chosen {
            match installed(base) {
                Some(b) => {
                    adapter.base = Some(models[b].id.clone());
                    adapter.linked_by = Some(LinkedBy::User);
                    adapter.problem = fit(b).err().map(|why| format!("it does not fit {base}, its linked base: {why}"));
                }
                None => adapter.problem = Some(format!("its linked base {base} is not installed")),
            }
        } else if let Some(b) = adapter.base_named.as_deref().and_then(installed).filter(|b| fit(*b).is_ok()) {
            adapter.base = Some(models[b].id.clone());
            adapter.linked_by = Some(LinkedBy::Named);
        } else if let Some(a) = &gguf {
            let same: Vec<usize> = bases
                .iter()
                .filter(|(_, s)| s.architecture == a.architecture)
                .map(|(b, _)| *b)
                .filter(|b| fit(*b).is_ok())
                .collect();
            match same.as_slice() {
                [b] => {
                    adapter.base = Some(models[*b].id.clone());
                    adapter.linked_by = Some(LinkedBy::Fits);
                }
                [] => adapter.problem = Some(missing(&adapter, "no installed model fits it")),
                several => {
                    let ids: Vec<&str> = several.iter().map(|b| models[*b].id.as_str()).collect();
                    adapter.problem = Some(format!(
                        "it fits several installed models ({}): link it to one (mm link {} BASE)",
                        ids.join(", "),
                        models[i].id
                    ));
                }
            }
        } else {
            adapter.problem = Some(missing(&adapter, "it names no base"));
        }
        if adapter.file.as_deref().is_some_and(|f| f.contains(',')) {
            adapter.problem = Some("its file's path holds a comma, which llama-server cannot take: rename it".into());
        }
        links.push((i, adapter));
    }
    for (i, adapter) in links {
        if let Some(b) = adapter.base.as_deref().and_then(|id| models.iter().position(|m| m.id == id)) {
            models[b].adapters.push(models[i].id.clone());
        }
        models[i].adapter = Some(adapter);
    }
}

/// Why an adapter has no base: the one it names is to get, else `why`.
fn missing(adapter: &Adapter, why: &str) -> String {
    match &adapter.base_named {
        Some(base) => format!("its base {base} is not installed: get it (mm download {base}), or link another"),
        None => format!("{why}: link it to its base (mm link ADAPTER BASE)"),
    }
}

/// The GGUF adapters `base` runs with (id, file), sorted by id: linked to it, with nothing wrong.
pub fn runnable(models: &[LibraryModel], base: &str) -> Vec<(String, String)> {
    runnable_by_base(models).remove(base).unwrap_or_default()
}

/// [`runnable`] for every base at once, by base id.
pub fn runnable_by_base(models: &[LibraryModel]) -> std::collections::HashMap<String, Vec<(String, String)>> {
    let mut by_base: std::collections::HashMap<String, Vec<(String, String)>> = Default::default();
    for m in models {
        let Some(a) = m.adapter.as_ref().filter(|a| a.format == AdapterFormat::Gguf && a.problem.is_none()) else {
            continue;
        };
        if let (Some(base), Some(file)) = (&a.base, &a.file) {
            by_base.entry(base.clone()).or_default().push((m.id.clone(), file.clone()));
        }
    }
    by_base.values_mut().for_each(|adapters| adapters.sort());
    by_base
}

/// What model `id` runs as, when adapters are involved: an adapter (or `BASE+ADAPTER`) runs as its base, and a
/// base runs with every GGUF adapter linked to it loaded; the base's id and the adapters' bytes.
pub fn runs_as(models: &[LibraryModel], id: &str) -> Option<(String, u64)> {
    let id = id.split_once('+').map_or(id, |(base, _)| base);
    let model = models.iter().find(|m| m.id == id)?;
    let base = match &model.adapter {
        Some(a) => a.base.clone()?,
        None => model.id.clone(),
    };
    let bytes: u64 = models
        .iter()
        .filter(|m| {
            m.adapter
                .as_ref()
                .is_some_and(|a| a.format == AdapterFormat::Gguf && a.base.as_deref() == Some(base.as_str()))
        })
        .map(|m| m.size)
        .sum();
    (bytes > 0).then_some((base, bytes))
}

/// The GGUF header of an adapter's file, to check a base against.
pub fn adapter_header(adapter: &Adapter) -> Option<Arc<GgufSummary>> {
    summary(Path::new(adapter.file.as_deref()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn repo_ids_from_urls_and_ids() {
        assert_eq!(
            super::repo_id("https://huggingface.co/meta-llama/Llama-3.1-8B").as_deref(),
            Some("meta-llama/Llama-3.1-8B")
        );
        assert_eq!(super::repo_id("org/name").as_deref(), Some("org/name"));
        assert_eq!(super::repo_id("/home/me/checkpoints/base"), None);
        assert_eq!(super::repo_id("Llama 3"), None);
    }
}
