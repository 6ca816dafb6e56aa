//! Commands about settings, kept in the file the CLI shares.

use crate::AppState;
use mm_core::error::Coded;
use mm_core::settings::{SettingsPatch, SettingsView};
use mm_core::ErrorPayload;
use tauri::State;

/// The settings, the token masked, with a warning if the file had to be replaced by defaults.
#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Result<SettingsView, ErrorPayload> {
    let (settings, warning) = state.settings.lock().unwrap().clone();
    Ok(settings.view(warning))
}

/// Validates and saves a change; the download queue takes it at once (the cache folder at the next start).
#[tauri::command]
pub async fn update_settings(state: State<'_, AppState>, patch: SettingsPatch) -> Result<SettingsView, ErrorPayload> {
    let (settings, ()) = state.store.update(|s| s.apply(patch)).map_err(|e| e.payload())?;
    state.settings_changed(settings.clone());
    Ok(settings.view(None))
}
