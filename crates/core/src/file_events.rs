//! What a file watcher's event means to a reader of files, one rule for every watcher in this app (the library's
//! index, the window's watch of the settings folder).

use std::path::PathBuf;

/// What changed, by a watcher's word.
#[derive(Debug, PartialEq, Eq)]
pub enum FileNews {
    /// These paths may have changed.
    Paths(Vec<PathBuf>),
    /// Anything may have: the watcher lost events (its queue overflowed) or failed.
    Everything,
}

/// The news in one event of `watcher` (a name for the log), if any: a file closed after writing is news, opening
/// or reading one is not (a reader's own reads would wake the watcher), and everything else that happens to a
/// path is.
pub fn news(event: notify::Result<notify::Event>, watcher: &str) -> Option<FileNews> {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match event {
        Ok(event) if event.need_rescan() => Some(FileNews::Everything),
        Ok(event) if event.kind == EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            Some(FileNews::Paths(event.paths))
        }
        Ok(event) if event.kind.is_access() => None,
        Ok(event) => Some(FileNews::Paths(event.paths)),
        Err(err) => {
            tracing::warn!(%err, watcher, "a file watcher reported an error; reading everything again");
            Some(FileNews::Everything)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, Flag};

    #[test]
    fn writes_and_changes_are_news_reads_are_not_and_a_lost_queue_is_everything() {
        let at = |kind| notify::Event::new(kind).add_path("/m/a.gguf".into());
        let paths = Some(FileNews::Paths(vec!["/m/a.gguf".into()]));
        assert_eq!(news(Ok(at(EventKind::Access(AccessKind::Close(AccessMode::Write)))), "t"), paths);
        assert_eq!(news(Ok(at(EventKind::Create(CreateKind::File))), "t"), paths);
        assert_eq!(news(Ok(at(EventKind::Access(AccessKind::Close(AccessMode::Read)))), "t"), None);
        assert_eq!(news(Ok(at(EventKind::Access(AccessKind::Open(AccessMode::Any)))), "t"), None);
        let lost = notify::Event::new(EventKind::Other).set_flag(Flag::Rescan);
        assert_eq!(news(Ok(lost), "t"), Some(FileNews::Everything));
        assert_eq!(news(Err(notify::Error::generic("gone")), "t"), Some(FileNews::Everything));
    }
}
