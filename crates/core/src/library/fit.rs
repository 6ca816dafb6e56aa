//! Will the library's models run here: each model's weights on disk assessed against the machine, for the
//! report of one model and the badge of each.

use crate::compat::local::{assess_path, best_fit, ModelFit};
use crate::compat::{CompatError, CompatReport, HardwareInfo};
use crate::model::{LibraryModel, ModelSource};
use crate::settings::Settings;
use std::collections::BTreeMap;
use std::path::Path;

/// Assesses a model of the library (its main revision's snapshot).
pub fn assess_model(
    cache_dir: &Path,
    settings: &Settings,
    id: &str,
    context: Option<u64>,
    hw: &HardwareInfo,
) -> Result<CompatReport, CompatError> {
    let (repo, _, _) =
        super::list::find_repo(cache_dir, settings, id).map_err(|_| CompatError::NotFound(id.to_string()))?;
    let revision = repo.revisions.first().ok_or_else(|| CompatError::NotFound(id.to_string()))?;
    let snapshot = Path::new(&repo.path).join("snapshots").join(&revision.commit);
    let mut report = assess_path(&snapshot, context, hw)?;
    report.model = repo.repo_id;
    Ok(report)
}

/// The fit of every model in the library on `hw`, each sized for its load settings; models whose weights cannot be
/// read are left out. With several GGUF quantisations, the best of them speaks for the model.
pub fn library_fit(
    cache_dir: &Path,
    settings: &Settings,
    models: &[LibraryModel],
    hw: &HardwareInfo,
) -> BTreeMap<String, ModelFit> {
    models
        .iter()
        .filter_map(|m| {
            let id = &m.id;
            // An adapter runs as its base, and a base with the adapters linked to it.
            let (subject, extra) = match super::adapters::runs_as(models, &m.id) {
                Some((base, bytes)) => (models.iter().find(|b| b.id == base)?, bytes),
                None if m.adapter.is_some() => return None,
                None => (m, 0),
            };
            let m = subject;
            let report = match m.source {
                ModelSource::Imported | ModelSource::Url | ModelSource::Folder => {
                    assess_path(Path::new(&m.path), None, hw).ok()?
                }
                // Its file is the server's to name: see `ollama_fit`.
                ModelSource::Ollama => return None,
                ModelSource::HuggingFace => assess_model(cache_dir, settings, &m.id, None, hw).ok()?,
            };
            // Sized for how its owner runs it.
            let sizing = crate::compat::estimate::Sizing { extra_weights: extra, ..settings.load_of(&m.id).sizing() };
            let report = crate::compat::estimate::resized(report, sizing, None, hw);
            Some((id.clone(), best_fit(&report)?))
        })
        .collect()
}
