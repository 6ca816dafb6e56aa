//! The Tauri shell: commands, events, tray and drag-and-drop over `mm-core`. It holds no logic of
//! its own; every command parses its arguments, calls the core and maps the error to the one wire shape.

mod commands;
mod events;
mod local_server;
mod state;
mod tray;
mod watcher;

pub use state::AppState;
use tauri::{Manager, Runtime};

/// The app as a builder, shared by [`run`] and the command tests (which use Tauri's mock runtime).
pub fn builder<R: Runtime>(builder: tauri::Builder<R>, state: AppState) -> tauri::Builder<R> {
    use commands::{app, discover, library, machines, models, operations, settings, sources};
    builder
        .plugin(tauri_plugin_notification::init())
        .plugin(own_pages())
        .on_window_event(|window, event| {
            // Closing the window keeps the app in the tray, unless turned off in Settings.
            match event {
                tauri::WindowEvent::CloseRequested { api, .. } => {
                    let keep = window.try_state::<AppState>().is_some_and(|s| s.manager.settings().keep_in_tray);
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
            events::forward(app.handle().clone(), &app.state::<AppState>().manager);
            tray::follow(app.handle().clone());
            let state = app.state::<AppState>();
            state.local_server.apply(&state.manager);
            Ok(())
        })
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            operations::operation,
            models::list_models,
            library::open_folder,
            settings::get_settings,
            settings::update_settings,
            settings::local_server,
            discover::open_url,
            sources::import_paths,
            sources::cancel_imports,
            app::window_ready,
            app::log_folder,
            app::open_log_folder,
            app::copy_diagnostics,
            machines::list_machines,
            machines::add_machine,
            machines::remove_machine,
            machines::select_machine,
        ])
}

/// The window shows the app's own pages only: a link, form or `<meta refresh>` in content that came from elsewhere
/// (a model card another machine rendered) cannot take it to another page. Links open in the system browser
/// (`open_url`).
fn own_pages<R: Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri::plugin::Builder::new("own-pages")
        .on_navigation(|_, url| {
            let own = is_own_page(url);
            if !own {
                tracing::warn!(%url, "the window was sent to a page that is not the app's: refused");
            }
            own
        })
        .build()
}

/// The app's own origin as WebKitGTK loads it (`tauri://localhost`), or a blank page.
fn is_own_page(url: &tauri::Url) -> bool {
    (url.scheme() == "tauri" && url.host_str() == Some("localhost"))
        || (url.scheme() == "http" && url.host_str() == Some("tauri.localhost"))
        || url.as_str() == "about:blank"
}

/// Shows, unminimises and focuses the main window (from the tray).
pub(crate) fn show_main_window<R: Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// The files among a command line's arguments (paths relative to `cwd`, or `file://` URIs): what the desktop's
/// "Open with" passes, or a user's `model-manager a.gguf`. Only regular files: flags, names of nothing and
/// folders are left out (a second launch is a request from any program of the session, and a folder, copied into
/// the library, could be large).
fn opened_files(args: impl IntoIterator<Item = String>, cwd: &std::path::Path) -> Vec<std::path::PathBuf> {
    args.into_iter()
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| match a.strip_prefix("file:") {
            Some(_) => tauri::Url::parse(&a).ok()?.to_file_path().ok(),
            None => Some(cwd.join(a)),
        })
        .filter(|p| p.is_file())
        .collect()
}

/// The D-Bus name that makes one app per data folder: a second launch over the same settings, library and
/// downloads hands its files to the first and quits; an app with another data folder (another profile, a test)
/// is another app.
fn instance_name(data_dir: &std::path::Path) -> String {
    let data_dir = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf());
    // FNV-1a: the same name from every build, for the same folder.
    let hash = data_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3));
    format!("{}.d{hash:016x}", mm_core::paths::APP_ID)
}

