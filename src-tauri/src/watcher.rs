//! Changes made outside the window (`mm activate`, `mm config set`, another program adding a model to a library
//! folder) reach the app as they happen: the settings file's folder and the library folders are watched with
//! inotify (the `notify` crate). A change to the settings file becomes lifecycle events for the differences in the
//! active models, and a new tray menu; a change in a library folder, once its fingerprint differs, a
//! `library-changed` event. Where watching fails (no inotify, its limit reached), the files are polled instead.

use crate::{events, tray, AppState};
use mm_core::download::{LifecycleKind, ModelLifecycle};
use mm_core::settings::ActiveModel;
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::mpsc;

/// Events are handled together once none came for this long (a copy writes many times), or at most this long
/// after the first.
const SETTLE: Duration = Duration::from_millis(200);
const MAX_SETTLE: Duration = Duration::from_secs(2);
/// How often folders that do not exist (or were removed) are looked for, to be watched once they appear.
const RECHECK: Duration = Duration::from_secs(5);
/// The fallback: the settings file's time is read this often, the library folders every `FOLDER_TICKS` polls.
const POLL: Duration = Duration::from_millis(400);
const FOLDER_TICKS: u32 = 5;

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
    pub folders: bool,
    /// `active.json` beside the settings: the runtime host rewrites it when it starts and on every load.
    pub runtime: bool,
}

/// Sorts event paths: the settings file itself (written by rename, so its folder is watched and the journal and
/// logs beside it are not its changes), or anything in a library folder but hidden names (a download's partial
/// bytes, another program's temporary files).
pub fn touched<'a>(paths: impl IntoIterator<Item = &'a Path>, settings_file: &Path, folders: &[PathBuf]) -> Touched {
    let mut touched = Touched::default();
    for path in paths {
        if path == settings_file {
            touched.settings = true;
        } else if settings_file.parent().is_some_and(|d| path == d.join("active.json")) {
            touched.runtime = true;
        } else if folders
            .iter()
            .any(|f| path.strip_prefix(f).is_ok_and(|rest| !rest.iter().any(|c| c.to_string_lossy().starts_with('.'))))
        {
            touched.folders = true;
        }
    }
    touched
}

/// The folders whose models show in the library: the settings' library folders and the app's models folder.
fn library_folders<R: Runtime>(app: &AppHandle<R>) -> Vec<PathBuf> {
    let manager = &app.state::<AppState>().manager;
    let mut dirs: Vec<PathBuf> = manager.settings().library_folders.iter().map(PathBuf::from).collect();
    dirs.push(mm_core::local::models_dir(manager.data_dir()));
    dirs
}

