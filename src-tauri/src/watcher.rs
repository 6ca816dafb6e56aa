//! Changes made outside the window (`mm activate`, `mm config set`, another instance) reach the app within a
//! second: the settings file is polled for a new modification time, and the differences in the active models
//! become lifecycle events for the window, and a new tray menu.

use crate::{events, tray, AppState};
use mm_core::download::{LifecycleKind, ModelLifecycle};
use mm_core::settings::ActiveModel;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use tauri::{AppHandle, Emitter, Manager, Runtime};

const POLL: Duration = Duration::from_millis(400);
/// Library folders are fingerprinted every this many polls (2 s).
const FOLDER_TICKS: u32 = 5;

/// The events that turn `before` into `after`.
pub fn active_changes(
    before: &BTreeMap<String, ActiveModel>,
    after: &BTreeMap<String, ActiveModel>,
) -> Vec<ModelLifecycle> {
    let event = |kind, a: &ActiveModel| ModelLifecycle {
        kind,
        repo: a.id.clone(),
        revision: a.revision.clone(),
        download_id: None,
        error: None,
    };
    let mut out = Vec::new();
    for (t, old) in before {
        if after.get(t) != Some(old) && after.get(t).is_none_or(|new| new.id != old.id || new.revision != old.revision)
        {
            out.push(event(LifecycleKind::Deactivated, old));
        }
    }
    for (t, new) in after {
        if before.get(t).is_none_or(|old| old.id != new.id || old.revision != new.revision) {
            out.push(event(LifecycleKind::Activated, new));
        }
    }
    out
}

pub fn start<R: Runtime>(app: AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        let modified = |app: &AppHandle<R>| -> Option<SystemTime> {
            std::fs::metadata(app.state::<AppState>().store.path()).and_then(|m| m.modified()).ok()
        };
        let mut last = modified(&app);
        let folders = |app: &AppHandle<R>| {
            let state = app.state::<AppState>();
            let mut dirs: Vec<std::path::PathBuf> =
                state.settings().library_folders.iter().map(std::path::PathBuf::from).collect();
            dirs.push(mm_core::local::models_dir(&state.activation.data_dir));
            dirs
        };
        let mut signature = None;
        let mut tick = 0u32;
        loop {
            tokio::time::sleep(POLL).await;
            tick += 1;
            // Library folders (and the models folder) are read every few ticks: other programs add models there.
            if tick.is_multiple_of(FOLDER_TICKS) {
                let dirs = folders(&app);
                let now = tauri::async_runtime::spawn_blocking(move || mm_core::local::list::folders_signature(&dirs))
                    .await
                    .ok();
                if signature.is_some() && now != signature {
                    let _ = app.emit(events::LIBRARY_CHANGED, ());
                    tray::refresh(&app);
                }
                signature = now;
            }
            let now = modified(&app);
            if now == last {
                continue;
            }
            last = now;
            let state = app.state::<AppState>();
            let Ok((settings, _)) = state.store.load() else { continue };
            let before = state.settings().active;
            let changes = active_changes(&before, &settings.active);
            state.settings_changed(settings);
            for change in changes {
                let _ = app.emit(events::MODEL_LIFECYCLE, change);
            }
            let _ = app.emit(events::SETTINGS_CHANGED, ());
            tray::refresh(&app);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(id: &str, rev: &str) -> ActiveModel {
        ActiveModel { id: id.into(), revision: rev.into(), activated_at: None }
    }

    #[test]
    fn differences_in_active_models_become_events() {
        let mut before = BTreeMap::new();
        before.insert("text-generation".to_string(), a("x/one", "c1"));
        before.insert("embedding".to_string(), a("x/emb", "c1"));
        let mut after = BTreeMap::new();
        after.insert("text-generation".to_string(), a("x/two", "c2"));
        after.insert("embedding".to_string(), a("x/emb", "c1"));
        after.insert("other".to_string(), a("x/o", "c3"));
        let kinds: Vec<_> = active_changes(&before, &after).into_iter().map(|e| (e.kind, e.repo)).collect();
        assert_eq!(
            kinds,
            [
                (LifecycleKind::Deactivated, "x/one".to_string()),
                (LifecycleKind::Activated, "x/o".to_string()),
                (LifecycleKind::Activated, "x/two".to_string()),
            ]
        );
        assert!(active_changes(&after, &after).is_empty());
    }
}
