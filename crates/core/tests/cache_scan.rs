//! Scanning real cache folders laid out by `huggingface_hub`'s rules: relative symlinks into shared blobs,
//! refs, nested paths, interrupted downloads and entries that are not cache entries at all.

use mm_core::cache::layout::{tree_record_path, TreeRecord, TreeRecordFile};
use mm_core::cache::{scan, scan_blocking, CacheStatus};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

/// Writes a blob and a snapshot link by hand, exactly as `huggingface_hub` does (not through our writer).
fn put(repo: &Path, commit: &str, path: &str, blob: &str, content: &[u8]) {
    fs::create_dir_all(repo.join("blobs")).unwrap();
    fs::write(repo.join("blobs").join(blob), content).unwrap();
    link(repo, commit, path, blob);
}

fn link(repo: &Path, commit: &str, path: &str, blob: &str) {
    let file = repo.join("snapshots").join(commit).join(path);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let ups = "../".repeat(path.matches('/').count() + 2);
    symlink(format!("{ups}blobs/{blob}"), file).unwrap();
}

fn write_ref(repo: &Path, name: &str, commit: &str) {
    let path = repo.join("refs").join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, commit).unwrap();
}

#[test]
fn complete_repo_with_shared_blobs_refs_and_nested_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("models--acme--tiny");
    put(&repo, C1, "config.json", "aaaa", b"{\"a\":1}");
    put(&repo, C1, "onnx/model.onnx", "bbbb", &[7u8; 1000]);
    // A second revision sharing the big blob and adding a new config.
    link(&repo, C2, "onnx/model.onnx", "bbbb");
    put(&repo, C2, "config.json", "cccc", b"{\"a\":22}");
    write_ref(&repo, "main", C2);
    write_ref(&repo, "v1", C1);
    write_ref(&repo, "pr/1", C1);

    let scan = scan_blocking(tmp.path()).unwrap();
    assert!(scan.exists);
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    assert_eq!(scan.repos.len(), 1);
    let r = &scan.repos[0];
    assert_eq!(r.repo_id, "acme/tiny");
    assert_eq!(r.status, CacheStatus::Complete);
    assert_eq!(r.size_on_disk, 7 + 1000 + 8, "each blob counted once");
    assert_eq!(scan.size_on_disk, r.size_on_disk);
    assert!(r.last_modified.is_some());

    assert_eq!(r.revisions.len(), 2);
    let main = &r.revisions[0];
    assert_eq!(main.commit, C2, "the revision main points at comes first");
    assert_eq!(main.refs, vec!["main"]);
    assert_eq!(main.size_on_disk, 1008);
    let paths: Vec<_> = main.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["config.json", "onnx/model.onnx"]);
    assert_eq!(main.files[1].blob.as_deref(), Some("bbbb"));
    assert_eq!(main.files[1].size, 1000);
    let old = &r.revisions[1];
    assert_eq!(old.refs, vec!["pr/1", "v1"]);
    assert_eq!(old.size_on_disk, 1007);
}

#[test]
fn dangling_links_incomplete_blobs_and_recorded_trees_make_partial() {
    let tmp = tempfile::tempdir().unwrap();
    // A snapshot link whose blob is gone.
    let dangling = tmp.path().join("models--acme--dangling");
    put(&dangling, C1, "config.json", "aaaa", b"{}");
    link(&dangling, C1, "model.safetensors", "gone");
    write_ref(&dangling, "main", C1);
    // A download in progress: an .incomplete blob and nothing linked yet.
    let downloading = tmp.path().join("models--acme--downloading");
    fs::create_dir_all(downloading.join("blobs")).unwrap();
    fs::write(downloading.join("blobs/ffff.incomplete"), [0u8; 300]).unwrap();
    write_ref(&downloading, "main", C1);
    // Every link is fine, but the tree this app recorded lists a file that is not there.
    let recorded = tmp.path().join("models--acme--recorded");
    put(&recorded, C1, "config.json", "aaaa", b"{}");
    let record = TreeRecord {
        commit: C1.into(),
        files: vec![
            TreeRecordFile { path: "config.json".into(), size: 2, blob: "aaaa".into() },
            TreeRecordFile { path: "weights/model.gguf".into(), size: 9, blob: "dddd".into() },
        ],
    };
    let record_path = tree_record_path(&recorded, C1);
    fs::create_dir_all(record_path.parent().unwrap()).unwrap();
    fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();

    let scan = scan_blocking(tmp.path()).unwrap();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let by_id = |id: &str| scan.repos.iter().find(|r| r.repo_id == id).unwrap();

    let d = by_id("acme/dangling");
    assert_eq!(d.status, CacheStatus::Partial);
    assert_eq!(d.revisions[0].missing, vec!["model.safetensors"]);
    assert_eq!(d.revisions[0].files.len(), 1);

    let g = by_id("acme/downloading");
    assert_eq!(g.status, CacheStatus::Partial);
    assert_eq!(g.incomplete[0].blob, "ffff");
    assert_eq!(g.incomplete[0].bytes, 300);
    assert_eq!(g.size_on_disk, 300);
    assert_eq!(g.revisions.len(), 1, "the ref names a commit with no snapshot yet");
    assert_eq!(g.revisions[0].status, CacheStatus::Partial);

    let t = by_id("acme/recorded");
    assert_eq!(t.status, CacheStatus::Partial);
    assert_eq!(t.revisions[0].missing, vec!["weights/model.gguf"]);

    // Completing the recorded tree makes it complete.
    put(&recorded, C1, "weights/model.gguf", "dddd", b"123456789");
    let again = scan_blocking(tmp.path()).unwrap();
    let t = again.repos.iter().find(|r| r.repo_id == "acme/recorded").unwrap();
    assert_eq!(t.status, CacheStatus::Complete);

    // A power cut after the rename but before the bytes reached the disk leaves a short blob linked: the
    // recorded size tells it from the real file.
    fs::write(recorded.join("blobs/dddd"), b"1234").unwrap();
    let cut = scan_blocking(tmp.path()).unwrap();
    let t = cut.repos.iter().find(|r| r.repo_id == "acme/recorded").unwrap();
    assert_eq!(t.status, CacheStatus::Partial);
    assert_eq!(t.revisions[0].missing, vec!["weights/model.gguf"]);
}

