//! The Tauri shell: commands, events, tray, drag-and-drop and store wiring over `mm-core`. It holds no logic of
//! its own; every command parses its arguments, calls the core and maps the error to the one wire shape.

mod commands;
mod events;
mod state;

pub use state::AppState;
use tauri::{Manager, Runtime};

/// The app as a builder, shared by [`run`] and the command tests (which use Tauri's mock runtime).
pub fn builder<R: Runtime>(builder: tauri::Builder<R>, state: AppState) -> tauri::Builder<R> {
    use commands::{downloads, models};
    builder
        .plugin(tauri_plugin_store::Builder::new().build())
        .setup(|app| {
            let state = app.state::<AppState>();
            events::forward_downloads(app.handle().clone(), &state.downloads);
            Ok(())
        })
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            models::list_models,
            downloads::preview_download,
            downloads::start_download,
            downloads::pause_download,
            downloads::resume_download,
            downloads::cancel_download,
            downloads::list_downloads,
        ])
}

/// Starts the app with the real window.
pub fn run() {
    builder(tauri::Builder::default(), AppState::from_env())
        .run(tauri::generate_context!())
        .expect("Model Manager could not start its window");
}
