//! Commands about the active model per type, and loading it in a runtime.

use crate::AppState;
use mm_core::activation::ActiveEntry;
use mm_core::library::ModelType;
use mm_core::runtime::LoadedModel;
use mm_core::ErrorPayload;
use std::collections::BTreeMap;
use tauri::State;

/// Makes a model the active one of its type (or of `modelType`), switching from the one before in one step.
#[tauri::command]
pub async fn activate_model(
    state: State<'_, AppState>,
    id: String,
    model_type: Option<String>,
    revision: Option<String>,
) -> Result<ActiveEntry, ErrorPayload> {
    state.machine().activate(&id, model_type.as_deref(), revision.as_deref()).await
}

#[tauri::command]
pub async fn deactivate_type(state: State<'_, AppState>, model_type: String) -> Result<(), ErrorPayload> {
    state.machine().deactivate(&model_type).await
}

/// The active model of each type, as `active.json` says.
#[tauri::command]
pub async fn active_models(state: State<'_, AppState>) -> Result<BTreeMap<ModelType, ActiveEntry>, ErrorPayload> {
    state.machine().active().await
}

/// Serves a type's active model (or activates a model and serves it) on a local endpoint; answered once ready.
#[tauri::command]
pub async fn load_model(
    state: State<'_, AppState>,
    target: Option<String>,
    context: Option<u64>,
) -> Result<LoadedModel, ErrorPayload> {
    state.machine().load(target.as_deref(), context).await
}

/// Stops serving a type or model (or everything, with no target).
#[tauri::command]
pub async fn unload_model(
    state: State<'_, AppState>,
    target: Option<String>,
) -> Result<Vec<LoadedModel>, ErrorPayload> {
    state.machine().unload(target.as_deref()).await
}

/// The loaded models: state, endpoint, memory measured beside the estimate.
#[tauri::command]
pub async fn loaded_models(state: State<'_, AppState>) -> Result<Vec<LoadedModel>, ErrorPayload> {
    state.machine().loaded().await
}
