//! Commands about compatibility: the machine, and whether a model will run on it.

use crate::AppState;
use mm_core::compat::local::ModelFit;
use mm_core::compat::{hardware, local, remote, CompatReport, HardwareInfo};
use mm_core::error::Coded;
use mm_core::{ErrorCode, ErrorPayload};
use std::collections::BTreeMap;
use tauri::State;

#[tauri::command]
pub async fn system_info(state: State<'_, AppState>) -> Result<HardwareInfo, ErrorPayload> {
    let cache_dir = state.cache_dir.clone();
    tauri::async_runtime::spawn_blocking(move || hardware::probe(&cache_dir))
        .await
        .map_err(|e| ErrorPayload { code: ErrorCode::Internal, message: e.to_string() })
}

/// Whether a model will run here: a library model (its files on disk) or a hub repo (its headers, read remotely).
#[tauri::command]
pub async fn check_compatibility(
    state: State<'_, AppState>,
    target: String,
    revision: Option<String>,
    context: Option<u64>,
) -> Result<CompatReport, ErrorPayload> {
    let (cache_dir, settings) = (state.cache_dir.clone(), state.settings());
    let probe_dir = cache_dir.clone();
    let hw = tauri::async_runtime::spawn_blocking(move || hardware::probe(&probe_dir))
        .await
        .map_err(|e| ErrorPayload { code: ErrorCode::Internal, message: e.to_string() })?;
    if let Some(m) = mm_core::local::list::find(&settings, &state.activation.data_dir, &target) {
        let path = m.path.clone();
        return tauri::async_runtime::spawn_blocking(move || local::assess_path(&path, context, &hw))
            .await
            .map_err(|e| ErrorPayload { code: ErrorCode::Internal, message: e.to_string() })?
            .map(|mut r| {
                r.model = target;
                r
            })
            .map_err(|e| e.payload());
    }
    if let Some(name) = target.strip_prefix(mm_core::ollama::OLLAMA_PREFIX) {
        return local::assess_ollama(&state.ollama, name, context, &hw).await.map_err(|e| e.payload());
    }
    if revision.is_none() {
        if let Ok(report) = local::assess_model(&cache_dir, &settings, &target, context, &hw) {
            return Ok(report);
        }
    }
    let hub =
        mm_core::hub::HubClient::new(mm_core::hub::HubConfig::from_settings(&settings)).map_err(|e| e.payload())?;
    remote::assess_repo(&hub, &cache_dir, &target, revision.as_deref(), context, &hw).await.map_err(|e| e.payload())
}

/// The fit of every model in the library, from one hardware probe: Ollama's models from the files the server
/// names for them.
#[tauri::command]
pub async fn library_fit(state: State<'_, AppState>) -> Result<BTreeMap<String, ModelFit>, ErrorPayload> {
    let (cache_dir, settings, queue) = (state.cache_dir.clone(), state.settings(), state.downloads.list());
    let data_dir = state.activation.data_dir.clone();
    let (mut fits, hw) = tauri::async_runtime::spawn_blocking(move || {
        let hw = hardware::probe(&cache_dir);
        let models = mm_core::library::list::list_all(&cache_dir, &data_dir, &settings, &queue).unwrap_or_default();
        (local::library_fit(&cache_dir, &settings, &models, &hw), hw)
    })
    .await
    .map_err(|e| ErrorPayload { code: ErrorCode::Internal, message: e.to_string() })?;
    let ollama_models = state.ollama.models(&state.settings()).await;
    fits.extend(local::ollama_fit(&state.ollama, &ollama_models, &hw).await);
    Ok(fits)
}
