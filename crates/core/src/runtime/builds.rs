//! The llama.cpp builds ("runtimes") this machine can serve models with: the `llama-server` of the `llamaServer`
//! setting, the first one on `PATH`, and the builds the app got itself from llama.cpp's releases.
//!
//! A managed build is a folder `{data}/runtimes/llama.cpp/<tag>-<backend>/`: the release archive unpacked, and a
//! `build.json` beside it (release, asset, sha256, backend, program, gotAt) written last, so a folder without one is
//! an unfinished get and is never listed. [`get`] asks the releases API (GitHub's shape) for a release, picks the
//! asset for this OS, CPU and GPU ([`choose_asset`]), streams it into `.partial-<name>/` while hashing it, refuses
//! it unless it matches the digest GitHub publishes, unpacks it entry by entry (nothing may land outside the
//! folder), runs it (`--version`, and a tiny model to `/health` when one is given) and only then renames the
//! folder into place. Every `llama-server` listed is probed (`--version`, `--list-devices`) with a timeout.

use crate::{ErrorCode, ErrorPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt as _;
use ts_rs::TS;

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
const TRY_TIMEOUT: Duration = Duration::from_secs(60);
/// The most a release may unpack to (or download, when its size is not listed): a CUDA build is a few hundred MiB.
const MAX_BYTES: u64 = 16 << 30;
/// The most entries a release archive may hold (llama.cpp's hold a few dozen).
const MAX_ENTRIES: usize = 10_000;
const USER_AGENT: &str = concat!("model-manager/", env!("CARGO_PKG_VERSION"));
const ADVICE: &str = "set the llamaServer setting to a llama-server you built (mm config set llamaServer PATH)";

/// A `llama-server` this machine can run models with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeBuild {
    /// A managed build's folder name (`b6000-cpu`); else `setting` or `path`.
    pub name: String,
    /// The `llama-server` program.
    pub path: String,
    pub origin: BuildOrigin,
    /// What `llama-server --version` says after `version: ` (`6543 (a1b2c3d)`).
    pub version: Option<String>,
    /// `cpu`, `cuda`, `vulkan`, `rocm` or `metal`: a managed build's own, else read from its devices.
    pub backend: String,
    /// The devices `--list-devices` lists (`CUDA0: NVIDIA H100 (81000 MiB, 80000 MiB free)`).
    pub devices: Vec<String>,
    /// A managed build's release tag.
    pub release: Option<String>,
    /// A managed build's archive digest (hex).
    pub sha256: Option<String>,
    /// Why `--version` failed.
    pub error: Option<String>,
}

/// Where a build was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BuildOrigin {
    /// The first `llama-server` on `PATH`.
    Path,
    /// The `llamaServer` setting.
    Setting,
    /// Got by the app from llama.cpp's releases.
    Managed,
}

/// Which build to get.
#[derive(Debug, Clone, Default)]
pub struct Want {
    /// A release tag (`b6000`); the latest when none.
    pub release: Option<String>,
    /// `cpu`, `cuda`, `vulkan`, `rocm`, `metal`: only that one; when none, chosen from `gpu_vendors`.
    pub backend: Option<String>,
    /// The hardware probe's GPU vendors (`NVIDIA`, `AMD`).
    pub gpu_vendors: Vec<String>,
}

/// How far a [`get`] is: `download` (bytes of total), `unpack`, `try`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetProgress {
    pub stage: String,
    pub bytes: u64,
    pub total: u64,
}

/// A file of a release, as GitHub's releases API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Asset {
    pub name: String,
    pub browser_download_url: String,
    #[serde(default)]
    pub size: u64,
    /// `sha256:<hex>`.
    #[serde(default)]
    pub digest: Option<String>,
}

#[derive(Deserialize)]
struct Release {
    tag_name: String,
    #[serde(default)]
    assets: Vec<Asset>,
}

/// `build.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    release: String,
    asset: String,
    sha256: String,
    backend: String,
    /// `llama-server`, relative to the build's folder.
    program: String,
    /// Unix seconds.
    got_at: u64,
}

/// `{data}/runtimes/llama.cpp`: one folder per managed build.
pub fn builds_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("runtimes").join("llama.cpp")
}

fn err(code: ErrorCode, message: impl Into<String>) -> ErrorPayload {
    ErrorPayload::new(code, message)
}

fn io_err(what: &str, path: &Path, e: io::Error) -> ErrorPayload {
    err(ErrorCode::of_io(&e), format!("could not {what} {}: {e}", path.display()))
}

/// A program to probe, and where it was found.
struct Found {
    name: String,
    path: PathBuf,
    origin: BuildOrigin,
    record: Option<Record>,
}

