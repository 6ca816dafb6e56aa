//! Event names, built in one place, and the forwarding of core events to the window.

use crate::AppState;
use mm_core::download::{DownloadEvent, Downloads, LifecycleKind, ModelLifecycle};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;

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
/// A verification's progress. Payload: `VerifyProgress`.
pub const VERIFY_PROGRESS: &str = "verify-progress";

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
    let enabled = app.try_state::<AppState>().is_some_and(|s| s.settings().notify_downloads);
    if enabled {
        let _ = app.notification().builder().title(title).body(body).show();
    }
}

/// After the settings file changed through this app (activation, a tray click, a reconcile): keep the new settings,
/// tell the window what changed, and rebuild the tray menu.
pub(crate) fn changed<R: Runtime>(app: &AppHandle<R>, state: &AppState, changes: Vec<ModelLifecycle>) {
    if let Ok((settings, _)) = state.store.load() {
        state.settings_changed(settings);
    }
    for change in changes {
        let _ = app.emit(MODEL_LIFECYCLE, change);
    }
    crate::tray::refresh(app);
}

/// The lifecycle event of a delete.
pub fn deleted(report: &mm_core::library::delete::DeleteReport) -> mm_core::download::ModelLifecycle {
    mm_core::download::ModelLifecycle {
        kind: mm_core::download::LifecycleKind::Deleted,
        repo: report.id.clone(),
        revision: report.revision.clone().unwrap_or_default(),
        download_id: None,
        error: None,
    }
}

/// Sends every download event to the window until the app ends.
pub fn forward_downloads<R: Runtime>(app: AppHandle<R>, downloads: &Downloads) {
    let mut events = downloads.subscribe();
    tauri::async_runtime::spawn(async move {
        let mut tray_updated = std::time::Instant::now();
        loop {
            match events.recv().await {
                Ok(DownloadEvent::Progress(progress)) => {
                    let _ = app.emit(DOWNLOAD_PROGRESS, progress);
                    // The tray's download percentages, at most once a second.
                    if tray_updated.elapsed() >= std::time::Duration::from_secs(1) {
                        tray_updated = std::time::Instant::now();
                        crate::tray::refresh(&app);
                    }
                }
                Ok(DownloadEvent::Lifecycle(lifecycle)) => {
                    notify(&app, &lifecycle);
                    let _ = app.emit(MODEL_LIFECYCLE, lifecycle);
                    crate::tray::refresh(&app);
                }
                // A slow window missed some progress; the next update carries the totals.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
