//! Managed llama.cpp builds against the fake hub's releases API: archives in the release's shape (`build/bin/
//! llama-server`, the real one `scripts/llama-server` builds, as MM_TEST_LLAMA_SERVER) got, checked, unpacked, tried
//! with a tiny model and listed; a wrong or missing digest, a build that fails its try and hostile archives leave
//! nothing behind; offline and unmatched releases say what to do; removal takes only a managed build.

use fake_hub::FakeHub;
use mm_core::runtime::builds::{self, BuildOrigin, GetProgress, RuntimeBuild, Want};
use mm_core::{ErrorCode, ErrorPayload};
use sha2::Digest as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The llama-server to pack, or `None` (with the reason printed) where it was not built.
fn llama_server() -> Option<PathBuf> {
    let path = std::env::var_os("MM_TEST_LLAMA_SERVER").map(PathBuf::from).or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
        Some(cache.join("model-manager-build/llama-server-11434.0.0/llama-server")).filter(|p| p.exists())
    });
    if path.is_none() {
        eprintln!("skipped: MM_TEST_LLAMA_SERVER is unset and scripts/llama-server has not built one");
    }
    path.inspect(|p| assert!(p.exists(), "MM_TEST_LLAMA_SERVER={} is missing", p.display()))
}

/// A tiny llama GGUF model llama.cpp loads (tests/fixtures/tiny_llama.py, with the Python `scripts/setup test`
/// installs into target/py-venv, or MM_TEST_PYTHON).
fn tiny_llama(path: &Path, broken: bool) {
    let python = std::env::var_os("MM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python"));
    assert!(python.exists(), "{} is missing: run `scripts/setup test`", python.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny_llama.py");
    let out = Command::new(python).arg(script).arg(path).arg("1").args(broken.then_some("broken")).output().unwrap();
    assert!(out.status.success(), "tiny_llama.py: {}", String::from_utf8_lossy(&out.stderr));
}

/// This machine in release asset names: `ubuntu-x64`, `macos-arm64`…
fn platform() -> String {
    let os = if cfg!(target_os = "macos") { "macos" } else { "ubuntu" };
    let arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "x64" };
    format!("{os}-{arch}")
}

enum Entry {
    File(Vec<u8>, u32),
    Dir,
    Symlink(&'static str),
}

/// A `.tar.gz` with these entries, their names written as given (`../evil` included).
fn tar_gz(entries: Vec<(String, Entry)>) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, entry) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        let data = match entry {
            Entry::File(data, mode) => {
                header.set_mode(mode);
                data
            }
            Entry::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                Vec::new()
            }
            Entry::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                header.set_mode(0o777);
                Vec::new()
            }
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        tar.append(&header, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn zip(entries: Vec<(String, Entry)>) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, entry) in entries {
        match entry {
            Entry::File(data, mode) => {
                zip.start_file(name, options.unix_permissions(mode)).unwrap();
                zip.write_all(&data).unwrap();
            }
            Entry::Dir => zip.add_directory(name, options).unwrap(),
            Entry::Symlink(target) => zip.add_symlink(name, target, options).unwrap(),
        }
    }
    zip.finish().unwrap().into_inner()
}

/// The release's shape: `build/bin/llama-server` (and a link beside it, as releases have for their libraries).
fn release_shape(program: Vec<u8>) -> Vec<(String, Entry)> {
    vec![
        ("build/".into(), Entry::Dir),
        ("build/bin/llama-server".into(), Entry::File(program, 0o755)),
        ("build/bin/llama".into(), Entry::Symlink("llama-server")),
        ("build/LICENSE".into(), Entry::File(b"MIT".to_vec(), 0o644)),
    ]
}

/// Assets no machine here may take.
fn noise() -> Vec<(String, Vec<u8>)> {
    ["cudart-llama-bin-win-cuda-12.4-x64.zip", "llama-b6000-bin-win-cpu-x64.zip", "llama-b6000-xcframework.zip"]
        .into_iter()
        .map(|n| (n.to_string(), b"not for here".to_vec()))
        .collect()
}