/// The builds this machine has: the setting's, `PATH`'s, then the managed ones newest first, each probed.
pub async fn list(data_dir: &Path, setting: Option<&str>) -> Vec<RuntimeBuild> {
    let found = |name: &str, path: PathBuf, origin| Found { name: name.into(), path, origin, record: None };
    let mut all: Vec<Found> = setting
        .filter(|s| !s.trim().is_empty())
        .map(|s| found("setting", s.into(), BuildOrigin::Setting))
        .into_iter()
        .collect();
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("llama-server"))
        .find(|p| p.is_file());
    all.extend(on_path.map(|p| found("path", p, BuildOrigin::Path)));
    for (name, record) in managed(data_dir) {
        let path = builds_dir(data_dir).join(&name).join(&record.program);
        all.push(Found { name, path, origin: BuildOrigin::Managed, record: Some(record) });
    }
    // One entry per program, in the order found; a managed build the setting or PATH names is listed as managed
    // (its name is what `use` and `remove` take).
    let mut unique: Vec<(PathBuf, Found)> = Vec::new();
    for build in all {
        let key = fs::canonicalize(&build.path).unwrap_or_else(|_| build.path.clone());
        match unique.iter_mut().find(|(k, _)| *k == key) {
            Some((_, kept)) if build.origin == BuildOrigin::Managed => *kept = build,
            Some(_) => {}
            None => unique.push((key, build)),
        }
    }
    let probes: Vec<_> = unique.into_iter().map(|(_, build)| tokio::spawn(probe(build))).collect();
    let mut builds = Vec::new();
    for probe in probes {
        builds.extend(probe.await.ok());
    }
    builds
}

/// The newest managed build's `llama-server`, if the app got one.
pub fn newest(data_dir: &Path) -> Option<PathBuf> {
    managed(data_dir).into_iter().next().map(|(name, record)| builds_dir(data_dir).join(name).join(record.program))
}

/// A managed build's `llama-server` by its name.
pub fn program_of(data_dir: &Path, name: &str) -> Option<PathBuf> {
    let dir = builds_dir(data_dir).join(name);
    valid_name(name).then(|| read_record(&dir)).flatten().map(|record| dir.join(record.program))
}

/// The finished managed builds, newest first.
fn managed(data_dir: &Path) -> Vec<(String, Record)> {
    let Ok(entries) = fs::read_dir(builds_dir(data_dir)) else { return Vec::new() };
    let mut builds: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok().filter(|n| valid_name(n))?;
            Some((name, read_record(&e.path())?))
        })
        .collect();
    builds.sort_by(|(a, ra), (b, rb)| (rb.got_at, b).cmp(&(ra.got_at, a)));
    builds
}

fn read_record(dir: &Path) -> Option<Record> {
    let record: Record = serde_json::from_slice(&fs::read(dir.join("build.json")).ok()?).ok()?;
    relative(&record.program).is_some_and(|p| !p.as_os_str().is_empty()).then_some(record)
}

/// A folder name a build may have (a release tag and a backend): no path, no hidden name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn check_tag(tag: &str) -> Result<(), ErrorPayload> {
    if valid_name(tag) && tag.len() <= 64 {
        return Ok(());
    }
    Err(err(ErrorCode::InvalidInput, format!("\"{tag}\" is not a llama.cpp release tag (tags look like b6000)")))
}

async fn probe(Found { name, path, origin, record }: Found) -> RuntimeBuild {
    let (version, devices) = tokio::join!(run_briefly(&path, "--version"), run_briefly(&path, "--list-devices"));
    let listing = devices.unwrap_or_default();
    let (version, error) = match version {
        Ok(out) => (parse_version(&out), None),
        Err(why) => (None, Some(why)),
    };
    RuntimeBuild {
        name,
        path: path.display().to_string(),
        origin,
        version,
        backend: record.as_ref().map_or_else(|| infer_backend(&listing).to_string(), |r| r.backend.clone()),
        devices: parse_devices(&listing),
        release: record.as_ref().map(|r| r.release.clone()),
        sha256: record.map(|r| r.sha256),
        error,
    }
}

/// Starts a program, again while it is busy: a thread that forked while the file was still open for writing
/// holds it for a moment (ETXTBSY).
async fn spawn(command: &mut tokio::process::Command) -> io::Result<tokio::process::Child> {
    for _ in 0..20 {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => tokio::time::sleep(Duration::from_millis(50)).await,
            other => return other,
        }
    }
    command.spawn()
}

/// The flags a `llama-server` knows, from its `--help` (read once per program and version of it; none when it
/// cannot say).
pub async fn known_flags(program: &Path) -> std::sync::Arc<std::collections::HashSet<String>> {
    type Known = std::collections::BTreeMap<
        (PathBuf, Option<std::time::SystemTime>),
        std::sync::Arc<std::collections::HashSet<String>>,
    >;
    static KNOWN: std::sync::Mutex<Known> = std::sync::Mutex::new(std::collections::BTreeMap::new());
    let key = (program.to_path_buf(), fs::metadata(program).and_then(|m| m.modified()).ok());
    if let Some(flags) = KNOWN.lock().expect("flags").get(&key) {
        return flags.clone();
    }
    let help = run_briefly(program, "--help").await.unwrap_or_default();
    let flags: std::collections::HashSet<String> = help
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| w.starts_with('-') && w.len() > 1 && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .collect();
    let flags = std::sync::Arc::new(flags);
    KNOWN.lock().expect("flags").insert(key, flags.clone());
    flags
}

