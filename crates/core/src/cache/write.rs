//! Writing the cache layout: relative snapshot links and refs, each placed atomically and durably (a temporary
//! name of its own, then a rename, then the folder synced), so that a reader, this app or `huggingface_hub`, never
//! sees half of one, and a power cut never leaves one that points nowhere. A commit must be a commit id before it
//! names a folder.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Checks a path inside a repo before it touches the disk: `/`-separated, relative, no empty, `.` or `..`
/// segment, no backslash or NUL. The error names the rule that was broken.
pub fn check_repo_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.starts_with('/') {
        return Err("the path is absolute");
    }
    if path.contains('\\') {
        return Err("the path has a backslash");
    }
    if path.contains('\0') {
        return Err("the path has a NUL byte");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err("the path has an empty segment"),
            "." | ".." => return Err("the path has a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}

fn invalid(path: &str, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("refusing repo path {path:?}: {why}"))
}

/// The relative link target from `snapshots/{commit}/{path}` to `blobs/{blob}`: `../../blobs/{blob}`, with one
/// more `../` for each folder in `path`.
pub fn snapshot_link_target(path: &str, blob: &str) -> PathBuf {
    let depth = path.matches('/').count();
    let mut target = PathBuf::new();
    for _ in 0..depth + 2 {
        target.push("..");
    }
    target.join("blobs").join(blob)
}

/// Links `snapshots/{commit}/{path}` to `blobs/{blob}`, replacing any earlier link atomically.
pub fn link_snapshot(repo_dir: &Path, commit: &str, path: &str, blob: &str) -> io::Result<PathBuf> {
    check_repo_path(path).map_err(|why| invalid(path, why))?;
    check_commit(commit)?;
    if blob.is_empty() || !blob.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(blob, "a blob is named by its hash"));
    }
    let link = repo_dir.join("snapshots").join(commit).join(path);
    fs::create_dir_all(link.parent().expect("a snapshot link has a parent"))?;
    crate::disk::symlink_atomic(&snapshot_link_target(path, blob), &link)?;
    Ok(link)
}

/// Writes `refs/{revision}` to hold `commit` (no newline, as `huggingface_hub` writes it).
pub fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> io::Result<()> {
    check_repo_path(revision).map_err(|why| invalid(revision, why))?;
    check_commit(commit)?;
    crate::disk::write_atomic(&repo_dir.join("refs").join(revision), commit.as_bytes(), 0o644)
}

/// Refuses anything but a full commit id (40 lowercase hex digits) where a commit names something on disk.
pub fn check_commit(commit: &str) -> io::Result<()> {
    if super::layout::is_commit_hash(commit) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing the commit {commit:?}: a commit id is 40 hexadecimal digits"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_climb_one_level_per_folder() {
        assert_eq!(snapshot_link_target("config.json", "abc"), PathBuf::from("../../blobs/abc"));
        assert_eq!(snapshot_link_target("onnx/model.onnx", "abc"), PathBuf::from("../../../blobs/abc"));
    }

    #[test]
    fn hostile_paths_are_refused_before_touching_disk() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b", "a\0b", "a/."] {
            assert!(check_repo_path(bad).is_err(), "{bad:?}");
        }
        for good in ["config.json", "a/b/c.bin", ".gitattributes", "a..b"] {
            assert!(check_repo_path(good).is_ok(), "{good:?}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let err = link_snapshot(tmp.path(), &"a".repeat(40), "../../escape", "abc").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        for commit in ["../../../../somewhere/pwned", "main", &"A".repeat(40), &"a".repeat(41)] {
            let err = link_snapshot(tmp.path(), commit, "f.txt", "abc").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{commit}");
            assert!(write_ref(tmp.path(), "main", commit).is_err(), "{commit}");
        }
        assert!(link_snapshot(tmp.path(), &"a".repeat(40), "f.txt", "../x").is_err(), "a blob is a hash");
        assert!(fs::read_dir(tmp.path()).unwrap().next().is_none(), "nothing was written");
    }

    proptest::proptest! {
        #[test]
        fn accepted_repo_paths_stay_inside_the_snapshot(path in "[a-z./\\\\\\x00-]{0,24}") {
            if check_repo_path(&path).is_ok() {
                let joined = std::path::Path::new("/snap").join(&path);
                proptest::prop_assert!(joined.components().all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_))));
                proptest::prop_assert!(joined.starts_with("/snap") && joined != std::path::Path::new("/snap"));
            }
        }

        #[test]
        fn only_commit_ids_pass_as_commits(commit in "[0-9a-fA-F./]{38,42}") {
            let ok = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            proptest::prop_assert_eq!(check_commit(&commit).is_ok(), ok);
        }
    }

    #[test]
    fn links_resolve_to_the_blob_and_refs_have_no_newline() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("models--a--b");
        fs::create_dir_all(repo.join("blobs")).unwrap();
        fs::write(repo.join("blobs/abc"), b"hello").unwrap();
        let commit = "c".repeat(40);
        let link = link_snapshot(&repo, &commit, "sub/dir/f.txt", "abc").unwrap();
        assert_eq!(fs::read(&link).unwrap(), b"hello");
        link_snapshot(&repo, &commit, "sub/dir/f.txt", "abc").unwrap(); // replacing is fine
        write_ref(&repo, "main", &commit).unwrap();
        assert_eq!(fs::read_to_string(repo.join("refs/main")).unwrap(), commit);
    }
}
