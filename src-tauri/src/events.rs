//! Event names, built in one place, and the forwarding of core events to the window.

use crate::AppState;
use mm_core::download::{DownloadEvent, LifecycleKind, ModelLifecycle};
use mm_core::Manager;
use tauri::{AppHandle, Emitter, Manager as _, Runtime};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::broadcast::error::RecvError;

/// A download's progress, at most ~10 times a second while bytes move and on every state change.
/// Payload: `DownloadProgress`.
pub const DOWNLOAD_PROGRESS: &str = "download-progress";
/// A model's state changed (queued, started, completed, failed, cancelled, ...). Payload: `ModelLifecycle`.
pub const MODEL_LIFECYCLE: &str = "model-lifecycle";

/// Something done outside a command failed (a tray click). Payload: `ErrorPayload`.
pub const APP_ERROR: &str = "app-error";
/// The settings file changed (from `mm config set`, say). No payload: read them again.
pub const SETTINGS_CHANGED: &str = "settings-changed";
/// Models appeared or went in a library folder or the models folder. No payload: read the library again.
pub const LIBRARY_CHANGED: &str = "library-changed";
// A verification's progress (`verify-progress`, payload `VerifyProgress`) is the `verify` row's event, sent by
// `commands::operations`.

/// A desktop notification when a download finishes or fails, unless turned off in Settings.
fn notify<R: Runtime>(app: &AppHandle<R>, event: &ModelLifecycle) {
    let (title, body) = match event.kind {
        LifecycleKind::Completed => ("Download complete", format!("{} is ready to use.", event.repo)),
        LifecycleKind::Failed => (
            "Download failed",
            event
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| format!("{} could not be downloaded.", event.repo)),
        ),
        _ => return,
    };
    let enabled = app.try_state::<AppState>().is_some_and(|s| s.manager.settings().notify_downloads);
    if enabled {
        let _ = app.notification().builder().title(title).body(body).show();
    }
}

/// A loaded model's state, memory or endpoint changed, or it was unloaded. Payload: `RuntimeChange`.
pub const RUNTIME_CHANGED: &str = "runtime-changed";

/// The window drives another machine now (or this one again). Payload: its address, or null for this one.
pub const MACHINE_CHANGED: &str = "machine-changed";

/// Sends every event of this machine's core (downloads' progress, every model's lifecycle) to the window while it
/// drives this machine, until the app ends, with a desktop notification when a download finishes or fails.
pub fn forward<R: Runtime>(app: AppHandle<R>, manager: &Manager) {
    let events = manager.subscribe();
    tauri::async_runtime::spawn(relay(app.clone(), events, true));
    // The runtime host's changes (this machine's loaded models), from whichever face loaded them.
    let mut changes = manager.subscribe_runtime();
    let watcher = manager.clone();
    tauri::async_runtime::spawn(async move { watcher.watch_runtime() });
    tauri::async_runtime::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(change) => {
                    if app.try_state::<AppState>().is_none_or(|s| s.is_local()) {
                        let _ = app.emit(RUNTIME_CHANGED, change);
                    }
                    crate::tray::refresh(&app);
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    });
}

/// Sends another machine's events to the window while it drives that machine: what `select_machine` starts and
/// stops.
pub fn forward_remote<R: Runtime>(
    app: AppHandle<R>,
    machine: &mm_core::machine::Machine,
) -> tauri::async_runtime::JoinHandle<()> {
    tauri::async_runtime::spawn(relay(app, machine.subscribe(), false))
}

/// Relays `events` to the window until they end. This machine's (`local`) notify the desktop, and reach the window
/// only while it drives this machine.
async fn relay<R: Runtime>(
    app: AppHandle<R>,
    mut events: tokio::sync::broadcast::Receiver<DownloadEvent>,
    local: bool,
) {
    let shown = |app: &AppHandle<R>| !local || app.try_state::<AppState>().is_none_or(|s| s.is_local());
    loop {
        match events.recv().await {
            Ok(DownloadEvent::Progress(progress)) => {
                if shown(&app) {
                    let _ = app.emit(DOWNLOAD_PROGRESS, progress);
                }
            }
            Ok(DownloadEvent::Lifecycle(lifecycle)) => {
                if local {
                    notify(&app, &lifecycle);
                }
                if shown(&app) {
                    let _ = app.emit(MODEL_LIFECYCLE, lifecycle);
                }
            }
            // The other machine's stream had a gap: everything the window shows of it is read again.
            Ok(DownloadEvent::Stale) => {
                if shown(&app) {
                    let url = app.try_state::<AppState>().and_then(|s| match s.machine() {
                        mm_core::machine::Machine::Remote(remote) => Some(remote.url().to_string()),
                        mm_core::machine::Machine::Local(_) => None,
                    });
                    let _ = app.emit(MACHINE_CHANGED, url);
                }
            }
            // A slow window missed some progress; the next update carries the totals.
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        }
    }
}
