//! Models that are not in the Hugging Face cache: files and folders imported from elsewhere on disk (referenced
//! in place, or copied into the app's models folder), files downloaded from plain URLs into that folder, and
//! loose model files in the library folders the user added (an LM Studio folder, say).
//!
//! Formats are told by content ([`detect`]). Every file is hashed once, on import or download, and its sha256
//! kept: in the settings for references, in `.model-manager/{name}.json` beside files in the models folder.

pub mod detect;
pub mod import;
pub mod list;

use crate::error::{Coded, ErrorCode};
pub use crate::model::ImportedModel;
use std::path::Path;

pub use crate::models_folder::{models_dir, read_record, record_path, sanitize_file_name, FileRecord, LOCAL_PREFIX};
pub use detect::{detect, Detected};
pub use import::{import_paths, ImportOptions, ImportOutcome, ImportPhase, ImportProgress, ImportStatus};

/// The prefix of ids of loose files in library folders: `folder/{folder name}/{path}`.
pub const FOLDER_PREFIX: &str = "folder/";

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{path} cannot be read: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path} is not a model: {reason}")]
    NotAModel { path: String, reason: String },
    #[error("{path} is a damaged model file: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path} is already in the library as {id} (same sha256)")]
    Duplicate { path: String, id: String },
    #[error("not enough space in {dir} to copy {path}: {needed} bytes needed, {free} free")]
    NoSpace { dir: String, path: String, needed: u64, free: u64 },
    #[error("{0} is in a library folder, which is read-only here: remove it from the folder itself")]
    ReadOnly(String),
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error("the import of {0} was cancelled: nothing of it was added")]
    Cancelled(String),
    #[error("{id} is the active {model_type} model: activate another one or deactivate it first")]
    InUse { id: String, model_type: String },
}

impl LocalError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> LocalError {
        LocalError::Io { what: what.into(), source }
    }
}

impl Coded for LocalError {
    fn code(&self) -> ErrorCode {
        match self {
            LocalError::NotFound(_) => ErrorCode::NotFound,
            LocalError::Unreadable { .. } => ErrorCode::Permission,
            LocalError::NotAModel { .. } | LocalError::Invalid { .. } | LocalError::Duplicate { .. } => {
                ErrorCode::InvalidInput
            }
            LocalError::ReadOnly(_) => ErrorCode::InvalidInput,
            LocalError::NoSpace { .. } => ErrorCode::InsufficientSpace,
            LocalError::Io { source, .. } => ErrorCode::of_io(source),
            LocalError::Settings(e) => e.code(),
            LocalError::Cancelled(_) => ErrorCode::Cancelled,
            LocalError::InUse { .. } => ErrorCode::Conflict,
        }
    }
}

/// The sha256 of a file, reporting bytes read as it goes; an error from `progress` stops it.
pub fn sha256_file(path: &Path, progress: impl FnMut(u64) -> std::io::Result<()>) -> Result<String, LocalError> {
    hash_file(path, false, progress)
        .map(|(sha256, _)| sha256)
        .map_err(|e| LocalError::io(format!("read {}", path.display()), e))
}

/// The sha256 of a file, and its md5 too when asked, in one pass, reporting bytes read as it goes; an error from
/// `progress` (a cancellation) stops it.
pub fn hash_file(
    path: &Path,
    with_md5: bool,
    mut progress: impl FnMut(u64) -> std::io::Result<()>,
) -> std::io::Result<(String, Option<String>)> {
    use sha2::Digest;
    let mut sha256 = sha2::Sha256::new();
    let mut md5 = with_md5.then(md5::Md5::new);
    let mut done = 0;
    crate::disk::read_chunks(std::fs::File::open(path)?, |chunk| {
        sha256.update(chunk);
        if let Some(m) = md5.as_mut() {
            m.update(chunk);
        }
        done += chunk.len() as u64;
        progress(done)
    })?;
    let hex = crate::format::hex;
    Ok((hex(&sha256.finalize()), md5.map(|m| hex(&m.finalize()))))
}

/// Copies `src` to `dst` (created, synced to disk before it returns) while hashing `src`, reporting the bytes
/// both have done; an error from `progress` (a cancellation) stops both. The copy is the kernel's (`copy_file_range`, a reflink where the file system can) on a thread
/// of its own, so the whole takes about as long as the hash alone.
pub fn copy_hashing(
    src: &Path,
    dst: &Path,
    mut progress: impl FnMut(u64) -> std::io::Result<()>,
) -> std::io::Result<String> {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const STEP: u64 = 64 << 20;
    let input = std::fs::File::open(src)?;
    let out = std::fs::File::create(dst)?;
    let copied = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let copier = scope.spawn(|| -> std::io::Result<()> {
            // `io::copy` between files is `copy_file_range` (or `sendfile`) on Linux; in steps, for progress.
            while !stop.load(Ordering::Relaxed) {
                let n = std::io::copy(&mut (&input).take(STEP), &mut &out)?;
                if n == 0 {
                    return Ok(());
                }
                copied.fetch_add(n, Ordering::Relaxed);
            }
            Ok(())
        });
        let mut hashed = hash_file(src, false, |n| progress(n.min(copied.load(Ordering::Relaxed))));
        // The copy may still be running: keep reporting it, and keep listening for a stop.
        while hashed.is_ok() && !copier.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if let Err(e) = progress(copied.load(Ordering::Relaxed)) {
                hashed = Err(e);
            }
        }
        if hashed.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let copy = copier.join().unwrap_or_else(|_| Err(std::io::Error::other("the copy thread panicked")));
        let (sha256, _) = hashed?;
        copy?;
        progress(copied.load(Ordering::Relaxed))?;
        out.sync_all()?;
        Ok(sha256)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_copy_across_several_steps_is_exact_hashed_and_reported_to_the_end() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
        let bytes: Vec<u8> = (0..(64u32 << 20) + 3).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(&src, &bytes).unwrap();
        let mut seen = Vec::new();
        let sha256 = super::copy_hashing(&src, &dst, |n| {
            seen.push(n);
            Ok(())
        })
        .unwrap();
        assert_eq!(sha256, crate::format::hex(&sha2::Sha256::digest(&bytes)));
        assert!(std::fs::read(&dst).unwrap() == bytes, "the copy differs");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress never goes back");
        assert_eq!(seen.last(), Some(&(bytes.len() as u64)));
        // A source that cannot be read fails, and says so.
        assert!(super::copy_hashing(&dir.path().join("missing"), &dst, |_| Ok(())).is_err());
        // A progress that says stop (a cancellation) stops the copy and the hash.
        let stop = super::copy_hashing(&src, &dst, |_| Err(std::io::Error::from(std::io::ErrorKind::Interrupted)));
        assert_eq!(stop.unwrap_err().kind(), std::io::ErrorKind::Interrupted);
    }
}
