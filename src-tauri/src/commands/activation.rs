//! Commands about the active model per type.

use crate::{events, AppState};
use mm_core::activation::{parse_type, ActiveEntry};
use mm_core::error::Coded;
use mm_core::library::ModelType;
use mm_core::ErrorPayload;
use std::collections::BTreeMap;
use tauri::{AppHandle, Runtime, State};

/// Makes a model the active one of its type (or of `modelType`), switching from the one before in one step.
#[tauri::command]
pub async fn activate_model<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
    model_type: Option<String>,
    revision: Option<String>,
) -> Result<ActiveEntry, ErrorPayload> {
    let model_type = model_type.as_deref().map(parse_type).transpose().map_err(|e| e.payload())?;
    let (entry, changes) = state
        .activation
        .activate_any(&state.ollama, &id, model_type, revision.as_deref())
        .await
        .map_err(|e| e.payload())?;
    events::changed(&app, &state, changes);
    Ok(entry)
}

#[tauri::command]
pub async fn deactivate_type<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    model_type: String,
) -> Result<(), ErrorPayload> {
    let model_type = parse_type(&model_type).map_err(|e| e.payload())?;
    let changes = state.activation.deactivate(model_type).map_err(|e| e.payload())?;
    events::changed(&app, &state, changes);
    Ok(())
}

/// The active model of each type, as `active.json` says.
#[tauri::command]
pub async fn active_models(state: State<'_, AppState>) -> Result<BTreeMap<ModelType, ActiveEntry>, ErrorPayload> {
    Ok(state.activation.entries(&state.settings()))
}
