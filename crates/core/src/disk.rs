//! The disk: free space on the one that holds a path, reading a file once in large chunks, and placing files so
//! that a reader, a second writer or a power cut sees the old file or the new one, whole: every write goes to a
//! temporary name of its own (no two writers share one), is synced, renamed into place, and the folder synced.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes available to this user on the file system holding `path` (or its nearest existing ancestor, for a
/// folder not created yet).
pub fn free_space(path: &Path) -> io::Result<u64> {
    usage(path).map(|(free, _)| free)
}

/// Bytes available to this user, and the file system's size, for the disk holding `path`.
pub fn usage(path: &Path) -> io::Result<(u64, u64)> {
    let mut probe = path;
    while !probe.exists() {
        probe = probe.parent().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no existing ancestor"))?;
    }
    let c_path = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((stat.f_bavail as u64 * stat.f_frsize as u64, stat.f_blocks as u64 * stat.f_frsize as u64))
}

/// Reads `reader` (a file, usually) to its end in 1 MiB chunks, handing each to `chunk`; returns the bytes read.
pub fn read_chunks(mut reader: impl io::Read, mut chunk: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(done);
        }
        chunk(&buf[..n])?;
        done += n as u64;
    }
}

/// A name beside `path` that no other writer uses, this process or another: `.{name}.{pid}-{n}.tmp`. Hidden, so
/// listings skip it; what a crash leaves is swept by whoever owns the folder.
pub fn temp_beside(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// Whether `name` is one of [`temp_beside`]'s names (`.{name}.{pid}-{n}.tmp`): a write in progress, or one a
/// crash left; listings of the cache pass over them.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .strip_suffix(".tmp")
            .and_then(|rest| rest.rsplit_once('.'))
            .and_then(|(_, id)| id.split_once('-'))
            .is_some_and(|(pid, n)| {
                !pid.is_empty() && !n.is_empty() && pid.bytes().chain(n.bytes()).all(|b| b.is_ascii_digit())
            })
}

/// Starts writing `len` bytes of `file` from `offset` to the disk, without waiting for them: a download's bytes go
/// to the disk while it goes on, so that the syncs it needs (before its record names them, before it is placed)
/// find little left to write. Measured (2026-12-07, 2 cores, 8 files of 128 MiB over plain HTTP): 1.02 s against
/// 1.20 s, medians of 6 interleaved runs. A hint: where the kernel refuses it, the sync does it all.
pub fn start_writeback(file: &fs::File, offset: u64, len: usize) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (offset, len) = (offset as libc::off64_t, len as libc::off64_t);
        // SAFETY: the descriptor is the open file's, and the call only reads its arguments.
        unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Syncs a folder, so that a rename or a new name in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The folder a path is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Writes `bytes` as the whole of `path`, atomically and durably, with permission `mode` (`0o600` for anything
/// that holds a secret, `0o644` otherwise): a temporary file of its own, synced, renamed over `path`, and the folder
/// synced. Creates the folder when missing.
/// Opens (creating it if missing) a partial file a download writes, never through a link: one planted in its place
/// in a shared cache (`….incomplete -> ~/.bashrc`) would have the download write into whatever it names.
pub fn open_partial(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new().create(true).truncate(false).read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Opens an existing partial file to cut it short, never through a link (see [`open_partial`]).
pub fn open_partial_to_cut(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(path)
}

pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    fs::create_dir_all(parent_of(path))?;
    let temp = temp_beside(path);
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_dir(parent_of(path))
}

/// Renames `from` (already synced by its writer) to `to`, replacing it, and syncs the folder.
pub fn place(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    sync_dir(parent_of(to))
}

/// Renames `from` (already synced) to `to` only if no file has that name, in one step, so that two writers that
/// both saw the name free never replace each other's file; `Ok(false)` when the name is taken. Syncs the folder.
pub fn place_new(from: &Path, to: &Path) -> io::Result<bool> {
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))
    };
    let (c_from, c_to) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths, relative to the working folder.
    let rc = unsafe {
        libc::renameat2(libc::AT_FDCWD, c_from.as_ptr(), libc::AT_FDCWD, c_to.as_ptr(), libc::RENAME_NOREPLACE)
    };
    let placed = if rc == 0 {
        true
    } else {
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EEXIST) => false,
            // A file system without RENAME_NOREPLACE: a hard link fails the same way when the name is taken.
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => match fs::hard_link(from, to) {
                Ok(()) => {
                    fs::remove_file(from)?;
                    true
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(e),
            },
            _ => return Err(err),
        }
    };
    if placed {
        sync_dir(parent_of(to))?;
    }
    Ok(placed)
}

/// Points the symbolic link `link` at `target`, replacing any earlier link atomically (a temporary link of its
/// own, then a rename), and syncs the folder.
pub fn symlink_atomic(target: &Path, link: &Path) -> io::Result<()> {
    let temp = temp_beside(link);
    std::os::unix::fs::symlink(target, &temp)?;
    if let Err(e) = fs::rename(&temp, link) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(parent_of(link))
}

/// The bytes of the regular files under `dir` (links not followed: a snapshot's links are its blobs').
pub fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => total += entry.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_writes_replace_whole_files_with_the_mode_asked_and_leave_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/settings.json");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(tmp.path().join("a")).unwrap().count(), 1, "no temporary file is left");
        assert_ne!(temp_beside(&path), temp_beside(&path), "every writer gets a name of its own");
        let temp = temp_beside(&path);
        assert!(is_temp_name(&temp.file_name().unwrap().to_string_lossy()));
        assert!(!is_temp_name(".gitattributes") && !is_temp_name("model.tmp") && !is_temp_name(".a.tmp"));
    }

    #[test]
    fn concurrent_atomic_writers_never_tear_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.json");
        let writers: Vec<_> = (0..8u8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        write_atomic(&path, &vec![b'a' + i; 64 << 10], 0o644).unwrap();
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 64 << 10);
        assert!(bytes.iter().all(|b| *b == bytes[0]), "one writer's whole file");
    }

    #[test]
    fn placing_a_new_file_never_replaces_one_that_is_there() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, target) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("model.gguf"));
        fs::write(&a, b"first").unwrap();
        fs::write(&b, b"second").unwrap();
        assert!(place_new(&a, &target).unwrap());
        assert!(!place_new(&b, &target).unwrap(), "the name is taken");
        assert_eq!(fs::read(&target).unwrap(), b"first");
        assert!(b.exists(), "the loser keeps its file");
    }

    #[test]
    fn symlinks_are_replaced_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let link = tmp.path().join("active");
        symlink_atomic(Path::new("one"), &link).unwrap();
        symlink_atomic(Path::new("two"), &link).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("two"));
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn free_space_of_a_folder_not_created_yet_is_its_disks() {
        let tmp = tempfile::tempdir().unwrap();
        let here = free_space(tmp.path()).unwrap();
        let later = free_space(&tmp.path().join("a/b/c")).unwrap();
        assert!(here > 0);
        let diff = here.abs_diff(later);
        assert!(diff < 64 << 20, "same disk: {here} vs {later}");
    }
}
