//! Commands about the app itself.

use tauri::{AppHandle, Runtime};

/// Set (to anything but `0`) to quit as soon as the window has drawn its first view: how `scripts/run` is
/// smoke-tested (`MM_EXIT_WHEN_READY=1 scripts/run` builds, opens the window, waits for it, and quits cleanly).
pub const EXIT_WHEN_READY: &str = "MM_EXIT_WHEN_READY";

/// The window says its first view is drawn: the web UI loaded, its script runs and it reached the core.
#[tauri::command]
pub fn window_ready<R: Runtime>(app: AppHandle<R>) {
    if std::env::var(EXIT_WHEN_READY).is_ok_and(|v| !v.is_empty() && v != "0") {
        eprintln!("Model Manager: the window is ready; quitting ({EXIT_WHEN_READY} is set)");
        app.exit(0);
    }
}
