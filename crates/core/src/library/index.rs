//! The library kept in memory: what [`super::list::on_disk`] found, kept for every face of this process until
//! something changes it, so that a list asked for every second by many clients costs no disk read.
//!
//! What marks it stale: a file event in a watched folder (inotify through `notify`: the cache, the app's models
//! folder, the library folders, and the usage record), and this core's own work (a download's state, a delete, an
//! import, a move, a use; [`LibraryIndex::touch`]); the settings it was listed with are part of its key. The next
//! reader lists again, once for all the readers waiting. Where a folder cannot be watched (it does not exist yet,
//! inotify's limit is reached, the kernel's queue overflowed), what was listed is kept at most [`UNWATCHED`]. A
//! process that never calls [`LibraryIndex::keep_current`] (`mm list`, once) lists every time.

use super::list::OnDisk;
use super::LibraryError;
use crate::settings::Settings;
use notify::{RecursiveMode, Watcher};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a listing is kept when not every folder it came from is watched.
pub const UNWATCHED: Duration = Duration::from_secs(1);
/// A change is told ([`LibraryIndex::noticed`]'s reader) once none came for this long (a copy writes many
/// times), or at most this long after the first.
pub const SETTLE: Duration = Duration::from_millis(200);
pub const MAX_SETTLE: Duration = Duration::from_secs(2);

/// A listing, and what it was made from.
pub struct Listed {
    pub disk: OnDisk,
    key: Key,
    at: Instant,
}

#[derive(PartialEq)]
struct Key {
    /// [`LibraryIndex`]'s change count when the listing began.
    changes: u64,
    /// The download queue's state changes ([`crate::download::Downloads::state_changes`]) then.
    downloads: u64,
    settings: Settings,
}

/// What a listing reads: folders watched whole, files imported where they are (their folders watched for them
/// alone), and the data folder (its usage record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folders {
    pub trees: Vec<PathBuf>,
    pub files: Vec<PathBuf>,
    pub data_dir: PathBuf,
}

#[derive(Default)]
struct State {
    /// Set by [`LibraryIndex::keep_current`]: listings are kept.
    keep: bool,
    watcher: Option<notify::RecommendedWatcher>,
    /// What the watcher watches, and whether that is every folder wanted (else [`UNWATCHED`] applies).
    watched: Option<Folders>,
    complete: bool,
    listed: Option<Arc<Listed>>,
}

#[derive(Default)]
pub struct LibraryIndex {
    /// Every notice of a change adds one.
    changes: Arc<AtomicU64>,
    state: Mutex<State>,
    /// One listing at a time: readers that find the index stale wait for the one under way, then share it.
    listing: tokio::sync::Mutex<()>,
    /// Told of each change the watcher saw (for [`LibraryIndex::noticed`]).
    noticed: Arc<tokio::sync::Notify>,
}

impl LibraryIndex {
    /// Keeps listings from now on, watching their folders; false when that was so already.
    pub fn keep_current(&self) -> bool {
        !std::mem::replace(&mut self.state.lock().expect("index").keep, true)
    }