fn script(body: &str) -> Vec<u8> {
    format!("#!/bin/sh\n{body}\n").into_bytes()
}

/// `get` with a client that follows no redirect (the module follows them), the machine taken as GPU-less.
async fn get(
    hub: &FakeHub,
    data: &Path,
    release: Option<&str>,
    model: Option<&Path>,
) -> (Result<RuntimeBuild, ErrorPayload>, Vec<GetProgress>) {
    get_from(&hub.releases_url(), data, release, model).await
}

async fn get_from(
    releases: &str,
    data: &Path,
    release: Option<&str>,
    model: Option<&Path>,
) -> (Result<RuntimeBuild, ErrorPayload>, Vec<GetProgress>) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
    let want = Want { release: release.map(str::to_string), ..Want::default() };
    let mut seen = Vec::new();
    let got = builds::get(&http, data, releases, want, model, |p| seen.push(p)).await;
    (got, seen)
}

/// What is in the builds' folder (nothing, when it was never made).
fn builds_here(data: &Path) -> Vec<String> {
    let entries = fs::read_dir(builds::builds_dir(data)).into_iter().flatten().flatten();
    let mut names: Vec<String> = entries.map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn sha256_hex(bytes: &[u8]) -> String {
    fake_hub::hex(&sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tar_gz_release_is_got_tried_listed_and_not_got_twice() {
    let Some(server) = llama_server() else { return };
    let (hub, data) = (FakeHub::start().await, tempfile::tempdir().unwrap());
    let archive = tar_gz(release_shape(fs::read(&server).unwrap()));
    let asset = format!("llama-b6000-bin-{}.tar.gz", platform());
    let mut assets = noise();
    assets.push((asset.clone(), archive.clone()));
    hub.add_release("b6000", assets, None);
    let model = data.path().join("tiny.gguf");
    tiny_llama(&model, false);
    // What an interrupted get left is swept.
    let dir = builds::builds_dir(data.path());
    fs::create_dir_all(dir.join(".partial-b5000-cpu/build")).unwrap();
    fs::create_dir_all(dir.join("b4000-cpu")).unwrap();

    let (got, progress) = get(&hub, data.path(), None, Some(&model)).await;
    let build = got.expect("the build is got");
    assert_eq!((build.name.as_str(), build.origin, build.backend.as_str()), ("b6000-cpu", BuildOrigin::Managed, "cpu"));
    assert_eq!(build.release.as_deref(), Some("b6000"));
    assert_eq!(build.sha256.as_deref(), Some(sha256_hex(&archive).as_str()));
    assert_eq!(build.error, None);
    assert_eq!(build.version.as_deref(), Some("0.6.0-dev (build 0, commit unknown)"));
    let program = dir.join("b6000-cpu/build/bin/llama-server");
    assert_eq!(Path::new(&build.path), program);
    assert_eq!(fs::metadata(&program).unwrap().permissions().mode() & 0o777, 0o755);
    assert_eq!(fs::read_link(dir.join("b6000-cpu/build/bin/llama")).unwrap(), Path::new("llama-server"));
    assert_eq!(builds_here(data.path()), ["b6000-cpu"], "leftovers swept, nothing partial kept");
    assert!(!dir.join("b6000-cpu").join(&asset).exists(), "the archive is not kept");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("b6000-cpu/build.json")).unwrap()).unwrap();
    assert_eq!(record["program"], "build/bin/llama-server");
    assert_eq!(record["asset"], asset.as_str());
    let stages: Vec<&str> = progress.iter().map(|p| p.stage.as_str()).collect();
    assert_eq!(stages.first(), Some(&"download"));
    assert!(stages.contains(&"unpack") && stages.last() == Some(&"try"), "{stages:?}");
    let last_download = progress.iter().rfind(|p| p.stage == "download").unwrap();
    assert_eq!((last_download.bytes, last_download.total), (archive.len() as u64, archive.len() as u64));

    let listed = builds::list(data.path(), None).await;
    let managed: Vec<_> = listed.iter().filter(|b| b.origin == BuildOrigin::Managed).collect();
    assert_eq!(managed, [&build]);
    // The setting naming the same program: listed once, as the managed build it is.
    let listed = builds::list(data.path(), Some(build.path.as_str())).await;
    let same: Vec<_> = listed.iter().filter(|b| b.path == build.path).collect();
    assert_eq!(same.len(), 1, "{listed:?}");
    assert_eq!((same[0].origin, same[0].release.as_deref()), (BuildOrigin::Managed, Some("b6000")));

    hub.clear_requests();
    let (again, progress) = get(&hub, data.path(), None, Some(&model)).await;
    assert_eq!(again.expect("here already").name, "b6000-cpu");
    assert!(progress.is_empty());
    let asked: Vec<String> = hub.requests().into_iter().map(|r| r.path).collect();
    assert!(asked.iter().all(|p| !p.contains("/download/") && !p.contains("/release-assets/")), "{asked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_release_is_got_by_its_tag() {
    let Some(server) = llama_server() else { return };
    let (hub, data) = (FakeHub::start().await, tempfile::tempdir().unwrap());
    let archive = zip(release_shape(fs::read(&server).unwrap()));
    hub.add_release("b6001", vec![(format!("llama-b6001-bin-{}.zip", platform()), archive.clone())], None);
    hub.add_release("b6002", noise(), None);
    let model = data.path().join("tiny.gguf");
    tiny_llama(&model, false);

    // The real llama-server refusing a model that does not load: the try fails, nothing is kept.
    let broken = data.path().join("broken.gguf");
    tiny_llama(&broken, true);
    let (got, _) = get(&hub, data.path(), Some("b6001"), Some(&broken)).await;
    let error = got.expect_err("the try fails");
    assert_eq!(error.code, ErrorCode::Io, "{error:?}");
    assert!(error.message.contains("broken.gguf") && error.message.contains("before it answered"), "{}", error.message);
    assert!(builds_here(data.path()).is_empty());

    let (got, _) = get(&hub, data.path(), Some("b6001"), Some(&model)).await;
    let build = got.expect("the build is got");
    assert_eq!((build.name.as_str(), build.sha256.clone()), ("b6001-cpu", Some(sha256_hex(&archive))));
    assert!(build.version.is_some(), "{build:?}");
    let program = Path::new(&build.path);
    assert_eq!(fs::metadata(program).unwrap().permissions().mode() & 0o777, 0o755);
    assert!(fs::symlink_metadata(program.with_file_name("llama")).unwrap().is_symlink());
    let listed = builds::list(data.path(), None).await;
    assert!(listed
        .iter()
        .any(|b| b.name == "b6001-cpu" && b.origin == BuildOrigin::Managed && b.version == build.version));
    assert!(hub.requests().iter().any(|r| r.path.ends_with("/releases/tags/b6001")));
}

#[tokio::test]
async fn a_wrong_or_missing_digest_keeps_nothing() {
    let (hub, data) = (FakeHub::start().await, tempfile::tempdir().unwrap());
    let archive = tar_gz(release_shape(script("echo 'version: 1 (x)' >&2")));
    let asset = format!("llama-b7000-bin-{}.tar.gz", platform());
    let zeros = "0".repeat(64);
    hub.add_release("b7000", vec![(asset.clone(), archive.clone())], Some(format!("sha256:{zeros}")));

    let (got, _) = get(&hub, data.path(), None, None).await;
    let error = got.expect_err("a wrong digest is refused");
    assert_eq!(error.code, ErrorCode::ChecksumMismatch, "{error:?}");
    assert!(error.message.contains(&zeros) && error.message.contains(&sha256_hex(&archive)), "{}", error.message);
    assert!(builds_here(data.path()).is_empty(), "{:?}", builds_here(data.path()));

    hub.add_release("b7001", vec![(asset.replace("b7000", "b7001"), archive)], Some(String::new()));
    hub.clear_requests();
    let (got, _) = get(&hub, data.path(), None, None).await;
    let error = got.expect_err("an asset without a digest is refused");
    assert_eq!(error.code, ErrorCode::InvalidInput, "{error:?}");
    assert!(error.message.contains("sha256"), "{}", error.message);
    assert!(hub.requests().iter().all(|r| !r.path.contains("/download/")), "nothing unverified is fetched");
    assert!(builds_here(data.path()).is_empty());
    assert!(builds::list(data.path(), None).await.iter().all(|b| b.origin != BuildOrigin::Managed));
}

#[tokio::test]
async fn a_build_that_fails_its_try_is_removed() {
    let (hub, data) = (FakeHub::start().await, tempfile::tempdir().unwrap());
    let broken = script("echo 'this build is broken' >&2\nexit 1");
    hub.add_release(
        "b8000",
        vec![(format!("llama-b8000-bin-{}.tar.gz", platform()), tar_gz(release_shape(broken)))],
        None,
    );
    let (got, _) = get(&hub, data.path(), None, None).await;
    let error = got.expect_err("it fails --version");
    assert_eq!(error.code, ErrorCode::Io, "{error:?}");
    assert!(
        error.message.contains("this build is broken") && error.message.contains("llamaServer"),
        "{}",
        error.message
    );
    assert!(builds_here(data.path()).is_empty());

    // Its --version answers, but it cannot serve the model.
    let no_model = script(
        "if [ \"$1\" = --version ]; then echo 'version: 9 (x)' >&2; exit 0; fi\necho 'cannot load the model' >&2\nexit 1",
    );
    hub.add_release("b8001", vec![(format!("llama-b8001-bin-{}.zip", platform()), zip(release_shape(no_model)))], None);
    let model = data.path().join("model.gguf");
    fs::write(&model, b"GGUF").unwrap();
    let (got, _) = get(&hub, data.path(), None, Some(&model)).await;
    let error = got.expect_err("it fails with the model");
    assert_eq!(error.code, ErrorCode::Io, "{error:?}");
    assert!(error.message.contains("cannot load the model"), "{}", error.message);
    assert!(builds_here(data.path()).is_empty());
    assert!(builds::list(data.path(), None).await.iter().all(|b| b.origin != BuildOrigin::Managed));
}

#[tokio::test]
async fn hostile_archives_are_refused_and_write_nothing_outside() {
    let (hub, data) = (FakeHub::start().await, tempfile::tempdir().unwrap());
    let outside = data.path().join("abs-evil");
    let program = || ("build/bin/llama-server".to_string(), Entry::File(script("exit 0"), 0o755));
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        ("../evil", "tar.gz".into(), tar_gz(vec![program(), ("../evil".into(), Entry::File(b"x".to_vec(), 0o644))])),
        ("build/up", "tar.gz".into(), tar_gz(vec![program(), ("build/up".into(), Entry::Symlink("../../../.."))])),
        ("build/abs", "zip".into(), zip(vec![program(), ("build/abs".into(), Entry::Symlink("/etc"))])),
        (
            outside.to_str().unwrap(),
            "zip".into(),
            zip(vec![program(), (outside.display().to_string(), Entry::File(b"x".to_vec(), 0o644))]),
        ),
    ];
    for (i, (entry, ext, archive)) in cases.into_iter().enumerate() {
        let tag = format!("b900{i}");
        hub.add_release(&tag, vec![(format!("llama-{tag}-bin-{}.{ext}", platform()), archive)], None);
        let (got, _) = get(&hub, data.path(), Some(&tag), None).await;
        let error = got.expect_err("a hostile archive is refused");
        assert_eq!(error.code, ErrorCode::InvalidInput, "{entry}: {error:?}");
        assert!(error.message.contains(entry), "{}", error.message);
        assert!(builds_here(data.path()).is_empty(), "{entry}: {:?}", builds_here(data.path()));
    }
    assert!(!data.path().join("runtimes/evil").exists() && !outside.exists());
    let everything: Vec<_> =
        fake_hub::walk(data.path()).into_iter().filter(|p| p.is_file() && !p.ends_with("llama.cpp.lock")).collect();
    assert!(everything.is_empty(), "{everything:?}");
}

#[tokio::test]
async fn offline_says_what_to_do() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let releases = format!("http://127.0.0.1:{port}/repos/ggml-org/llama.cpp/releases");
    let (got, _) = get_from(&releases, data.path(), None, None).await;
    let error = got.expect_err("nothing answers");
    assert_eq!(error.code, ErrorCode::Network, "{error:?}");
    for advice in [releases.as_str(), "offline", "llamaCppReleases", "llamaServer"] {
        assert!(error.message.contains(advice), "{advice}: {}", error.message);
    }
}

