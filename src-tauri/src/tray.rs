//! The system tray: installed models grouped by type with a check mark on the active one (one click switches),
//! Load or Unload for each active model with its state, a line per running download with its percent, "Open
//! Model Manager" and "Quit". The menu is a plain
//! [`TrayModel`] built from the library first (tested without a window), then turned into Tauri menus.

use crate::{events, AppState};
use mm_core::download::{DownloadEvent, DownloadProgress, DownloadState};
use mm_core::library::{LibraryModel, ModelStatus, ModelType};
use mm_core::runtime::{LoadedModel, RuntimeState};
use mm_core::settings::ActiveModel;
use std::collections::BTreeMap;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::broadcast::error::RecvError;

pub const TRAY_ID: &str = "main";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayModel {
    pub groups: Vec<TrayGroup>,
    /// "Load acme/model" or "Unload acme/model (ready)" per active model: `load:{type}` or `unload:{type}`.
    pub runtime: Vec<TrayItem>,
    /// "acme/model 45%" per running or queued download.
    pub downloads: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayGroup {
    pub model_type: ModelType,
    pub label: String,
    pub items: Vec<TrayItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayItem {
    /// The menu id: `activate:{type}:{model id}`.
    pub id: String,
    pub label: String,
    pub checked: bool,
}

/// The menu for this library: complete models by type (in the order of [`ModelType::ALL`]), and downloads.
pub fn model(
    models: &[LibraryModel],
    active: &BTreeMap<String, ActiveModel>,
    loaded: &[LoadedModel],
    downloads: &[DownloadProgress],
) -> TrayModel {
    let groups = ModelType::ALL
        .into_iter()
        .filter_map(|t| {
            let mut items: Vec<TrayItem> = models
                .iter()
                .filter(|m| m.model_type == t && matches!(m.status, ModelStatus::Available | ModelStatus::Active))
                .map(|m| TrayItem {
                    id: format!("activate:{}:{}", t.as_str(), m.id),
                    label: m.id.clone(),
                    checked: active.get(t.as_str()).is_some_and(|a| a.id == m.id),
                })
                .collect();
            items.sort_by_key(|item| item.label.to_lowercase());
            (!items.is_empty()).then(|| TrayGroup { model_type: t, label: t.label().to_string(), items })
        })
        .collect();
    let downloads = downloads
        .iter()
        .filter(|d| matches!(d.state, DownloadState::Queued | DownloadState::Downloading | DownloadState::Verifying))
        .map(|d| {
            let percent = (d.bytes_done * 100).checked_div(d.bytes_total).unwrap_or(0);
            match d.state {
                DownloadState::Queued => format!("{} (queued)", d.repo),
                _ => format!("{} {percent}%", d.repo),
            }
        })
        .collect();
    let runtime = ModelType::ALL
        .into_iter()
        .filter_map(|t| {
            let chosen = active.get(t.as_str())?;
            Some(match loaded.iter().find(|m| m.model_type == t) {
                Some(m) => TrayItem {
                    id: format!("unload:{}", t.as_str()),
                    label: format!("Unload {} ({})", m.id, state_label(m.state)),
                    checked: true,
                },
                None => TrayItem {
                    id: format!("load:{}", t.as_str()),
                    label: format!("Load {}", chosen.id),
                    checked: false,
                },
            })
        })
        .collect();
    TrayModel { groups, runtime, downloads }
}

fn state_label(state: RuntimeState) -> &'static str {
    match state {
        RuntimeState::Loading => "loading",
        RuntimeState::Ready => "ready",
        RuntimeState::Unhealthy => "unhealthy",
        RuntimeState::Draining => "unloading",
        RuntimeState::Stopped => "stopped",
    }
}

/// Parses a menu id back into (type, model id) for an activation click.
pub fn activation_target(menu_id: &str) -> Option<(ModelType, &str)> {
    let rest = menu_id.strip_prefix("activate:")?;
    let (t, id) = rest.split_once(':')?;
    Some((t.parse::<ModelType>().ok()?, id))
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, tray: &TrayModel) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    if tray.groups.is_empty() {
        menu.append(&MenuItem::with_id(app, "none", "No models installed", false, None::<&str>)?)?;
    }
    for group in &tray.groups {
        let submenu = Submenu::new(app, &group.label, true)?;
        for item in &group.items {
            submenu.append(&CheckMenuItem::with_id(app, &item.id, &item.label, true, item.checked, None::<&str>)?)?;
        }
        menu.append(&submenu)?;
    }
    if !tray.runtime.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
        for item in &tray.runtime {
            menu.append(&MenuItem::with_id(app, &item.id, &item.label, true, None::<&str>)?)?;
        }
    }
    if !tray.downloads.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
        for (i, line) in tray.downloads.iter().enumerate() {
            menu.append(&MenuItem::with_id(
                app,
                format!("download:{i}"),
                format!("Downloading {line}"),
                false,
                None::<&str>,
            )?)?;
        }
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(app, "open", "Open Model Manager", true, None::<&str>)?)?;
    menu.append(&MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?)?;
    Ok(menu)
}

