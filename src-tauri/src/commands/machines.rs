//! Commands about the machines the window drives: this one, or another one's `mm serve` (Settings → Machines,
//! and the switcher in the header). Library, Downloads, System, Activation and Discover's download then act on the
//! chosen machine; the tray and drag-and-drop stay on this one.

use crate::{events, AppState};
use mm_core::machine::{Machine, MachineList};
use mm_core::settings::MachineEntry;
use mm_core::ErrorPayload;
use tauri::{AppHandle, Emitter, Runtime, State};

#[tauri::command]
pub async fn list_machines(state: State<'_, AppState>) -> Result<MachineList, ErrorPayload> {
    let current = match state.machine() {
        Machine::Local(_) => None,
        Machine::Remote(remote) => Some(remote.url().to_string()),
    };
    Ok(MachineList::new(current, state.manager.settings().machines))
}

/// Adds another machine by its address and token, once it answers with them.
#[tauri::command]
pub async fn add_machine(
    state: State<'_, AppState>,
    name: String,
    url: String,
    token: Option<String>,
) -> Result<MachineEntry, ErrorPayload> {
    state.manager.add_machine(&name, &url, token.as_deref()).await
}

/// Forgets a machine (and drives this one again if it was the one driven).
#[tauri::command]
pub async fn remove_machine<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    url: String,
) -> Result<(), ErrorPayload> {
    state.manager.remove_machine(&url)?;
    if matches!(state.machine(), Machine::Remote(r) if r.url() == url) {
        select(&app, &state, None)?;
    }
    Ok(())
}

/// Drives another machine (its address), or this one (null).
#[tauri::command]
pub async fn select_machine<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    url: Option<String>,
) -> Result<(), ErrorPayload> {
    select(&app, &state, url)
}

fn select<R: Runtime>(app: &AppHandle<R>, state: &AppState, url: Option<String>) -> Result<(), ErrorPayload> {
    let machine = match &url {
        Some(url) => Machine::Remote(state.manager.remote(url)?),
        None => Machine::Local(state.manager.clone()),
    };
    if let Some(previous) = state.remote_events.lock().unwrap().take() {
        previous.abort();
    }
    if matches!(machine, Machine::Remote(_)) {
        *state.remote_events.lock().unwrap() = Some(events::forward_remote(app.clone(), &machine));
    }
    tracing::info!(machine = %machine.name(), "the window drives another machine");
    *state.current.lock().unwrap() = machine;
    let _ = app.emit(events::MACHINE_CHANGED, url);
    Ok(())
}