#[test]
fn entries_that_are_not_cache_entries_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    put(&tmp.path().join("models--ok"), C1, "a.txt", "aaaa", b"a");
    put(&tmp.path().join("datasets--acme--data"), C1, "d.csv", "eeee", b"x,y");
    fs::create_dir_all(tmp.path().join(".locks/models--ok")).unwrap();
    fs::write(tmp.path().join("version.txt"), "1").unwrap();
    fs::write(tmp.path().join("CACHEDIR.TAG"), "Signature").unwrap();
    fs::create_dir_all(tmp.path().join("random-folder")).unwrap();
    fs::write(tmp.path().join("models--file--not-folder"), "x").unwrap();
    fs::create_dir_all(tmp.path().join("models--bad id")).unwrap();
    let garbage_ref = tmp.path().join("models--garbage");
    put(&garbage_ref, C1, "a", "aaaa", b"a");
    write_ref(&garbage_ref, "main", "not a commit");
    fs::write(garbage_ref.join("snapshots/stray-file"), "x").unwrap();

    let scan = scan_blocking(tmp.path()).unwrap();
    let ids: Vec<_> = scan.repos.iter().map(|r| r.repo_id.as_str()).collect();
    assert_eq!(ids, ["garbage", "ok", "acme/data"], "models first, then datasets");
    let messages: Vec<String> = scan
        .problems
        .iter()
        .map(|p| format!("{} {}", Path::new(&p.path).file_name().unwrap().to_string_lossy(), p.message))
        .collect();
    assert_eq!(messages.len(), 5, "{messages:#?}");
    assert!(messages.iter().any(|m| m.starts_with("random-folder not a Hugging Face cache entry")));
    assert!(messages.iter().any(|m| m.starts_with("models--bad id not a Hugging Face cache entry")));
    assert!(messages.iter().any(|m| m.starts_with("models--file--not-folder a file where a repo folder")));
    assert!(messages.iter().any(|m| m.starts_with("main ref \"main\" does not hold a commit hash")));
    assert!(messages.iter().any(|m| m.starts_with("stray-file not a snapshot folder")));
}

#[test]
fn links_outside_blobs_are_problems_never_files() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("models--acme--odd");
    put(&repo, C1, "a.txt", "aaaa", b"a");
    let snap = repo.join("snapshots").join(C1);
    let elsewhere = tempfile::tempdir().unwrap();
    fs::write(elsewhere.path().join("outside.bin"), [1u8; 5]).unwrap();
    symlink(elsewhere.path().join("outside.bin"), snap.join("abs.bin")).unwrap();
    symlink(".", snap.join("loop")).unwrap();
    fs::write(snap.join("plain.txt"), "plain").unwrap();

    let scan = scan_blocking(tmp.path()).unwrap();
    let rev = &scan.repos[0].revisions[0];
    let files: Vec<_> = rev.files.iter().map(|f| (f.path.as_str(), f.size, f.blob.is_some())).collect();
    assert_eq!(files, [("a.txt", 1, true), ("plain.txt", 5, false)]);
    assert_eq!(scan.problems.len(), 2, "{:?}", scan.problems);
    assert!(scan.problems.iter().all(|p| p.message.contains("a link out of the repo's blobs")), "{:?}", scan.problems);
}

#[tokio::test]
async fn scans_a_thousand_repos_on_a_blocking_thread() {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..1000 {
        let repo = tmp.path().join(format!("models--org{i}--model"));
        put(&repo, C1, "config.json", &format!("{i:040x}"), b"{}");
        write_ref(&repo, "main", C1);
    }
    let scan = scan(tmp.path().to_path_buf()).await.unwrap();
    assert_eq!(scan.repos.len(), 1000);
    assert!(scan.repos.iter().all(|r| r.status == CacheStatus::Complete));
}