async fn signature(dirs: Vec<PathBuf>) -> Option<u64> {
    tauri::async_runtime::spawn_blocking(move || mm_core::local::list::folders_signature(&dirs)).await.ok()
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

fn library_changed<R: Runtime>(app: &AppHandle<R>) {
    let _ = app.emit(events::LIBRARY_CHANGED, ());
    tray::refresh(app);
}

/// What the watcher reports: changed paths, or "anything may have changed" (the kernel's queue overflowed, or
/// watching failed), which re-reads everything.
enum Change {
    Paths(Vec<PathBuf>),
    Everything,
}

pub fn start<R: Runtime>(app: AppHandle<R>) {
    use notify::event::{AccessKind, AccessMode, EventKind};
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |event: notify::Result<notify::Event>| {
        let change = match event {
            Ok(event) if event.need_rescan() => Change::Everything,
            // A file closed after writing is news; opening or reading one is not (and the fingerprint's own
            // reads would wake the watcher).
            Ok(event) if event.kind == EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                Change::Paths(event.paths)
            }
            Ok(event) if event.kind.is_access() => return,
            Ok(event) => Change::Paths(event.paths),
            Err(err) => {
                tracing::warn!(%err, "the file watcher reported an error; reading everything again");
                Change::Everything
            }
        };
        let _ = tx.send(change);
    };
    // Links to folders are not followed, as the library's own listing does not follow them.
    let watcher = notify::RecommendedWatcher::new(handler, notify::Config::default().with_follow_symlinks(false));
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

/// Watches the settings file's folder and those of `folders` that exist (replacing what was watched before); an
/// error means watching does not work here.
fn rewatch(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut Vec<PathBuf>,
    settings_dir: &Path,
    folders: &[PathBuf],
) -> notify::Result<()> {
    for path in watched.drain(..) {
        let _ = watcher.unwatch(&path);
    }
    std::fs::create_dir_all(settings_dir)?;
    watcher.watch(settings_dir, RecursiveMode::NonRecursive)?;
    watched.push(settings_dir.to_path_buf());
    for folder in folders.iter().filter(|f| f.is_dir()) {
        watcher.watch(folder, RecursiveMode::Recursive)?;
        watched.push(folder.clone());
    }
    tracing::info!(folders = watched.len() - 1, "watching the settings and library folders with inotify");
    Ok(())
}

/// The folders watched now, besides the settings folder, against those that exist: they differ when a library
/// folder appeared (a drive mounted, a folder made) or went since.
fn stale(watched: &[PathBuf], folders: &[PathBuf]) -> bool {
    let existing: Vec<&PathBuf> = folders.iter().filter(|f| f.is_dir()).collect();
    watched.iter().skip(1).collect::<Vec<_>>() != existing
}

async fn watch<R: Runtime>(
    app: AppHandle<R>,
    mut watcher: notify::RecommendedWatcher,
    mut rx: mpsc::UnboundedReceiver<Change>,
) {
    let settings_file = app.state::<AppState>().manager.store().path().to_path_buf();
    let settings_dir = settings_file.parent().map(Path::to_path_buf).unwrap_or_default();
    let models_dir = mm_core::local::models_dir(app.state::<AppState>().manager.data_dir());
    // The app's own models folder is watched from the start, even before the first model lands in it.
    let _ = std::fs::create_dir_all(&models_dir);
    let mut folders = library_folders(&app);
    let mut watched = Vec::new();
    if let Err(err) = rewatch(&mut watcher, &mut watched, &settings_dir, &folders) {
        tracing::warn!(%err, "cannot watch the settings and library folders; polling them instead");
        drop(watcher);
        return poll(app).await;
    }
    let mut last = signature(folders.clone()).await;
    let mut recheck = tokio::time::interval(RECHECK);
    loop {
        let first = tokio::select! {
            change = rx.recv() => match change {
                Some(change) => change,
                None => return,
            },
            // Folders that appeared or went since are watched again, and read.
            _ = recheck.tick() => {
                if !stale(&watched, &folders) {
                    continue;
                }
                Change::Everything
            }
        };
        // Changes that keep coming (a large copy) are gathered until they pause, for at most MAX_SETTLE.
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
        let touched = if changes.iter().any(|c| matches!(c, Change::Everything)) {
            Touched { settings: true, folders: true, runtime: true }
        } else {
            let paths = changes.iter().flat_map(|c| match c {
                Change::Paths(paths) => paths.as_slice(),
                Change::Everything => &[],
            });
            touched(paths.map(PathBuf::as_path), &settings_file, &folders)
        };
        if touched.settings {
            settings_changed(&app);
            folders = library_folders(&app);
        }
        if touched.runtime {
            // A runtime host may have started (`mm load`): the window follows it at once.
            app.state::<AppState>().manager.runtime_started();
        }
        if stale(&watched, &folders) || (touched.settings && touched.folders) {
            if let Err(err) = rewatch(&mut watcher, &mut watched, &settings_dir, &folders) {
                tracing::warn!(%err, "cannot watch the library folders; polling them instead");
                drop(watcher);
                return poll(app).await;
            }
        }
        if touched.folders || touched.settings {
            let now = signature(folders.clone()).await;
            if now != last {
                last = now;
                library_changed(&app);
            }
        }
    }
}

/// The fallback where inotify is not to be had: the settings file's modification time and the folders'
/// fingerprint, read on a timer.
async fn poll<R: Runtime>(app: AppHandle<R>) {
    let modified = |app: &AppHandle<R>| -> Option<SystemTime> {
        std::fs::metadata(app.state::<AppState>().manager.store().path()).and_then(|m| m.modified()).ok()
    };
    let mut last = modified(&app);
    let mut last_signature = None;
    let mut tick = 0u32;
    loop {
        tokio::time::sleep(POLL).await;
        tick += 1;
        if tick.is_multiple_of(FOLDER_TICKS) {
            let now = signature(library_folders(&app)).await;
            if last_signature.is_some() && now != last_signature {
                library_changed(&app);
            }
            last_signature = now;
        }
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
    fn events_are_sorted_into_settings_and_library_folders() {
        let settings = Path::new("/d/app/settings.json");
        let folders = [PathBuf::from("/models"), PathBuf::from("/d/app/models")];
        let t = |paths: &[&str]| touched(paths.iter().map(Path::new), settings, &folders);
        assert_eq!(t(&["/d/app/settings.json"]), Touched { settings: true, ..Default::default() });
        assert_eq!(t(&["/d/app/active.json"]), Touched { runtime: true, ..Default::default() });
        // The journal and the log beside the settings file are not its changes.
        assert_eq!(t(&["/d/app/downloads.json", "/d/app/.settings.json.tmp1", "/d/app/logs"]), Touched::default());
        assert_eq!(t(&["/models/a/b.gguf"]), Touched { folders: true, ..Default::default() });
        assert_eq!(
            t(&["/d/app/models/x.gguf", "/d/app/settings.json"]),
            Touched { settings: true, folders: true, ..Default::default() }
        );
        assert_eq!(t(&["/modelsX/a.gguf"]), Touched::default());
        assert_eq!(t(&["/d/app/models/.partial/3f2a.part", "/models/a/.b.gguf.tmp"]), Touched::default());
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
