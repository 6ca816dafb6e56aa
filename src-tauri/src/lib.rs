//! The Tauri shell: commands, events, tray and drag-and-drop over `mm-core`. It holds no logic of
//! its own; every command parses its arguments, calls the core and maps the error to the one wire shape.

mod commands;
mod events;
mod state;
mod tray;
mod watcher;

pub use state::AppState;
use tauri::{Manager, Runtime};

/// The app as a builder, shared by [`run`] and the command tests (which use Tauri's mock runtime).
pub fn builder<R: Runtime>(builder: tauri::Builder<R>, state: AppState) -> tauri::Builder<R> {
    use commands::{activation, app, compat, discover, downloads, library, models, settings, sources};
    builder
        .plugin(tauri_plugin_notification::init())
        .on_window_event(|window, event| {
            // Closing the window keeps the app in the tray, unless turned off in Settings.
            match event {
                tauri::WindowEvent::CloseRequested { api, .. } => {
                    let keep = window.try_state::<AppState>().is_some_and(|s| s.settings().keep_in_tray);
                    if keep && window.app_handle().tray_by_id(tray::TRAY_ID).is_some() {
                        api.prevent_close();
                        let _ = window.hide();
                    }
                }
                // Files dropped on the window are imported into the library.
                tauri::WindowEvent::DragDrop(drop) => sources::on_drag_drop(window.app_handle(), drop),
                _ => {}
            }
        })
        .setup(|app| {
            events::forward_downloads(app.handle().clone(), &app.state::<AppState>().downloads);
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
            library::list_library,
            library::model_details,
            library::delete_model,
            library::verify_model,
            library::set_model_type,
            library::storage_report,
            library::clean_storage,
            library::open_folder,
            settings::get_settings,
            settings::update_settings,
            activation::activate_model,
            activation::deactivate_type,
            activation::active_models,
            compat::system_info,
            compat::check_compatibility,
            compat::library_fit,
            discover::search_models,
            discover::repo_details,
            discover::starter_catalog,
            discover::open_url,
            sources::import_paths,
            sources::cancel_imports,
            sources::ollama_status,
            sources::ollama_pull,
            app::window_ready,
        ])
}

/// Shows, unminimises and focuses the main window (from the tray).
pub(crate) fn show_main_window<R: Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Starts the app with the real window.
pub fn run() {
    // Unfinished downloads are kept in the app's data folder across restarts and come back paused.
    let state = AppState::from_env(Some(mm_core::paths::download_journal()));
    let app = builder(tauri::Builder::default(), state)
        .build(tauri::generate_context!())
        .expect("Model Manager could not start its window");
    // The tray is optional: a desktop without a tray host still gets the window.
    if let Err(err) = tray::create(app.handle()) {
        eprintln!("warning: no system tray: {err}");
    }
    watcher::start(app.handle().clone());
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // Stop transfers cleanly: partial files stay for the next start.
            let downloads = handle.state::<AppState>().downloads.clone();
            tauri::async_runtime::block_on(downloads.shutdown());
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_webview_is_granted_only_the_event_api_it_uses() {
        // The UI imports `invoke` (app commands need no permission) and `listen`; nothing else: no store, no file
        // system, no shell. A script that ever ran in the webview gets no more than that.
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/main.json")).expect("the capability parses");
        assert_eq!(capability["permissions"], serde_json::json!(["core:event:default"]));
        let ui = include_str!("../../ui/src/lib/backend/tauri.ts");
        let imports: Vec<&str> = ui.lines().filter(|l| l.contains("from '@tauri-apps/")).collect();
        assert_eq!(
            imports,
            ["import { invoke } from '@tauri-apps/api/core';", "import { listen } from '@tauri-apps/api/event';"]
        );
    }

    #[test]
    fn the_core_knows_the_app_identifier_of_tauri_conf() {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../../tauri.conf.json")).expect("tauri.conf.json parses");
        assert_eq!(conf["identifier"], mm_core::paths::APP_ID);
    }
}