    /// What was listed is stale: this core changed what the library shows.
    pub fn touch(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits for the watcher's next notice of a change (none come while nothing is watched).
    pub async fn noticed(&self) {
        self.noticed.notified().await
    }

    /// Whether what is kept covers every folder (false: changes are found by listing again within [`UNWATCHED`]).
    pub fn watching_all(&self) -> bool {
        let state = self.state.lock().expect("index");
        state.keep && state.complete
    }

    /// The listing kept for `settings`, if it is still what the disk holds.
    pub fn current(&self, settings: &Settings, downloads: u64) -> Option<Arc<Listed>> {
        let state = self.state.lock().expect("index");
        let listed = state.listed.as_ref()?;
        let fresh = state.keep
            && listed.key.changes == self.changes.load(Ordering::SeqCst)
            && listed.key.downloads == downloads
            && listed.key.settings == *settings
            && (state.complete || listed.at.elapsed() < UNWATCHED);
        fresh.then(|| listed.clone())
    }

    /// The library for `settings`: the kept listing while it is current, else `list` run on a blocking thread
    /// (once for every reader waiting) and kept; `folders` (what it reads) is asked only then.
    pub async fn read(
        &self,
        folders: impl FnOnce() -> Folders,
        settings: &Settings,
        downloads: u64,
        list: impl FnOnce() -> Result<OnDisk, LibraryError> + Send + 'static,
    ) -> Result<Arc<Listed>, LibraryError> {
        if let Some(listed) = self.current(settings, downloads) {
            return Ok(listed);
        }
        let _one = self.listing.lock().await;
        if let Some(listed) = self.current(settings, downloads) {
            return Ok(listed);
        }
        if let Some(watch) = self.unwatched(folders()) {
            let watched = tokio::task::spawn_blocking(move || watch.start())
                .await
                .map_err(|e| LibraryError::io("watching the library", std::io::Error::other(e)))?;
            self.watching(watched);
        }
        // Counted once the watcher runs and before the listing reads the disk: a change while it reads makes it
        // stale.
        let changes = self.changes.load(Ordering::SeqCst);
        let disk = tokio::task::spawn_blocking(list)
            .await
            .map_err(|e| LibraryError::io("listing the library", std::io::Error::other(e)))??;
        Ok(self.keep(disk, Key { changes, downloads, settings: settings.clone() }))
    }

    /// [`LibraryIndex::read`] on this thread (the tray's menu, which must not wait on a runtime).
    pub fn read_blocking(
        &self,
        folders: impl FnOnce() -> Folders,
        settings: &Settings,
        downloads: u64,
        list: impl FnOnce() -> Result<OnDisk, LibraryError>,
    ) -> Result<Arc<Listed>, LibraryError> {
        if let Some(listed) = self.current(settings, downloads) {
            return Ok(listed);
        }
        if let Some(watch) = self.unwatched(folders()) {
            self.watching(watch.start());
        }
        let changes = self.changes.load(Ordering::SeqCst);
        Ok(self.keep(list()?, Key { changes, downloads, settings: settings.clone() }))
    }

    fn keep(&self, disk: OnDisk, key: Key) -> Arc<Listed> {
        let listed = Arc::new(Listed { disk, key, at: Instant::now() });
        let mut state = self.state.lock().expect("index");
        if state.keep {
            state.listed = Some(listed.clone());
        }
        listed
    }

    /// What to watch, when listings are kept and `folders` are not what is watched (or not all of them were). The
    /// watcher is started outside the index's lock and off the async threads (a large cache is many folders, a
    /// watch each), so that readers of a current listing never wait for it.
    fn unwatched(&self, folders: Folders) -> Option<Watch> {
        let state = self.state.lock().expect("index");
        (state.keep && (state.watched.as_ref() != Some(&folders) || !state.complete)).then(|| Watch {
            folders,
            changes: self.changes.clone(),
            noticed: self.noticed.clone(),
        })
    }

    fn watching(&self, watched: Watched) {
        let mut state = self.state.lock().expect("index");
        // Events of the folders watched before are not news once the listing that follows has read them.
        let before = std::mem::replace(&mut state.watcher, watched.watcher);
        state.watched = Some(watched.folders);
        state.complete = watched.complete;
        drop(state);
        drop(before);
    }
}

/// Folders to watch, and where the watcher tells of a change.
struct Watch {
    folders: Folders,
    changes: Arc<AtomicU64>,
    noticed: Arc<tokio::sync::Notify>,
}

/// A watcher started (none where inotify cannot be used), and whether it watches every folder.
struct Watched {
    folders: Folders,
    watcher: Option<notify::RecommendedWatcher>,
    complete: bool,
}

impl Watch {
    fn start(self) -> Watched {
        use crate::file_events::{news, FileNews};
        let Watch { folders, changes, noticed } = self;
        let watched = folders.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            let news = match news(event, "library") {
                Some(FileNews::Everything) => true,
                Some(FileNews::Paths(paths)) => paths.iter().any(|p| watched.shows(p)),
                None => false,
            };
            if news {
                changes.fetch_add(1, Ordering::SeqCst);
                noticed.notify_one();
            }
        };
        // Links to folders are not followed, as the library's listing does not follow them.
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut watcher = match notify::RecommendedWatcher::new(handler, config) {
            Ok(watcher) => watcher,
            Err(err) => {
                tracing::warn!(%err, "cannot watch the library's folders; listing them again every second");
                return Watched { folders, watcher: None, complete: false };
            }
        };
        let mut complete = true;
        let mut alone: Vec<&Path> = folders.files.iter().filter_map(|f| f.parent()).collect();
        alone.push(&folders.data_dir);
        alone.sort();
        alone.dedup();
        let wanted = folders.trees.iter().map(|t| (t.as_path(), RecursiveMode::Recursive));
        for (folder, mode) in wanted.chain(alone.into_iter().map(|f| (f, RecursiveMode::NonRecursive))) {
            if let Err(err) = watcher.watch(folder, mode) {
                if folder.exists() {
                    tracing::warn!(%err, folder = %folder.display(), "cannot watch a library folder; listing it again every second");
                }
                complete = false;
            }
        }
        tracing::info!(folders = folders.trees.len(), complete, "watching the library's folders with inotify");
        Watched { folders, watcher: Some(watcher), complete }
    }
}

impl Folders {
    /// Whether a change at `path` can change the library: anything in a watched tree but hidden names within it
    /// (the cache's `.locks`, a download's partial bytes, another program's temporary files); in the data folder
    /// itself only the usage record (not the settings, which are the listing's key, nor the download journal or
    /// the logs); elsewhere only the files imported in place.
    fn shows(&self, path: &Path) -> bool {
        let hidden = |rest: &Path| {
            rest.components().any(|c| matches!(c, Component::Normal(n) if n.to_string_lossy().starts_with('.')))
        };
        if let Some(rest) = self.trees.iter().find_map(|t| path.strip_prefix(t).ok()) {
            return !hidden(rest);
        }
        self.files.iter().any(|f| f == path) || path == self.data_dir.join("usage.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_names_and_the_data_folders_other_files_are_not_news() {
        let folders = Folders {
            trees: vec![PathBuf::from("/home/u/.cache/hub"), PathBuf::from("/home/u/.local/app/models")],
            files: vec![PathBuf::from("/home/u/Downloads/m.gguf")],
            data_dir: PathBuf::from("/home/u/.local/app"),
        };
        for news in [
            "/home/u/.local/app/usage.json",
            "/home/u/.local/app/models/a.gguf",
            "/home/u/.cache/hub/models--a--b/snapshots/c/x.gguf",
            "/home/u/Downloads/m.gguf",
        ] {
            assert!(folders.shows(Path::new(news)), "{news}");
        }
        for quiet in [
            "/home/u/.local/app/settings.json",
            "/home/u/.local/app/downloads.json",
            "/home/u/.local/app/logs",
            "/home/u/.cache/hub/.locks/x",
            "/home/u/.local/app/models/.a.gguf.tmp",
            "/elsewhere/x.gguf",
            "/home/u/Downloads/other.gguf",
        ] {
            assert!(!folders.shows(Path::new(quiet)), "{quiet}");
        }
    }
}
