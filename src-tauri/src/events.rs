//! Event names, built in one place, and the forwarding of core events to the window.

use mm_core::download::{DownloadEvent, Downloads};
use tauri::{AppHandle, Emitter, Runtime};

/// A download's progress, at most ~10 times a second while bytes move and on every state change.
/// Payload: `DownloadProgress`.
pub const DOWNLOAD_PROGRESS: &str = "download-progress";
/// A model's state changed (queued, started, completed, failed, cancelled, ...). Payload: `ModelLifecycle`.
pub const MODEL_LIFECYCLE: &str = "model-lifecycle";

/// A verification's progress. Payload: `VerifyProgress`.
pub const VERIFY_PROGRESS: &str = "verify-progress";

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
        loop {
            match events.recv().await {
                Ok(DownloadEvent::Progress(progress)) => {
                    let _ = app.emit(DOWNLOAD_PROGRESS, progress);
                }
                Ok(DownloadEvent::Lifecycle(lifecycle)) => {
                    let _ = app.emit(MODEL_LIFECYCLE, lifecycle);
                }
                // A slow window missed some progress; the next update carries the totals.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
