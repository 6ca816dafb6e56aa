//! When each model was last used, by this app's own record: activated, loaded, asked for by a request through the
//! model endpoint, or served by the Hub mirror (a download counts too, by its own time). Not the file system's
//! atime, which many mounts turn off. Kept in `{data}/usage.json` (model id → Unix seconds), changed under a lock
//! with an atomic rename, so concurrent processes lose nothing and a crash leaves the old record or the new one.
//! A use within a minute of the last one recorded is not written again (a request a second costs no write).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Uses closer together than this are one.
const GRAIN: u64 = 60;

fn file(data_dir: &Path) -> PathBuf {
    data_dir.join("usage.json")
}

/// The last use of each model recorded here.
pub fn read(data_dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read(file(data_dir)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Records that `id` was used at `at` (Unix seconds); an earlier time than the one kept changes nothing.
pub fn record(data_dir: &Path, id: &str, at: u64) {
    static LAST: Mutex<Option<HashMap<(PathBuf, String), u64>>> = Mutex::new(None);
    let key = (data_dir.to_path_buf(), id.to_string());
    {
        let mut last = LAST.lock().expect("usage");
        let seen = last.get_or_insert_with(HashMap::new);
        if seen.get(&key).is_some_and(|t| at < t + GRAIN) {
            return;
        }
        seen.insert(key, at);
    }
    if let Err(e) = write(data_dir, id, at) {
        tracing::warn!("could not record the use of {id} in {}: {e}", file(data_dir).display());
    }
}

fn write(data_dir: &Path, id: &str, at: u64) -> std::io::Result<()> {
    let path = file(data_dir);
    let _lock = crate::cache::lock::lock_file_blocking(&path.with_extension("json.lock"))?;
    let mut all = read(data_dir);
    if all.get(id).is_some_and(|t| *t >= at) {
        return Ok(());
    }
    all.insert(id.to_string(), at);
    let bytes = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
    crate::disk::write_atomic(&path, &bytes, 0o600)
}

/// Forgets a model that is gone.
pub fn forget(data_dir: &Path, id: &str) {
    let path = file(data_dir);
    let Ok(_lock) = crate::cache::lock::lock_file_blocking(&path.with_extension("json.lock")) else { return };
    let mut all = read(data_dir);
    if all.remove(id).is_some() {
        if let Ok(bytes) = serde_json::to_vec_pretty(&all) {
            let _ = crate::disk::write_atomic(&path, &bytes, 0o600);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_latest_use_is_kept_and_uses_within_a_minute_are_one() {
        let dir = tempfile::tempdir().unwrap();
        super::record(dir.path(), "a/b", 1000);
        super::record(dir.path(), "a/b", 1030);
        assert_eq!(super::read(dir.path())["a/b"], 1000, "within a minute: not written again");
        super::record(dir.path(), "a/b", 1100);
        super::record(dir.path(), "c/d", 50);
        let all = super::read(dir.path());
        assert_eq!((all["a/b"], all["c/d"]), (1100, 50));
        super::forget(dir.path(), "a/b");
        assert!(!super::read(dir.path()).contains_key("a/b"));
    }
}
