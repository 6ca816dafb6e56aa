//! Commands about the active model per type.

use crate::AppState;
use mm_core::activation::ActiveEntry;
use mm_core::library::ModelType;
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