#[tokio::test]
async fn no_matching_asset_names_what_is_offered() {
    let (hub, data) = (FakeHub::start().await, tempfile::tempdir().unwrap());
    hub.add_release("b6000", noise(), None);
    let (got, _) = get(&hub, data.path(), None, None).await;
    let error = got.expect_err("nothing for this machine");
    assert_eq!(error.code, ErrorCode::NotFound, "{error:?}");
    for (name, _) in noise() {
        assert!(error.message.contains(&name), "{name}: {}", error.message);
    }
    assert!(error.message.contains("llamaServer") && error.message.contains("b6000"), "{}", error.message);
    let (got, _) = get(&hub, data.path(), Some("b1"), None).await;
    assert_eq!(got.expect_err("no such tag").code, ErrorCode::NotFound);
    let (got, _) = get(&hub, data.path(), Some("../b1"), None).await;
    assert_eq!(got.expect_err("not a tag").code, ErrorCode::InvalidInput);
    assert!(builds_here(data.path()).is_empty());
}

#[tokio::test]
async fn list_orders_managed_builds_and_remove_takes_only_them() {
    let data = tempfile::tempdir().unwrap();
    let dir = builds::builds_dir(data.path());
    let make = |name: &str, got_at: u64, program: &[u8]| {
        fs::create_dir_all(dir.join(name)).unwrap();
        let path = dir.join(name).join("llama-server");
        fs::write(&path, program).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let record = serde_json::json!({"release": name.split('-').next(), "asset": "a.zip", "sha256": "ab",
            "backend": "vulkan", "program": "llama-server", "gotAt": got_at});
        fs::write(dir.join(name).join("build.json"), record.to_string()).unwrap();
    };
    make("b1-vulkan", 5, &script("echo 'version: 1 (one)' >&2"));
    make("b2-vulkan", 10, &script("echo 'version: 2 (two)' >&2\necho 'Available devices:'\necho '  Vulkan0: GPU'"));
    fs::create_dir_all(dir.join("b3-cpu")).unwrap();
    fs::create_dir_all(data.path().join("runtimes/x")).unwrap();
    fs::write(data.path().join("runtimes/x/build.json"), b"{}").unwrap();

    let listed = builds::list(data.path(), None).await;
    let managed: Vec<_> = listed.iter().filter(|b| b.origin == BuildOrigin::Managed).collect();
    let seen: Vec<_> = managed.iter().map(|b| (b.name.as_str(), b.version.as_deref(), b.devices.clone())).collect();
    assert_eq!(
        seen,
        [("b2-vulkan", Some("2 (two)"), vec!["Vulkan0: GPU".to_string()]), ("b1-vulkan", Some("1 (one)"), vec![])]
    );
    assert_eq!(managed[0].backend, "vulkan");

    let freed = builds::remove(data.path(), "b1-vulkan").expect("removed");
    assert!(freed >= 40, "{freed}");
    assert!(!dir.join("b1-vulkan").exists());
    assert_eq!(builds::remove(data.path(), "b1-vulkan").unwrap_err().code, ErrorCode::NotFound);
    assert_eq!(builds::remove(data.path(), "b3-cpu").unwrap_err().code, ErrorCode::NotFound, "unfinished");
    for hostile in ["../x", "..", ".partial-b3-cpu", "/tmp", "", "b2-vulkan/llama-server"] {
        assert_eq!(builds::remove(data.path(), hostile).unwrap_err().code, ErrorCode::InvalidInput, "{hostile:?}");
    }
    assert!(data.path().join("runtimes/x/build.json").exists() && dir.join("b2-vulkan").exists());
}