/// Starts the app with the real window.
pub fn run() {
    let data_dir = mm_core::paths::app_data_dir();
    let log_dir = mm_core::logs::log_dir(&data_dir);
    if let Err(err) = mm_core::logs::to_file(&log_dir) {
        eprintln!("warning: no log file in {}: {err}", log_dir.display());
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), data = %data_dir.display(), "Model Manager starting");
    // Unfinished downloads are kept in the app's data folder across restarts and come back paused.
    let state = AppState::from_env(Some(mm_core::paths::download_journal()));
    let cwd = std::env::current_dir().unwrap_or_default();
    *state.opened_files.lock().unwrap() = opened_files(std::env::args().skip(1), &cwd);
    let single = tauri_plugin_single_instance::Builder::new()
        .dbus_id(instance_name(&data_dir))
        .callback(|app, argv, cwd| {
            // A second launch: this window comes forward and imports the files it was given.
            tracing::info!(args = argv.len().saturating_sub(1), "a second launch handed over");
            show_main_window(app);
            let files = opened_files(argv.into_iter().skip(1), std::path::Path::new(&cwd));
            if !files.is_empty() {
                let app = app.clone();
                tauri::async_runtime::spawn(async move { commands::sources::import(&app, files).await });
            }
        })
        .build();
    // Size, position and maximised state; never visibility (a window closed to the tray opens again).
    use tauri_plugin_window_state::StateFlags;
    let window_state = tauri_plugin_window_state::Builder::default()
        .with_state_flags(StateFlags::SIZE | StateFlags::POSITION | StateFlags::MAXIMIZED)
        .build();
    // The single-instance plugin first: a second launch quits before anything else starts.
    let app = builder(tauri::Builder::default().plugin(single).plugin(window_state), state)
        .build(tauri::generate_context!())
        .expect("Model Manager could not start its window");
    // The tray is optional: a desktop without a tray host still gets the window.
    if let Err(err) = tray::create(app.handle()) {
        tracing::warn!(%err, "no system tray");
        eprintln!("warning: no system tray: {err}");
    }
    watcher::start(app.handle().clone());
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // Stop transfers cleanly: partial files stay for the next start.
            let manager = handle.state::<AppState>().manager.clone();
            tauri::async_runtime::block_on(manager.shutdown());
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
    fn one_instance_per_data_folder_under_a_valid_dbus_name() {
        let a = super::instance_name(std::path::Path::new("/home/ada/.local/share/dev.model-manager.app"));
        assert_eq!(a, super::instance_name(std::path::Path::new("/home/ada/.local/share/dev.model-manager.app")));
        assert_ne!(a, super::instance_name(std::path::Path::new("/tmp/e2e/data/dev.model-manager.app")));
        // D-Bus: elements of letters, digits, `_` and `-`, none starting with a digit.
        for element in a.split('.') {
            assert!(!element.is_empty() && !element.starts_with(|c: char| c.is_ascii_digit()), "{a}");
            assert!(element.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{a}");
        }
    }

    #[test]
    fn opened_files_are_existing_paths_among_the_arguments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.gguf"), b"GGUF").unwrap();
        std::fs::write(dir.path().join("b c.gguf"), b"GGUF").unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        let uri = format!("file://{}/b%20c.gguf", dir.path().display());
        let args = ["--flag", "a.gguf", "missing.gguf", "folder", &uri];
        let files = super::opened_files(args.map(String::from), dir.path());
        assert_eq!(files, [dir.path().join("a.gguf"), dir.path().join("b c.gguf")]);
    }

    #[test]
    fn the_window_stays_on_the_apps_own_pages() {
        for own in ["tauri://localhost/", "tauri://localhost/index.html#/library", "about:blank"] {
            assert!(super::is_own_page(&own.parse().unwrap()), "{own}");
        }
        for elsewhere in ["https://evil.example/", "http://localhost:8765/", "file:///etc/passwd", "tauri://evil/"] {
            assert!(!super::is_own_page(&elsewhere.parse().unwrap()), "{elsewhere}");
        }
    }

    #[test]
    fn the_core_knows_the_app_identifier_of_tauri_conf() {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../../tauri.conf.json")).expect("tauri.conf.json parses");
        assert_eq!(conf["identifier"], mm_core::paths::APP_ID);
    }
}
