//! Changes made outside the window (`mm activate`, `mm config set`, `mm load`) reach the app as they happen: the
//! settings file's folder is watched with inotify (the `notify` crate). A change to the settings file becomes
//! lifecycle events for the differences in the active models, and a new tray menu; a change to `active.json`, the
//! window following the runtime host. The library's folders are the core's to watch ([`mm_core::Manager::
//! keep_library_current`]): each change in what it lists is a `library-changed` event. Where watching fails (no
//! inotify, its limit reached), the settings file is polled instead.

use crate::{events, tray, AppState};
use mm_core::download::{LifecycleKind, ModelLifecycle};
use mm_core::file_events::FileNews;
use mm_core::settings::ActiveModel;
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::mpsc;

/// Events are handled together once none came for this long (a write by rename is several), or at most this
/// long after the first.
const SETTLE: Duration = Duration::from_millis(200);
const MAX_SETTLE: Duration = Duration::from_secs(2);
/// The fallback: the settings file's time is read this often.
const POLL: Duration = Duration::from_millis(400);

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

/// What a batch of file events touched.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Touched {
    pub settings: bool,
    /// `active.json` beside the settings: the runtime host rewrites it when it starts and on every load.
    pub runtime: bool,
}

/// Sorts event paths: the settings file itself (written by rename, so its folder is watched and the journal and
/// logs beside it are not its changes), or `active.json`.
pub fn touched<'a>(paths: impl IntoIterator<Item = &'a Path>, settings_file: &Path) -> Touched {
    let mut touched = Touched::default();
    for path in paths {
        if path == settings_file {
            touched.settings = true;
        } else if settings_file.parent().is_some_and(|d| path == d.join("active.json")) {
            touched.runtime = true;
        }
    }
    touched
}

/// Reads the settings file again: the differences in the active models become events, the tray its new menu.
fn settings_changed<R: Runtime>(app: &AppHandle<R>) {
    let Ok((before, after)) = app.state::<AppState>().manager.reload_settings() else { return };
    let changes = active_changes(&before.active, &after.active);
    for change in changes {
        let _ = app.emit(events::MODEL_LIFECYCLE, change);
    }
    let _ = app.emit(events::SETTINGS_CHANGED, ());
    tray::refresh(app);
    let state = app.state::<AppState>();
    state.local_server.apply(&state.manager);
}

/// Each change in what the library lists, as the core tells it: a `library-changed` event and a new tray menu.
async fn library_changes<R: Runtime>(app: AppHandle<R>) {
    let manager = app.state::<AppState>().manager.clone();
    let mut changes = manager.subscribe_library();
    manager.keep_library_current();
    loop {
        match changes.recv().await {
            Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                let _ = app.emit(events::LIBRARY_CHANGED, ());
                tray::refresh(&app);
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// What the watcher reports: changed paths, or "anything may have changed" (the kernel's queue overflowed, or
/// watching failed), which re-reads everything.
pub fn start<R: Runtime>(app: AppHandle<R>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |event: notify::Result<notify::Event>| {
        if let Some(news) = mm_core::file_events::news(event, "settings") {
            let _ = tx.send(news);
        }
    };
    let watcher = notify::RecommendedWatcher::new(handler, notify::Config::default());
    tauri::async_runtime::spawn(library_changes(app.clone()));
    tauri::async_runtime::spawn(async move {
        match watcher {
            Ok(watcher) => watch(app, watcher, rx).await,
            Err(err) => {
                tracing::warn!(%err, "cannot watch files; polling them instead");
                poll(app).await
            }
        }
    });
}

async fn watch<R: Runtime>(
    app: AppHandle<R>,
    mut watcher: notify::RecommendedWatcher,
    mut rx: mpsc::UnboundedReceiver<FileNews>,
) {
    let settings_file = app.state::<AppState>().manager.store().path().to_path_buf();
    let settings_dir = settings_file.parent().map(Path::to_path_buf).unwrap_or_default();
    let watched = std::fs::create_dir_all(&settings_dir)
        .map_err(notify::Error::io)
        .and_then(|()| watcher.watch(&settings_dir, RecursiveMode::NonRecursive));
    if let Err(err) = watched {
        tracing::warn!(%err, "cannot watch the settings folder; polling the settings file instead");
        drop(watcher);
        return poll(app).await;
    }
    tracing::info!("watching the settings folder with inotify");
    while let Some(first) = rx.recv().await {
        // Changes that keep coming are gathered until they pause, for at most MAX_SETTLE.
        let mut changes = vec![first];
        let deadline = tokio::time::Instant::now() + MAX_SETTLE;
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                more = rx.recv() => match more {
                    Some(more) => {
                        changes.push(more);
                        settle.as_mut().reset((tokio::time::Instant::now() + SETTLE).min(deadline));
                    }
                    None => break,
                },
                _ = &mut settle => break,
            }
        }
        let touched = if changes.iter().any(|c| matches!(c, FileNews::Everything)) {
            Touched { settings: true, runtime: true }
        } else {
            let paths = changes.iter().flat_map(|c| match c {
                FileNews::Paths(paths) => paths.as_slice(),
                FileNews::Everything => &[],
            });
            touched(paths.map(PathBuf::as_path), &settings_file)
        };
        if touched.settings {
            settings_changed(&app);
        }
        if touched.runtime {
            // A runtime host may have started (`mm load`): the window follows it at once.
            app.state::<AppState>().manager.runtime_started();
        }
    }
}

/// The fallback where inotify is not to be had: the settings file's modification time, read on a timer.
async fn poll<R: Runtime>(app: AppHandle<R>) {
    let modified = |app: &AppHandle<R>| -> Option<SystemTime> {
        std::fs::metadata(app.state::<AppState>().manager.store().path()).and_then(|m| m.modified()).ok()
    };
    let mut last = modified(&app);
    loop {
        tokio::time::sleep(POLL).await;
        let now = modified(&app);
        if now != last {
            last = now;
            settings_changed(&app);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(id: &str, rev: &str) -> ActiveModel {
        ActiveModel { id: id.into(), revision: rev.into(), activated_at: None }
    }

    #[test]
    fn events_are_sorted_into_settings_and_runtime() {
        let settings = Path::new("/d/app/settings.json");
        let t = |paths: &[&str]| touched(paths.iter().map(Path::new), settings);
        assert_eq!(t(&["/d/app/settings.json"]), Touched { settings: true, ..Default::default() });
        assert_eq!(t(&["/d/app/active.json"]), Touched { runtime: true, ..Default::default() });
        // The journal and the log beside the settings file are not its changes.
        assert_eq!(t(&["/d/app/downloads.json", "/d/app/.settings.json.tmp1", "/d/app/logs"]), Touched::default());
        assert_eq!(t(&["/d/app/models/x.gguf", "/d/app/settings.json"]), Touched { settings: true, runtime: false });
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
