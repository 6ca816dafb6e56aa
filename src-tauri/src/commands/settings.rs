//! Commands about settings, kept in the file the CLI shares.

use crate::AppState;
use mm_core::settings::{SettingsPatch, SettingsView};
use mm_core::ErrorPayload;
use tauri::State;

/// The settings, the token masked, with a warning if the file had to be replaced by defaults.
#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Result<SettingsView, ErrorPayload> {
    Ok(state.manager.settings_view())
}

/// Validates and saves a change; the download queue takes it at once (the cache folder at the next start).
#[tauri::command]
pub async fn update_settings(state: State<'_, AppState>, patch: SettingsPatch) -> Result<SettingsView, ErrorPayload> {
    state.manager.update_settings(patch)
}