/// Runs `program arg` (no input) for at most 10 s: its output (stdout, then stderr) if it succeeds, else why not.
async fn run_briefly(program: &Path, arg: &str) -> Result<String, String> {
    let what = format!("{} {arg}", program.display());
    let mut command = tokio::process::Command::new(program);
    command.arg(arg).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = spawn(&mut command).await.map_err(|e| format!("{what} could not start: {e}"))?;
    // Dropping the child on timeout kills it.
    let out = tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("{what} did not finish in {} s", PROBE_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{what} failed: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.success() {
        true => Ok(text),
        false => Err(format!("{what} failed ({}): {}", out.status, last_lines(&text, 8))),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn parse_version(out: &str) -> Option<String> {
    out.lines().find_map(|l| l.trim().strip_prefix("version: ")).map(|v| v.trim().to_string())
}

/// The indented lines under `Available devices:`; `(none)` is none.
fn parse_devices(out: &str) -> Vec<String> {
    let mut lines = out.lines().skip_while(|l| l.trim() != "Available devices:").skip(1);
    let listed = lines.by_ref().take_while(|l| l.starts_with(char::is_whitespace) && !l.trim().is_empty());
    listed.map(|l| l.trim().to_string()).filter(|l| l != "(none)").collect()
}

fn infer_backend(out: &str) -> &'static str {
    const MARKS: [(&str, &str); 6] = [
        ("ROCm", "rocm"),
        ("HIP", "rocm"),
        ("CUDA", "cuda"),
        ("Vulkan", "vulkan"),
        ("Metal", "metal"),
        ("MTL", "metal"),
    ];
    MARKS.iter().find(|(mark, _)| out.contains(mark)).map_or("cpu", |(_, backend)| backend)
}

/// What a release asset's name says it is, `(os, arch, backend)`, from `llama-<tag>-bin-<os>[-<backend>…]-<arch>`
/// and `.zip` or `.tar.gz`; `other` for a backend this app does not choose (SYCL, OpenCL…).
fn classify(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    let stem = name.strip_suffix(".tar.gz").or_else(|| name.strip_suffix(".zip"))?;
    let (head, platform) = stem.split_once("-bin-")?;
    let parts: Vec<&str> = platform.split('-').collect();
    if !head.starts_with("llama-") || parts.len() < 2 {
        return None;
    }
    let os = match parts[0] {
        "ubuntu" | "linux" => "linux",
        "macos" => "macos",
        "win" => "windows",
        _ => return None,
    };
    let arch = match parts[parts.len() - 1] {
        "x64" | "x86_64" => "x86_64",
        "arm64" | "aarch64" => "aarch64",
        _ => return None,
    };
    let backend = match parts[1..parts.len() - 1].first() {
        None if (os, arch) == ("macos", "aarch64") => "metal",
        None | Some(&"cpu") => "cpu",
        Some(&"cuda") => "cuda",
        Some(&"vulkan") => "vulkan",
        Some(&"rocm" | &"hip") => "rocm",
        Some(_) => "other",
    };
    Some((os, arch, backend))
}

/// The asset to get for `os`/`arch` (as `std::env::consts` names them) and its backend: `backend` if given (and
/// only it); else CUDA for an NVIDIA GPU and ROCm for an AMD one where offered, then Vulkan, then the CPU build.
/// A `.tar.gz` before a `.zip`, then the first by name (the oldest CUDA, which the most drivers run).
pub fn choose_asset<'a>(
    assets: &'a [Asset],
    os: &str,
    arch: &str,
    vendors: &[String],
    backend: Option<&str>,
) -> Option<(&'a Asset, String)> {
    let here: Vec<(&Asset, &str)> = assets
        .iter()
        .filter_map(|a| classify(&a.name).filter(|(o, r, _)| (*o, *r) == (os, arch)).map(|(_, _, b)| (a, b)))
        .collect();
    let pick = |wanted: &str| {
        let mut offered: Vec<&&Asset> = here.iter().filter(|(_, b)| *b == wanted).map(|(a, _)| a).collect();
        offered.sort_by_key(|a| (!a.name.ends_with(".tar.gz"), a.name.clone()));
        offered.first().map(|a| (**a, wanted.to_string()))
    };
    if let Some(wanted) = backend {
        return pick(wanted);
    }
    let has = |vendor: &str| vendors.iter().any(|v| v.to_ascii_lowercase().contains(vendor));
    let order: &[&str] = if has("nvidia") {
        &["cuda", "vulkan"]
    } else if has("amd") || has("advanced micro") {
        &["rocm", "vulkan"]
    } else {
        &[]
    };
    order.iter().find_map(|b| pick(b)).or_else(|| pick("cpu")).or_else(|| pick("metal"))
}

/// Gets a build from the releases API at `releases` (`…/repos/ggml-org/llama.cpp/releases`), unless it is here
/// already: downloads the asset [`choose_asset`] picks, checks its digest, unpacks it, tries it (with `try_model`,
/// a tiny GGUF, if given), and only then lists it. `http` may follow redirects or not (they are followed here).
pub async fn get<F: FnMut(GetProgress)>(
    http: &reqwest::Client,
    data_dir: &Path,
    releases: &str,
    want: Want,
    try_model: Option<&Path>,
    mut on_progress: F,
) -> Result<RuntimeBuild, ErrorPayload> {
    if let Some(tag) = &want.release {
        check_tag(tag)?;
    }
    let base = releases.trim_end_matches('/');
    let url = want.release.as_ref().map_or_else(|| format!("{base}/latest"), |tag| format!("{base}/tags/{tag}"));
    let release = fetch_release(http, &url).await?;
    let tag = &release.tag_name;
    check_tag(tag)?;
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    let Some((asset, backend)) = choose_asset(&release.assets, os, arch, &want.gpu_vendors, want.backend.as_deref())
    else {
        let offered: Vec<&str> = release.assets.iter().map(|a| a.name.as_str()).collect();
        let with = want.backend.as_ref().map_or(String::new(), |b| format!(" with the {b} backend"));
        return Err(err(
            ErrorCode::NotFound,
            format!(
                "llama.cpp release {tag} has no build for {os}/{arch}{with} (it offers: {}); {ADVICE}",
                if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") }
            ),
        ));
    };
    let name = format!("{tag}-{backend}");
    if !valid_name(&asset.name) {
        return Err(err(ErrorCode::InvalidInput, format!("release {tag} names an asset \"{}\"", asset.name)));
    }
    let dir = builds_dir(data_dir);
    let lock_path = data_dir.join("runtimes").join("llama.cpp.lock");
    let _lock = crate::cache::lock::lock_at(&lock_path, || false).await.map_err(|e| io_err("lock", &lock_path, e))?;
    sweep(&dir);
    let final_dir = dir.join(&name);
    if let Some(record) = read_record(&final_dir) {
        tracing::info!(build = %name, "llama.cpp build already here");
        return Ok(probe(managed_build(name, &final_dir, record)).await);
    }
    let expected = asset
        .digest
        .as_deref()
        .and_then(|d| d.strip_prefix("sha256:"))
        .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            err(
                ErrorCode::InvalidInput,
                format!("{} of llama.cpp release {tag} has no sha256 digest, so it cannot be verified and was not downloaded; {ADVICE}", asset.name),
            )
        })?;
    let partial = dir.join(format!(".partial-{name}"));
    let made = make(http, asset, &expected, &partial, try_model, &mut on_progress).await;
    let placed = made.and_then(|program| {
        let record = Record {
            release: tag.clone(),
            asset: asset.name.clone(),
            sha256: expected,
            backend: backend.clone(),
            program: program.to_string_lossy().into_owned(),
            got_at: crate::format::now_unix(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("a record serialises");
        let build_json = partial.join("build.json");
        crate::disk::write_atomic(&build_json, &json, 0o644).map_err(|e| io_err("write", &build_json, e))?;
        match crate::disk::place_new(&partial, &final_dir).map_err(|e| io_err("place", &final_dir, e))? {
            true => Ok(record),
            false => Err(err(ErrorCode::Conflict, format!("{} appeared while it was got", final_dir.display()))),
        }
    });
    let _ = fs::remove_dir_all(&partial);
    let record =
        placed.inspect_err(|e| tracing::warn!(build = %name, error = %e.message, "llama.cpp build not got"))?;
    tracing::info!(build = %name, asset = %asset.name, "got llama.cpp build");
    Ok(probe(managed_build(name, &final_dir, record)).await)
}

fn managed_build(name: String, dir: &Path, record: Record) -> Found {
    Found { name, path: dir.join(&record.program), origin: BuildOrigin::Managed, record: Some(record) }
}

/// Removes what an interrupted get left: folders without a `build.json` (called under the builds' lock).
fn sweep(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) && read_record(&entry.path()).is_none() {
            tracing::info!(folder = %entry.path().display(), "removing an unfinished llama.cpp build");
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A GET with the headers GitHub asks for, following redirects (an asset's goes to another host).
async fn send(http: &reqwest::Client, url: &str, accept: &str) -> Result<reqwest::Response, ErrorPayload> {
    let mut url = reqwest::Url::parse(url).map_err(|e| err(ErrorCode::InvalidInput, format!("\"{url}\": {e}")))?;
    for _ in 0..10 {
        let request = http.get(url.clone()).header("Accept", accept).header("User-Agent", USER_AGENT);
        let response = crate::http::send_idempotent(request).await.map_err(|e| offline(url.as_str(), &e))?;
        let next = response.headers().get("Location").and_then(|l| l.to_str().ok()).and_then(|l| url.join(l).ok());
        match next {
            Some(next) if response.status().is_redirection() => url = next,
            _ => return Ok(response),
        }
    }
    Err(err(ErrorCode::Network, format!("{url} redirects too often")))
}

fn offline(url: &str, e: &dyn std::fmt::Display) -> ErrorPayload {
    err(
        ErrorCode::Network,
        format!("could not reach {url} ({e}): you are offline or the release source is unreachable; set llamaCppReleases to a mirror, or set llamaServer to a llama-server you have"),
    )
}

async fn fetch_release(http: &reqwest::Client, url: &str) -> Result<Release, ErrorPayload> {
    let response = send(http, url, "application/vnd.github+json").await?;
    match response.status() {
        s if s == reqwest::StatusCode::NOT_FOUND => {
            return Err(err(ErrorCode::NotFound, format!("{url} has no such llama.cpp release: check the tag")))
        }
        s if !s.is_success() => return Err(offline(url, &format!("it answered {s}"))),
        _ => {}
    }
    let body = crate::http::read_capped(response, 8 << 20).await.map_err(|e| offline(url, &e))?;
    serde_json::from_slice(&body).map_err(|e| offline(url, &format!("its answer is not a release: {e}")))
}

/// Downloads, checks, unpacks and tries a build in `partial`: the program's path inside it.
async fn make<F: FnMut(GetProgress)>(
    http: &reqwest::Client,
    asset: &Asset,
    expected: &str,
    partial: &Path,
    try_model: Option<&Path>,
    on_progress: &mut F,
) -> Result<PathBuf, ErrorPayload> {
    fs::create_dir_all(partial).map_err(|e| io_err("create", partial, e))?;
    let archive = partial.join(&asset.name);
    download(http, asset, expected, &archive, on_progress).await?;
    on_progress(GetProgress { stage: "unpack".into(), bytes: 0, total: asset.size });
    let root = partial.to_path_buf();
    let unpacked = tokio::task::spawn_blocking(move || unpack(&archive, &root).and_then(|()| find_program(&root)));
    let program = unpacked.await.map_err(|e| err(ErrorCode::Internal, format!("unpacking failed: {e}")))??;
    on_progress(GetProgress { stage: "try".into(), bytes: 0, total: 0 });
    try_build(&partial.join(&program), partial, try_model).await.map_err(|why| {
        err(
            ErrorCode::Io,
            format!("the llama.cpp build {} did not pass its try, so it was not kept: {why}\nTry another backend, or {ADVICE}", asset.name),
        )
    })?;
    Ok(program)
}

async fn download<F: FnMut(GetProgress)>(
    http: &reqwest::Client,
    asset: &Asset,
    expected: &str,
    archive: &Path,
    on_progress: &mut F,
) -> Result<(), ErrorPayload> {
    let url = &asset.browser_download_url;
    let mut response = send(http, url, "application/octet-stream").await?;
    if !response.status().is_success() {
        return Err(offline(url, &format!("it answered {}", response.status())));
    }
    // What the release lists, and never more than any build takes (a listed size is the server's word).
    let limit = if asset.size > 0 { asset.size.min(MAX_BYTES) } else { MAX_BYTES };
    let mut file = tokio::fs::File::create(archive).await.map_err(|e| io_err("create", archive, e))?;
    let (mut hasher, mut bytes, mut told) = (Sha256::new(), 0u64, 0u64);
    while let Some(chunk) = response.chunk().await.map_err(|e| offline(url, &e))? {
        bytes += chunk.len() as u64;
        if bytes > limit {
            return Err(err(ErrorCode::ChecksumMismatch, format!("{url} sent more than the {limit} bytes listed")));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(|e| io_err("write", archive, e))?;
        if bytes - told >= 1 << 20 {
            told = bytes;
            on_progress(GetProgress { stage: "download".into(), bytes, total: asset.size });
        }
    }
    on_progress(GetProgress { stage: "download".into(), bytes, total: asset.size });
    file.flush().await.map_err(|e| io_err("write", archive, e))?;
    let got = crate::format::hex(&hasher.finalize());
    if got != expected {
        return Err(err(
            ErrorCode::ChecksumMismatch,
            format!("{} does not match its published digest (expected sha256 {expected}, got {got}); nothing of it was kept", asset.name),
        ));
    }
    Ok(())
}

/// `name` as a path of names only (no `..`, no root); `None` if it is anything else.
fn relative(name: &str) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    for part in Path::new(name).components() {
        match part {
            Component::Normal(p) => path.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!name.contains('\0')).then_some(path)
}

enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    Hardlink(String),
}

/// Unpacks the archive into `root`, refusing it whole (InvalidInput) at the first entry that would leave it.
fn unpack(archive: &Path, root: &Path) -> Result<(), ErrorPayload> {
    let bad = |e: &dyn std::fmt::Display| {
        err(ErrorCode::InvalidInput, format!("{} is not a readable archive: {e}", archive.display()))
    };
    let file = File::open(archive).map_err(|e| io_err("open", archive, e))?;
    // Gone by name while it is read, so that no entry can be it.
    fs::remove_file(archive).map_err(|e| io_err("remove", archive, e))?;
    let root = root.canonicalize().map_err(|e| io_err("open", root, e))?;
    let mut budget = MAX_BYTES;
    let too_many =
        || err(ErrorCode::InvalidInput, format!("{} holds more than {MAX_ENTRIES} entries", archive.display()));
    if archive.extension().is_some_and(|e| e == "zip") {
        let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(&e))?;
        if zip.len() > MAX_ENTRIES {
            return Err(too_many());
        }
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| bad(&e))?;
            let name = entry.name().map_err(|e| bad(&e))?.into_owned();
            let kind = if entry.is_dir() {
                Kind::Dir
            } else if entry.is_symlink() {
                let mut target = String::new();
                (&mut entry).take(4096).read_to_string(&mut target).map_err(|e| bad(&e))?;
                Kind::Symlink(target.into())
            } else {
                Kind::File
            };
            let mode = entry.unix_mode();
            place(&root, &name, kind, mode, &mut entry, &mut budget)?;
        }
        return Ok(());
    }
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    for (n, entry) in tar.entries().map_err(|e| bad(&e))?.enumerate() {
        if n >= MAX_ENTRIES {
            return Err(too_many());
        }
        let mut entry = entry.map_err(|e| bad(&e))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link = || entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
        let kind = match entry.header().entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Symlink => Kind::Symlink(link().into()),
            tar::EntryType::Link => Kind::Hardlink(link()),
            other => {
                tracing::debug!(entry = %name, kind = ?other, "skipping an archive entry");
                continue;
            }
        };
        let mode = entry.header().mode().ok();
        place(&root, &name, kind, mode, &mut entry, &mut budget)?;
    }
    Ok(())
}