/// The tray model of the app's current library (Ollama's models as last listed: the menu never waits on a server).
fn current<R: Runtime>(app: &AppHandle<R>) -> TrayModel {
    let manager = &app.state::<AppState>().manager;
    model(&manager.models_now(), &manager.settings().active, &manager.loaded_now(), &manager.downloads())
}

/// Creates the tray icon with its menu.
pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let menu = build_menu(app, &current(app))?;
    let mut builder =
        TrayIconBuilder::with_id(TRAY_ID).tooltip("Model Manager").menu(&menu).on_menu_event(|app, event| {
            on_menu(app, event.id().as_ref());
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)?;
    Ok(())
}

/// Rebuilds the menu from the library (after any change). Does nothing when there is no tray (tests).
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else { return };
    let app = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let model = current(&app);
        if let Ok(menu) = build_menu(&app, &model) {
            let _ = tray.set_menu(Some(menu));
        }
    });
}

/// Keeps the menu in step with the core: after every model's change, and with the downloads' percentages at most
/// once a second.
pub fn follow<R: Runtime>(app: AppHandle<R>) {
    let mut events = app.state::<AppState>().manager.subscribe();
    tauri::async_runtime::spawn(async move {
        let mut updated = std::time::Instant::now();
        loop {
            match events.recv().await {
                Ok(DownloadEvent::Progress(_)) if updated.elapsed() < std::time::Duration::from_secs(1) => {}
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    updated = std::time::Instant::now();
                    refresh(&app);
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    match id {
        "open" => crate::show_main_window(app),
        "quit" => app.exit(0),
        other if other.starts_with("load:") || other.starts_with("unload:") => {
            let (app, target) = (app.clone(), other.to_string());
            tauri::async_runtime::spawn(async move {
                let manager = &app.state::<AppState>().manager;
                let done = match target.split_once(':') {
                    Some(("load", t)) => manager.load(Some(t), None, false).await.map(|_| ()),
                    Some((_, t)) => manager.unload(Some(t)).await.map(|_| ()),
                    None => Ok(()),
                };
                if let Err(err) = done {
                    let _ = app.emit(events::APP_ERROR, err);
                }
                refresh(&app);
            });
        }
        other => {
            if let Some((model_type, model_id)) = activation_target(other) {
                // An Ollama model asks the server for its file: off the menu's thread.
                let (app, model_id) = (app.clone(), model_id.to_string());
                tauri::async_runtime::spawn(async move {
                    let manager = &app.state::<AppState>().manager;
                    if let Err(err) = manager.activate(&model_id, Some(model_type.as_str()), None).await {
                        let _ = app.emit(events::APP_ERROR, err);
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mm_core::library::{ModelFormat, ModelSource, TypeOrigin};

    fn m(id: &str, t: ModelType, status: ModelStatus) -> LibraryModel {
        LibraryModel {
            id: id.into(),
            display_name: id.into(),
            source: ModelSource::HuggingFace,
            model_type: t,
            type_origin: TypeOrigin::Config,
            status,
            revision: None,
            commit: None,
            revisions: 1,
            files: 1,
            size: 1,
            format: ModelFormat::Gguf,
            downloaded_at: None,
            last_used: None,
            path: String::new(),
            pipeline_tag: None,
            library_name: None,
            architectures: vec![],
            tags: vec![],
            gated: false,
            error: None,
            download_id: None,
            adapter: None,
            adapters: Vec::new(),
            pinned: false,
        }
    }

    #[test]
    fn the_menu_groups_complete_models_by_type_and_checks_the_active_one() {
        let models = vec![
            m("b/llm", ModelType::TextGeneration, ModelStatus::Available),
            m("a/llm", ModelType::TextGeneration, ModelStatus::Active),
            m("e/embed", ModelType::Embedding, ModelStatus::Available),
            m("p/partial", ModelType::Embedding, ModelStatus::Partial),
        ];
        let mut active = BTreeMap::new();
        active.insert(
            "text-generation".to_string(),
            ActiveModel { id: "a/llm".into(), revision: "c".into(), activated_at: None },
        );
        let downloads = vec![
            DownloadProgress {
                id: 1,
                repo: "x/dl".into(),
                revision: "main".into(),
                commit: None,
                state: DownloadState::Downloading,
                bytes_done: 45,
                bytes_total: 100,
                files_done: 0,
                files_total: 1,
                bytes_per_second: 1,
                eta_seconds: None,
                error: None,
                transport: None,
            },
            DownloadProgress {
                id: 2,
                repo: "x/done".into(),
                revision: "main".into(),
                commit: None,
                state: DownloadState::Completed,
                bytes_done: 1,
                bytes_total: 1,
                files_done: 1,
                files_total: 1,
                bytes_per_second: 0,
                eta_seconds: None,
                error: None,
                transport: None,
            },
        ];
        let tray = model(&models, &active, &[], &downloads);
        let shape: Vec<(String, Vec<(String, bool)>)> = tray
            .groups
            .iter()
            .map(|g| (g.label.clone(), g.items.iter().map(|i| (i.label.clone(), i.checked)).collect()))
            .collect();
        assert_eq!(
            shape,
            [
                ("Text generation".to_string(), vec![("a/llm".to_string(), true), ("b/llm".to_string(), false)]),
                ("Embedding".to_string(), vec![("e/embed".to_string(), false)]),
            ]
        );
        assert_eq!(tray.downloads, ["x/dl 45%"]);
        assert_eq!(activation_target(&tray.groups[1].items[0].id), Some((ModelType::Embedding, "e/embed")));
        assert_eq!(activation_target("open"), None);
        // The active model can be loaded; once loaded, unloaded, with its state.
        let load: Vec<(&str, &str)> = tray.runtime.iter().map(|i| (i.id.as_str(), i.label.as_str())).collect();
        assert_eq!(load, [("load:text-generation", "Load a/llm")]);
        let loaded: LoadedModel = serde_json::from_value(serde_json::json!({
            "modelType": "text-generation", "id": "a/llm", "runtime": "llama-server", "state": "ready",
            "endpoint": "http://127.0.0.1:1/v1", "pid": 1, "command": null, "plan": null, "estimateBytes": 0,
            "measured": null, "needBytes": 0, "requests": 0, "busy": 0, "pinned": false, "expiresAt": null, "restarts": 0,
            "loadedAt": 0, "lastUsed": 0, "owner": "app", "error": null
        }))
        .unwrap();
        let tray = model(&models, &active, &[loaded], &downloads);
        assert_eq!(tray.runtime[0].id, "unload:text-generation");
        assert_eq!(tray.runtime[0].label, "Unload a/llm (ready)");
    }
}
