//! The disk: free space on the one that holds a path, and reading a file once in large chunks.

use std::io;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    #[test]
    fn free_space_of_a_folder_not_created_yet_is_its_disks() {
        let tmp = tempfile::tempdir().unwrap();
        let here = super::free_space(tmp.path()).unwrap();
        let later = super::free_space(&tmp.path().join("a/b/c")).unwrap();
        assert!(here > 0);
        let diff = here.abs_diff(later);
        assert!(diff < 64 << 20, "same disk: {here} vs {later}");
    }
}