/// Writes one entry under `root` (canonical), never outside it: its path is names only below a real folder inside,
/// a symbolic link's target only climbs (`..`) at its start and no higher than `root`.
fn place(
    root: &Path,
    name: &str,
    kind: Kind,
    mode: Option<u32>,
    data: &mut dyn Read,
    budget: &mut u64,
) -> Result<(), ErrorPayload> {
    let refuse = |why: &str| {
        err(ErrorCode::InvalidInput, format!("the archive's entry \"{name}\" {why}, so the archive was refused"))
    };
    let rel = relative(name).ok_or_else(|| refuse("leaves the build's folder"))?;
    let Some(parent) = rel.parent() else { return Ok(()) };
    let path = root.join(&rel);
    let fail = |e: io::Error| io_err("write", &path, e);
    fs::create_dir_all(root.join(parent)).map_err(fail)?;
    let real_parent = root.join(parent).canonicalize().map_err(fail)?;
    let depth = real_parent.strip_prefix(root).map_err(|_| refuse("leaves the build's folder through a link"))?;
    let _ = fs::remove_file(&path);
    match kind {
        Kind::Dir => fs::create_dir_all(&path).map_err(fail)?,
        Kind::File => {
            let mut out = OpenOptions::new().write(true).create_new(true).open(&path).map_err(fail)?;
            let n = io::copy(&mut data.take(*budget + 1), &mut out).map_err(fail)?;
            out.sync_all().map_err(fail)?;
            *budget = budget.checked_sub(n).ok_or_else(|| refuse("unpacks to more than 16 GiB"))?;
        }
        Kind::Symlink(target) => {
            let parts: Vec<Component> = target.components().collect();
            let climbs = parts.iter().take_while(|c| matches!(c, Component::ParentDir)).count();
            let rest_ok = parts[climbs..].iter().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            if !rest_ok || climbs > depth.components().count() {
                return Err(refuse(&format!("links to {} outside the build's folder", target.display())));
            }
            symlink(&target, &path).map_err(fail)?;
        }
        Kind::Hardlink(target) => {
            let source = relative(&target).map(|t| root.join(t)).and_then(|s| s.canonicalize().ok());
            let source = source.filter(|s| s.starts_with(root)).ok_or_else(|| refuse(&format!("links to {target}")))?;
            fs::hard_link(source, &path).map_err(fail)?;
        }
    }
    if let Some(mode) = mode.filter(|_| !path.is_symlink()) {
        // Nothing writable by others, whatever the archive says.
        let mode = if path.is_dir() { mode & 0o755 | 0o700 } else { mode & 0o755 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(fail)?;
    }
    Ok(())
}

/// The shallowest `llama-server` under `root` (release zips put it in `build/bin/`), made executable.
fn find_program(root: &Path) -> Result<PathBuf, ErrorPayload> {
    let mut folders = std::collections::VecDeque::from([PathBuf::new()]);
    while let Some(folder) = folders.pop_front() {
        let mut entries: Vec<_> = fs::read_dir(root.join(&folder)).into_iter().flatten().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = folder.join(entry.file_name());
            match entry.file_type() {
                Ok(t) if t.is_dir() => folders.push_back(rel),
                _ if entry.file_name() == "llama-server" && root.join(&rel).is_file() => {
                    let path = root.join(&rel);
                    let mode = fs::metadata(&path).map_err(|e| io_err("read", &path, e))?.permissions().mode();
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode | 0o111))
                        .map_err(|e| io_err("make executable", &path, e))?;
                    return Ok(rel);
                }
                _ => {}
            }
        }
    }
    Err(err(ErrorCode::NotFound, "the release archive has no llama-server in it; nothing of it was kept"))
}

