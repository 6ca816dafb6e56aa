//! Commands about the app itself: its readiness, its log and the diagnostics for a bug report.

use crate::AppState;
use mm_core::{ErrorCode, ErrorPayload};
use tauri::{AppHandle, Runtime, State};

/// Set (to anything but `0`) to quit as soon as the window has drawn its first view: how `scripts/run` is
/// smoke-tested (`MM_EXIT_WHEN_READY=1 scripts/run` builds, opens the window, waits for it, and quits cleanly).
pub const EXIT_WHEN_READY: &str = "MM_EXIT_WHEN_READY";

/// The window says its first view is drawn: the web UI loaded, its script runs and it reached the core. Files
/// the app was started with (`model-manager a.gguf`, "Open with") are imported now, when the window can show it.
#[tauri::command]
pub async fn window_ready<R: Runtime>(app: AppHandle<R>, state: State<'_, AppState>) -> Result<(), ErrorPayload> {
    tracing::info!("the window is ready");
    if std::env::var(EXIT_WHEN_READY).is_ok_and(|v| !v.is_empty() && v != "0") {
        eprintln!("Model Manager: the window is ready; quitting ({EXIT_WHEN_READY} is set)");
        app.exit(0);
        return Ok(());
    }
    let opened = std::mem::take(&mut *state.opened_files.lock().unwrap());
    if !opened.is_empty() {
        super::sources::import(&app, opened).await;
    }
    Ok(())
}

/// Where the app writes its log.
#[tauri::command]
pub fn log_folder(state: State<'_, AppState>) -> String {
    state.manager.log_dir().display().to_string()
}

/// Opens the log folder in the file manager.
#[tauri::command]
pub fn open_log_folder(state: State<'_, AppState>) -> Result<(), ErrorPayload> {
    let dir = state.manager.log_dir();
    std::fs::create_dir_all(&dir).map_err(|e| {
        ErrorPayload::new(ErrorCode::of_io(&e), format!("cannot create the log folder {}: {e}", dir.display()))
    })?;
    super::open_in_file_manager(&dir)
}

/// The text for a bug report (version, system, settings without the token, the end of the log), put on the
/// desktop's clipboard; returned too, for the window to show what was copied.
#[tauri::command]
pub async fn copy_diagnostics<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> Result<String, ErrorPayload> {
    let text = state.manager.diagnostics(concat!("Model Manager ", env!("CARGO_PKG_VERSION"))).await?;
    let copy = text.clone();
    let unavailable = |e: &dyn std::fmt::Display| {
        ErrorPayload::new(ErrorCode::Internal, format!("the clipboard is not available: {e}"))
    };
    // On GTK's thread; the answer waits until the text is on the clipboard.
    let (done, copied) = tokio::sync::oneshot::channel();
    app.run_on_main_thread(move || {
        let clipboard = gtk::Clipboard::get(&gtk::gdk::SELECTION_CLIPBOARD);
        clipboard.set_text(&copy);
        // Kept by a clipboard manager, where there is one, after the app quits.
        clipboard.store();
        let _ = done.send(());
    })
    .map_err(|e| unavailable(&e))?;
    copied.await.map_err(|e| unavailable(&e))?;
    Ok(text)
}
