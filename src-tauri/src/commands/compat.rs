//! Commands about compatibility: the machine, and whether a model will run on it.

use crate::AppState;
use mm_core::compat::local::ModelFit;
use mm_core::compat::{CompatReport, HardwareInfo};
use mm_core::ErrorPayload;
use std::collections::BTreeMap;
use tauri::State;

#[tauri::command]
pub async fn system_info(state: State<'_, AppState>) -> Result<HardwareInfo, ErrorPayload> {
    state.machine().system().await
}

/// Whether a model will run here: a library model (its files on disk) or a hub repo (its headers, read remotely).
#[tauri::command]
pub async fn check_compatibility(
    state: State<'_, AppState>,
    target: String,
    revision: Option<String>,
    context: Option<u64>,
) -> Result<CompatReport, ErrorPayload> {
    state.machine().compat(&target, revision.as_deref(), context).await
}

/// The fit of every model in the library, from one hardware probe: Ollama's models from the files the server
/// names for them.
#[tauri::command]
pub async fn library_fit(state: State<'_, AppState>) -> Result<BTreeMap<String, ModelFit>, ErrorPayload> {
    state.machine().fit().await
}