/// `--version` must succeed; with a model, the server must answer `/health` within 60 s.
async fn try_build(program: &Path, partial: &Path, try_model: Option<&Path>) -> Result<(), String> {
    run_briefly(program, "--version").await?;
    let Some(model) = try_model else { return Ok(()) };
    let port =
        std::net::TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let log_path = partial.join(".try.log");
    let log = File::create(&log_path).map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(program);
    command.arg("--model").arg(model).args(["--host", "127.0.0.1", "--port", &port.to_string()]);
    command.args(["--ctx-size", "256", "-ngl", "0"]).stdin(Stdio::null()).kill_on_drop(true);
    command.stdout(log.try_clone().map_err(|e| e.to_string())?).stderr(log);
    let mut child = spawn(&mut command).await.map_err(|e| format!("{} could not start: {e}", program.display()))?;
    let client =
        reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build().map_err(|e| e.to_string())?;
    let (health, deadline) = (format!("http://127.0.0.1:{port}/health"), Instant::now() + TRY_TIMEOUT);
    let outcome = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("it ended ({status}) before it answered"));
        }
        if client.get(&health).send().await.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(format!("it did not answer {health} in {} s", TRY_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = child.kill().await;
    let lines = fs::read_to_string(&log_path).map(|t| last_lines(&t, 12)).unwrap_or_default();
    let _ = fs::remove_file(&log_path);
    outcome.map_err(|why| format!("llama-server --model {}: {why}; its last lines:\n{lines}", model.display()))
}

/// Removes the managed build named `name` (its folder name): the bytes freed.
pub fn remove(data_dir: &Path, name: &str) -> Result<u64, ErrorPayload> {
    if !valid_name(name) {
        return Err(err(
            ErrorCode::InvalidInput,
            format!("\"{name}\" is not the name of a llama.cpp build (like b6000-cpu)"),
        ));
    }
    let dir = builds_dir(data_dir).join(name);
    if read_record(&dir).is_none() {
        return Err(err(ErrorCode::NotFound, format!("no llama.cpp build of this app is named {name}")));
    }
    let freed = size_of(&dir);
    fs::remove_dir_all(&dir).map_err(|e| io_err("remove", &dir, e))?;
    tracing::info!(build = %name, freed, "removed llama.cpp build");
    Ok(freed)
}

fn size_of(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path).into_iter().flatten().flatten().map(|e| size_of(&e.path())).sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets(names: &[&str]) -> Vec<Asset> {
        let asset =
            |n: &&str| Asset { name: n.to_string(), browser_download_url: String::new(), size: 1, digest: None };
        names.iter().map(asset).collect()
    }

    const B6000: &[&str] = &[
        "cudart-llama-bin-win-cuda-12.4-x64.zip",
        "cudart-llama-bin-win-cuda-13.1-x64.zip",
        "llama-b6000-bin-macos-arm64.zip",
        "llama-b6000-bin-macos-x64.zip",
        "llama-b6000-bin-ubuntu-cuda-12.4-x64.tar.gz",
        "llama-b6000-bin-ubuntu-cuda-13.1-x64.tar.gz",
        "llama-b6000-bin-ubuntu-s390x.zip",
        "llama-b6000-bin-ubuntu-vulkan-x64.zip",
        "llama-b6000-bin-ubuntu-x64.zip",
        "llama-b6000-bin-ubuntu-x64.tar.gz",
        "llama-b6000-bin-ubuntu-arm64.zip",
        "llama-b6000-bin-win-cpu-arm64.zip",
        "llama-b6000-bin-win-cpu-x64.zip",
        "llama-b6000-bin-win-cuda-12.4-x64.zip",
        "llama-b6000-bin-win-hip-radeon-x64.zip",
        "llama-b6000-bin-win-opencl-adreno-arm64.zip",
        "llama-b6000-bin-win-sycl-x64.zip",
        "llama-b6000-bin-win-vulkan-x64.zip",
        "llama-b6000-xcframework.zip",
        "llama-b6000-xcframework.tar.gz",
    ];

    fn chosen(
        list: &[&str],
        os: &str,
        arch: &str,
        vendors: &[&str],
        backend: Option<&str>,
    ) -> Option<(String, String)> {
        let (list, vendors) = (assets(list), vendors.iter().map(|v| v.to_string()).collect::<Vec<_>>());
        choose_asset(&list, os, arch, &vendors, backend).map(|(a, b)| (a.name.clone(), b))
    }

    #[test]
    fn the_asset_follows_os_arch_and_gpu_and_noise_never_matches() {
        let pick = |os, arch, vendors: &[&str], backend| chosen(B6000, os, arch, vendors, backend);
        let is = |name: &str, backend: &str| Some((name.to_string(), backend.to_string()));
        assert_eq!(pick("linux", "x86_64", &[], None), is("llama-b6000-bin-ubuntu-x64.tar.gz", "cpu"));
        assert_eq!(
            pick("linux", "x86_64", &["NVIDIA"], None),
            is("llama-b6000-bin-ubuntu-cuda-12.4-x64.tar.gz", "cuda")
        );
        // No ROCm build for Linux here: Vulkan serves an AMD GPU.
        assert_eq!(pick("linux", "x86_64", &["AMD"], None), is("llama-b6000-bin-ubuntu-vulkan-x64.zip", "vulkan"));
        assert_eq!(pick("linux", "x86_64", &["Intel"], None), is("llama-b6000-bin-ubuntu-x64.tar.gz", "cpu"));
        assert_eq!(
            pick("linux", "x86_64", &["NVIDIA"], Some("vulkan")),
            is("llama-b6000-bin-ubuntu-vulkan-x64.zip", "vulkan")
        );
        assert_eq!(pick("linux", "x86_64", &[], Some("rocm")), None);
        assert_eq!(pick("linux", "aarch64", &["NVIDIA"], None), is("llama-b6000-bin-ubuntu-arm64.zip", "cpu"));
        assert_eq!(pick("macos", "aarch64", &[], None), is("llama-b6000-bin-macos-arm64.zip", "metal"));
        assert_eq!(pick("macos", "x86_64", &[], None), is("llama-b6000-bin-macos-x64.zip", "cpu"));
        assert_eq!(pick("windows", "x86_64", &["AMD"], None), is("llama-b6000-bin-win-hip-radeon-x64.zip", "rocm"));
        assert_eq!(pick("freebsd", "x86_64", &[], None), None);
        // Only noise: nothing, whatever the machine.
        let noise = &[
            "cudart-llama-bin-win-cuda-12.4-x64.zip",
            "llama-b6000-xcframework.zip",
            "llama-b6000-bin-win-sycl-x64.zip",
        ];
        for (os, arch) in [("linux", "x86_64"), ("macos", "aarch64"), ("windows", "x86_64")] {
            assert_eq!(chosen(noise, os, arch, &["NVIDIA"], None), None, "{os}/{arch}");
        }
    }

    #[test]
    fn version_devices_and_backend_are_read_from_the_output() {
        assert_eq!(parse_version("version: 6543 (a1b2c3d)\nbuilt with cc"), Some("6543 (a1b2c3d)".into()));
        let ours = "version: 0.6.0-dev (build 0, commit unknown)\nbuilt with GNU 12.2.0 for Linux x86_64\n";
        assert_eq!(parse_version(ours).as_deref(), Some("0.6.0-dev (build 0, commit unknown)"));
        assert_eq!(parse_version("nothing"), None);
        assert!(parse_devices("Available devices:\n  (none)\n").is_empty());
        let cuda = "ggml_cuda_init: found 1 CUDA devices:\nAvailable devices:\n  CUDA0: NVIDIA H100 (81000 MiB, 80000 MiB free)\n";
        assert_eq!(parse_devices(cuda), vec!["CUDA0: NVIDIA H100 (81000 MiB, 80000 MiB free)"]);
        assert_eq!(infer_backend(cuda), "cuda");
        assert_eq!(infer_backend("Available devices:\n  Vulkan0: AMD Radeon\n"), "vulkan");
        assert_eq!(infer_backend("ggml_cuda_init: found 1 ROCm devices\n  ROCm0: gfx1100"), "rocm");
        assert_eq!(infer_backend("Available devices:\n  (none)\n"), "cpu");
    }

    #[test]
    fn names_from_a_server_are_checked_before_they_become_paths() {
        for good in ["b6000", "b6000-cuda", "v1.2_3"] {
            assert!(valid_name(good) && check_tag(good).is_ok(), "{good}");
        }
        for bad in ["", "..", ".partial-x", "../x", "a/b", "a b", "b\0", &"x".repeat(65)] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
        assert_eq!(relative("build/./bin/llama-server"), Some(PathBuf::from("build/bin/llama-server")));
        assert_eq!(relative("../evil"), None);
        assert_eq!(relative("/etc/passwd"), None);
        assert_eq!(relative("a/../../b"), None);
    }
}
