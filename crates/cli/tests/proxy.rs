//! Every download path through a real HTTP proxy on loopback (Debian's tinyproxy), with and without basic auth:
//! hub metadata, the CDN redirect, the Xet CAS, a direct URL; the proxy's refusals (a wrong password, none, no
//! proxy listening) named as the proxy's, with nothing partial left; `NO_PROXY`; the `proxy` setting with its
//! password kept out of the settings file; the hub token only ever to the hub.

use fake_hub::{noise, FakeHub, Host, HubFile};
use serde_json::Value;
use std::path::Path;

mod common;
use common::{run, Tinyproxy};

const USER: (&str, &str) = ("alice", "s3cret");
const TOKEN: &str = "hf_only_for_the_hub";

fn mm(hub: &FakeHub, home: &Path) -> std::process::Command {
    let mut cmd = common::mm(&home.join("cache"), home);
    cmd.env("HF_ENDPOINT", hub.endpoint()).env("HF_TOKEN", TOKEN);
    cmd
}

/// The `done` event of `mm download --json`, or the failure's exit code and what it said.
async fn download(cmd: std::process::Command) -> Result<Value, (i32, String)> {
    let out = run(cmd).await;
    if !out.status.success() {
        // `--json` says a failure on stdout, as `{"error": {"code", "message"}}`; text mode on stderr.
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        return Err((out.status.code().unwrap_or(-1), said));
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Ok(serde_json::from_str(text.lines().last().unwrap()).unwrap())
}

async fn repos(hub: &FakeHub) -> (Vec<HubFile>, Vec<HubFile>) {
    let plain = vec![
        HubFile::new("config.json", br#"{"model_type":"llama"}"#.to_vec(), false),
        HubFile::new("model.safetensors", noise(600_000, 3), true),
    ];
    let xet = vec![
        HubFile::new("config.json", br#"{"model_type":"llama"}"#.to_vec(), false),
        HubFile::new("weights.safetensors", noise(900_000, 4), true),
    ];
    hub.add_repo("acme/plain", plain.clone());
    hub.add_xet_repo("acme/xet", xet.clone()).await;
    (plain, xet)
}

fn nothing_visible(home: &Path, repo: &str) {
    let dir = home.join("cache").join(format!("models--{}", repo.replace('/', "--")));
    let snapshots: Vec<_> = std::fs::read_dir(dir.join("snapshots")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(snapshots.is_empty(), "a refused download left a snapshot: {snapshots:?}");
}

/// What reached the fake hub and its CDN came through the proxy, with no proxy credentials and the token only on
/// the hub's own requests.
fn all_through_the_proxy(hub: &FakeHub) {
    let requests = hub.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert!(r.via.as_deref().is_some_and(|v| v.contains("tinyproxy")), "not through the proxy: {r:?}");
        assert_eq!(r.proxy_authorization, None, "the proxy's credentials went past it: {r:?}");
        match r.host {
            Host::Hub => assert_eq!(r.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str())),
            Host::Cdn => assert_eq!(r.authorization, None, "the token left the hub: {r:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_go_through_an_authenticated_proxy_and_its_refusals_name_it() {
    let hub = FakeHub::start().await;
    let (plain, xet) = repos(&hub).await;
    let proxy = Tinyproxy::start(Some(USER));
    let home = tempfile::tempdir().unwrap();

    // A wrong password (tinyproxy answers it with its own 401) and none at all (407): the proxy is named, never
    // the repo said to be missing; nothing is left visible; the password is not repeated.
    for (given, status) in [(Some(("alice", "wrong")), "401"), (None, "407")] {
        let mut cmd = mm(&hub, home.path());
        cmd.env("HTTP_PROXY", proxy.url(given)).args(["download", "acme/plain", "--json"]);
        let (code, stderr) = download(cmd).await.unwrap_err();
        assert_eq!(code, 4, "an auth failure's exit code: {stderr}");
        let named = format!("the proxy {} refused the request", proxy.url(None));
        assert!(stderr.contains(&named) && stderr.contains(&format!("answered {status} itself")), "{stderr}");
        assert!(!stderr.contains("not found") && !stderr.contains("wrong"), "{stderr}");
        nothing_visible(home.path(), "acme/plain");
    }
    assert!(hub.requests().is_empty(), "the proxy refused them all before the hub");

    // With the right one: the hub's API and the CDN redirect, and the Xet CAS.
    for (repo, files) in [("acme/plain", &plain), ("acme/xet", &xet)] {
        let mut cmd = mm(&hub, home.path());
        cmd.env("HTTP_PROXY", proxy.url(Some(USER))).args(["download", repo, "--json"]);
        let done = download(cmd).await.unwrap_or_else(|(_, e)| panic!("{e}"));
        assert_eq!(done["progress"]["state"], "completed", "{done}");
        if repo == "acme/xet" {
            assert_eq!(done["progress"]["transport"], "Xet; HTTP", "the weights over Xet through the proxy");
        }
        let snapshot = Path::new(done["progress"]["snapshotPath"].as_str().unwrap_or_default()).to_path_buf();
        for file in files.iter() {
            let path = home.path().join("cache").join(format!("models--{}", repo.replace('/', "--")));
            let found = fake_hub::walk(&path).into_iter().find(|p| p.ends_with(&file.path) && p.is_file());
            let found = found.unwrap_or_else(|| panic!("{} of {repo} is missing ({})", file.path, snapshot.display()));
            assert_eq!(std::fs::read(found).unwrap(), *file.content);
        }
    }
    all_through_the_proxy(&hub);
    let forwarded = proxy.forwarded();
    let cdn = hub.cdn_base();
    assert!(forwarded.iter().any(|r| r.contains("/api/models/acme/plain")), "{forwarded:?}");
    assert!(forwarded.iter().any(|r| r.contains(&cdn)), "the CDN redirect through the proxy: {forwarded:?}");
    assert!(forwarded.iter().any(|r| r.contains("/reconstructions/")), "the Xet CAS through the proxy: {forwarded:?}");

    // A direct URL goes through it too, and no token goes with it.
    hub.clear_requests();
    let sha = plain[1].sha256.clone();
    let url = format!("{}/{sha}?file=model.safetensors", hub.cdn_base());
    let mut cmd = mm(&hub, home.path());
    cmd.env("HTTP_PROXY", proxy.url(Some(USER))).args(["download", &url, "--sha256", &sha, "--name", "m.safetensors"]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    all_through_the_proxy(&hub);
}

/// An open proxy named by `ALL_PROXY` carries everything, Xet included. No proxy listening: named as the proxy
/// that could not be reached (after the retries any network failure gets); NO_PROXY's hosts go around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_proxy_carries_everything_a_dead_proxy_is_named_and_no_proxy_hosts_go_around_it() {
    let hub = FakeHub::start().await;
    repos(&hub).await;
    // An open proxy (no auth), named by ALL_PROXY alone.
    let open = Tinyproxy::start(None);
    let home = tempfile::tempdir().unwrap();
    let mut cmd = mm(&hub, home.path());
    cmd.env("ALL_PROXY", open.url(None)).args(["download", "acme/xet", "--json"]);
    let done = download(cmd).await.unwrap_or_else(|(_, e)| panic!("ALL_PROXY: {e}"));
    assert_eq!(done["progress"]["transport"], "Xet; HTTP");
    all_through_the_proxy(&hub);
    assert!(open.forwarded().iter().any(|r| r.contains("/reconstructions/")), "{:?}", open.forwarded());

    let closed = common::free_port();
    let fresh = tempfile::tempdir().unwrap();
    let mut cmd = mm(&hub, fresh.path());
    cmd.env("HTTP_PROXY", format!("http://127.0.0.1:{closed}")).env("HF_HUB_DOWNLOAD_TIMEOUT", "2");
    cmd.args(["download", "acme/plain"]);
    let (code, stderr) = download(cmd).await.unwrap_err();
    assert_eq!(code, 5, "a network failure's exit code: {stderr}");
    assert!(stderr.contains(&format!("through the proxy http://127.0.0.1:{closed}")), "{stderr}");
    hub.clear_requests();
    let mut cmd = mm(&hub, fresh.path());
    cmd.env("HTTP_PROXY", format!("http://127.0.0.1:{closed}")).env("NO_PROXY", "127.0.0.1,localhost");
    cmd.args(["download", "acme/plain", "--json"]);
    download(cmd).await.unwrap_or_else(|(_, e)| panic!("NO_PROXY: {e}"));
    assert!(hub.requests().iter().all(|r| r.via.is_none()), "NO_PROXY's hosts are reached directly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_setting_keeps_its_password_apart_and_carries_xet_files_over_http() {
    let hub = FakeHub::start().await;
    let (_, xet) = repos(&hub).await;
    let proxy = Tinyproxy::start(Some(USER));
    let home = tempfile::tempdir().unwrap();
    let config = |args: &[&str]| {
        let mut cmd = mm(&hub, home.path());
        cmd.arg("config").args(args);
        cmd
    };
    let out = run(config(&["set", "proxy", &proxy.url(Some(USER))])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8(run(config(&["get", "proxy"])).await.stdout).unwrap();
    assert_eq!(shown.trim(), proxy.url(None), "the address, without its password");
    let data = home.path().join(".mm-data/dev.model-manager.app");
    let settings = std::fs::read_to_string(data.join("settings.json")).unwrap();
    assert!(settings.contains(&proxy.url(None)) && !settings.contains("s3cret"), "{settings}");
    let credentials = data.join("proxy.credentials");
    assert_eq!(std::fs::read_to_string(&credentials).unwrap(), format!("{}\nalice:s3cret", proxy.url(None)));
    // Another proxy named by the environment for one process gets none of them, and the file's are not shown.
    let mut other = config(&["get", "proxy"]);
    other.env("MM_PROXY", "http://bob:hunter2@127.0.0.1:9");
    let shown = String::from_utf8(run(other).await.stdout).unwrap();
    assert_eq!(shown.trim(), "http://127.0.0.1:9", "an override's password is never shown");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&credentials).unwrap().permissions().mode() & 0o777, 0o600);

    // The window's form sends the address back as it shows it: the credentials stay.
    let out = run(config(&["set", "proxy", &proxy.url(None)])).await;
    assert!(out.status.success());
    assert!(credentials.exists(), "the same address again keeps its credentials");

    // No proxy in the environment: the setting carries everything, the Xet engine (which reads the environment
    // alone) stands aside and the hub's HTTP answers instead.
    let mut cmd = mm(&hub, home.path());
    cmd.args(["download", "acme/xet", "--json"]);
    let done = download(cmd).await.unwrap_or_else(|(_, e)| panic!("{e}"));
    assert_eq!(done["progress"]["state"], "completed");
    assert_eq!(done["progress"]["transport"], "HTTP", "{done}");
    assert_eq!(done["progress"]["bytesDone"], xet.iter().map(|f| f.content.len()).sum::<usize>());
    all_through_the_proxy(&hub);

    let out = run(config(&["set", "proxy", ""])).await;
    assert!(out.status.success());
    assert!(!credentials.exists(), "clearing the proxy forgets its credentials");
    for (address, kept) in [(proxy.url(Some(USER)), true), ("http://127.0.0.1:9".to_string(), false)] {
        assert!(run(config(&["set", "proxy", &address])).await.status.success());
        assert_eq!(credentials.exists(), kept, "another address without credentials drops the old ones");
    }
}

/// llama.cpp's releases (`mm runtime get`) come through the proxy too: the release list and the archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_comes_through_the_proxy() {
    let hub = FakeHub::start().await;
    hub.add_llama_cpp_release("b100", &std::fs::read(common::llama_server()).unwrap(), None);
    let proxy = Tinyproxy::start(Some(USER));
    let home = tempfile::tempdir().unwrap();
    let mut set = mm(&hub, home.path());
    set.args(["config", "set", "llamaCppReleases", &hub.releases_url()]);
    assert!(run(set).await.status.success());
    let mut get = mm(&hub, home.path());
    get.env("HTTP_PROXY", proxy.url(Some(USER))).env("PATH", "/usr/bin:/bin").args(["runtime", "get", "--json"]);
    let out = run(get).await;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["name"], "b100-cpu", "{got}");
    let requests = hub.requests();
    assert!(requests.len() >= 2, "the list and the archive: {requests:?}");
    assert!(
        requests.iter().all(|r| r.via.is_some() && r.authorization.is_none()),
        "through the proxy, no token: {requests:?}"
    );
}
