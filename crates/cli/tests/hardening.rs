//! `mm serve` and its mirror as an attacker meets them, each over a real `mm serve` process and the fake hub:
//! another local user or a token holder changing what the server runs, a mirror client reaching private or gated
//! repos, a planted link in a shared cache, a web page in the user's browser, a header reader, a resumed download
//! after a bad upstream answer.

use fake_hub::{noise, FakeHub, Fault, Host, HubFile};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod common;

/// A running `mm serve` over `home`'s cache, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(hub: &FakeHub, home: &Path, args: &[&str]) -> Server {
        Server::start_with(hub, home, args, &[])
    }

    fn start_with(hub: &FakeHub, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = common::mm(&home.join("cache"), home);
        cmd.envs(env.iter().copied());
        cmd.env("HF_ENDPOINT", hub.endpoint()).args(["serve", "--json", "--listen", "127.0.0.1:0"]).args(args);
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let ready: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
        Server { child, url: ready["listening"].as_str().unwrap().to_string() }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The app's data folder of a test home (where `mm serve` keeps its tokens).
fn data_dir(home: &Path) -> PathBuf {
    home.join(".mm-data/dev.model-manager.app")
}

async fn ok(cmd: Command) -> std::process::Output {
    let out = common::run(cmd).await;
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn files() -> Vec<HubFile> {
    vec![
        HubFile::new("config.json", br#"{"model_type":"llama"}"#.to_vec(), false),
        HubFile::new("model.safetensors", noise(3_000_000, 31), true),
    ]
}

/// `mm download` of `repo` into `home`'s cache, with the hub token `token`, only the files matching `include`.
async fn download(hub: &FakeHub, home: &Path, repo: &str, token: Option<&str>, include: Option<&str>) {
    let mut cmd = common::mm(&home.join("cache"), home);
    cmd.env("HF_ENDPOINT", hub.endpoint()).args(["download", repo]);
    if let Some(token) = token {
        cmd.env("HF_TOKEN", token);
    }
    if let Some(include) = include {
        cmd.args(["--include", include]);
    }
    ok(cmd).await;
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_of_the_api_changes_what_the_server_runs_or_where_it_reads_and_sends() {
    let hub = FakeHub::start().await;
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(&hub, home.path(), &[]);
    let http = reqwest::Client::new();
    // A program of the client's choosing, which would run at the next load.
    let planted = home.path().join("planted.sh");
    let ran = home.path().join("it-ran");
    std::fs::write(&planted, format!("#!/bin/sh\ntouch {}\n", ran.display())).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&planted).unwrap().permissions(), 0o755);
    for patch in [
        json!({ "llamaServer": planted }),
        json!({ "cacheDir": "/tmp" }),
        json!({ "libraryFolders": ["/home"] }),
        json!({ "endpoint": "http://evil.example" }),
        json!({ "serveRequireToken": false }),
        // A port the app would open.
        json!({ "localServer": true }),
        json!({ "localServerPort": 80 }),
        // One refused key refuses the whole patch.
        json!({ "maxLoaded": 3, "llamaServer": planted }),
    ] {
        let answer = http.patch(server.at("/mm/v1/settings")).json(&patch).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 403, "{patch}");
        let err: Value = answer.json().await.unwrap();
        assert_eq!(err["code"], "permission");
        assert!(err["message"].as_str().unwrap().contains("on the machine itself"), "{err}");
    }
    let view: Value = http.get(server.at("/mm/v1/settings")).send().await.unwrap().json().await.unwrap();
    assert_eq!((view["llamaServer"].clone(), view["maxLoaded"].clone()), (Value::Null, json!(4)), "{view}");
    // What the API may change, it still changes.
    let answer = http.patch(server.at("/mm/v1/settings")).json(&json!({ "maxLoaded": 3 })).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    // And on the machine, `mm config set` changes what the API may not.
    let mut set = common::mm(&home.path().join("cache"), home.path());
    set.args(["config", "set", "llamaServer", planted.to_str().unwrap()]);
    ok(set).await;
    let mut get = common::mm(&home.path().join("cache"), home.path());
    get.args(["config", "get", "llamaServer"]);
    assert_eq!(String::from_utf8(ok(get).await.stdout).unwrap().trim(), planted.to_str().unwrap());
    assert!(!ran.exists(), "nothing ran the planted program");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_can_ask_for_the_token_and_the_mirror_token_opens_the_hub_protocol_only() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/tiny", files());
    let home = tempfile::tempdir().unwrap();
    download(&hub, home.path(), "acme/tiny", None, None).await;
    let http = reqwest::Client::new();

    let server = Server::start(&hub, home.path(), &["--require-token"]);
    let token = std::fs::read_to_string(data_dir(home.path()).join("serve-token")).unwrap();
    let mirror = std::fs::read_to_string(data_dir(home.path()).join("mirror-token")).unwrap();
    assert_ne!(token.trim(), mirror.trim());
    for file in ["serve-token", "mirror-token"] {
        let mode = std::fs::metadata(data_dir(home.path()).join(file)).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600, "{file}");
    }
    assert_eq!(status(http.get(server.at("/mm/v1/health"))).await, 401, "loopback needs the token now");
    assert_eq!(status(http.get(server.at("/api/models/acme/tiny"))).await, 401);
    assert_eq!(status(http.get(server.at("/mm/v1/health")).bearer_auth(token.trim())).await, 200);
    // The mirror's token: the Hub protocol, and nothing of the API.
    assert_eq!(status(http.get(server.at("/api/models/acme/tiny")).bearer_auth(mirror.trim())).await, 200);
    let resolve = server.at("/acme/tiny/resolve/main/config.json");
    assert_eq!(status(http.get(&resolve).bearer_auth(mirror.trim())).await, 200);
    assert_eq!(status(http.get(server.at("/mm/v1/models")).bearer_auth(mirror.trim())).await, 401);
    let patch = http.patch(server.at("/mm/v1/settings")).bearer_auth(mirror.trim()).json(&json!({ "maxLoaded": 1 }));
    assert_eq!(status(patch).await, 401);
    // mm on this machine reads the token from its file: no token handed around.
    let mut list = common::mm(&home.path().join("cache"), home.path());
    list.args(["--remote", &server.url, "list", "--json"]);
    let listed: Value = serde_json::from_slice(&ok(list).await.stdout).unwrap();
    assert_eq!(listed["models"][0]["id"], "acme/tiny", "{listed}");
    drop(server);

    // The same from the setting, on the machine only.
    let mut set = common::mm(&home.path().join("cache"), home.path());
    set.args(["config", "set", "serveRequireToken", "true"]);
    ok(set).await;
    let server = Server::start(&hub, home.path(), &[]);
    assert_eq!(status(http.get(server.at("/mm/v1/health"))).await, 401);
    assert_eq!(
        status(http.get(server.at("/mm/v1/health")).bearer_auth(token.trim())).await,
        200,
        "the same kept token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_mirror_keeps_private_and_unknown_repos_closed_even_by_commit() {
    let hub = FakeHub::start().await;
    let commit = hub.add_repo("acme/secret", files());
    hub.make_private("acme/secret", "hf_owner_token");
    hub.add_repo("acme/tiny", files());
    let home = tempfile::tempdir().unwrap();
    // The owner downloads the private repo with their hub token.
    download(&hub, home.path(), "acme/secret", Some("hf_owner_token"), None).await;
    download(&hub, home.path(), "acme/tiny", None, None).await;
    let token_file = home.path().join("token");
    std::fs::write(&token_file, "server-token-0123456789").unwrap();
    let server = Server::start(&hub, home.path(), &["--token-file", token_file.to_str().unwrap(), "--open-mirror"]);
    let http = reqwest::Client::new();
    let get = |path: String| http.get(server.at(&path));
    assert_eq!(status(get("/api/models/acme/tiny".into())).await, 200, "a public repo is open");
    for path in [
        "/api/models/acme/secret".to_string(),
        format!("/api/models/acme/secret/revision/{commit}"),
        format!("/api/models/acme/secret/revision/{}", &commit[..7]),
        format!("/acme/secret/resolve/{}/config.json", &commit[..7]),
        format!("/api/models/acme/secret/tree/{commit}"),
    ] {
        // Answered as a repo that does not exist: nothing tells a private repo from none.
        let answer = get(path.clone()).send().await.unwrap();
        let code = answer.headers()["x-error-code"].to_str().unwrap().to_string();
        let none = get("/api/models/acme/no-such-repo".into()).send().await.unwrap();
        assert_eq!((answer.status().as_u16(), code.as_str()), (none.status().as_u16(), "RepoNotFound"), "{path}");
        assert_ne!(answer.status().as_u16(), 200, "{path}");
    }
    let mirror = std::fs::read_to_string(data_dir(home.path()).join("mirror-token")).unwrap();
    let info: Value =
        get("/api/models/acme/secret".into()).bearer_auth(mirror.trim()).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["private"], true, "{info}");

    // A record an older version wrote (no `private`) is not known to be public.
    let record = home.path().join("cache/models--acme--tiny/.model-manager/info.json");
    let mut old: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(old["private"], false);
    old.as_object_mut().unwrap().remove("private");
    std::fs::write(&record, old.to_string()).unwrap();
    assert_eq!(status(get("/api/models/acme/tiny".into())).await, 404, "answered as a repo that is not there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_repo_takes_the_upstreams_restriction_and_no_gated_file_is_pulled_through_for_anyone() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/tiny", files());
    let home = tempfile::tempdir().unwrap();
    // Cached while public, only its config; the hub gates it afterwards.
    download(&hub, home.path(), "acme/tiny", None, Some("config.json")).await;
    hub.gate("acme/tiny", "hf_owner_token");
    let token_file = home.path().join("token");
    std::fs::write(&token_file, "server-token-0123456789").unwrap();
    // The server has its owner's hub token, which the hub accepts for the gated repo.
    let args = ["--token-file", token_file.to_str().unwrap(), "--open-mirror"];
    let server = Server::start_with(&hub, home.path(), &args, &[("HF_TOKEN", "hf_owner_token")]);
    let http = reqwest::Client::new();
    hub.clear_requests();
    assert_eq!(status(http.get(server.at("/acme/tiny/resolve/main/config.json"))).await, 200, "what is cached");
    let missing = http.get(server.at("/acme/tiny/resolve/main/model.safetensors")).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 401, "the upstream says gated: the token policy applies");
    assert_eq!(missing.headers()["x-error-code"], "GatedRepo");
    assert!(!hub.requests().iter().any(|r| r.host == Host::Cdn), "nothing pulled through: {:?}", hub.requests());
    assert!(!home.path().join("cache/models--acme--tiny/blobs").join(&files()[1].sha256).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_link_in_a_snapshot_or_the_blobs_is_never_served() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/tiny", files());
    let home = tempfile::tempdir().unwrap();
    download(&hub, home.path(), "acme/tiny", None, None).await;
    let secret = home.path().join("id_ed25519");
    std::fs::write(&secret, "-----BEGIN OPENSSH PRIVATE KEY-----").unwrap();
    let repo = home.path().join("cache/models--acme--tiny");
    let snapshot = std::fs::read_dir(repo.join("snapshots")).unwrap().next().unwrap().unwrap().path();
    std::os::unix::fs::symlink(&secret, snapshot.join("notes.txt")).unwrap();
    std::os::unix::fs::symlink("../../../../id_ed25519", snapshot.join("relative.txt")).unwrap();
    // A plain file in a snapshot (no blob, so no hash to serve it by: it would go out with `ETag: ""`).
    std::fs::write(snapshot.join("plain.txt"), "not a blob").unwrap();
    // And the blob of a listed file replaced by a link out.
    let config_blob = repo.join("blobs").join(fake_hub::git_blob_sha1(&files()[0].content));
    std::fs::remove_file(&config_blob).unwrap();
    std::os::unix::fs::symlink(&secret, &config_blob).unwrap();
    let server = Server::start(&hub, home.path(), &["--no-upstream"]);
    let http = reqwest::Client::new();
    for path in ["notes.txt", "relative.txt", "config.json", "plain.txt"] {
        let answer = http.get(server.at(&format!("/acme/tiny/resolve/main/{path}"))).send().await.unwrap();
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap();
        assert!(!body.contains("PRIVATE KEY"), "{path}: {body}");
        assert_eq!(status, 404, "{path}: {body}");
    }
    let tree: Value =
        http.get(server.at("/api/models/acme/tiny/tree/main")).send().await.unwrap().json().await.unwrap();
    let listed: Vec<&str> = tree.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(listed, ["model.safetensors"], "only what links into the repo's own blobs");
    // The library calls the links what they are.
    let mut du = common::mm(&home.path().join("cache"), home.path());
    du.args(["list", "--revisions", "--json"]);
    let report = String::from_utf8(ok(du).await.stdout).unwrap();
    assert!(report.contains("a link out of the repo's blobs"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_can_neither_rebind_a_name_nor_make_the_mirror_download() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/tiny", files());
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(&hub, home.path(), &[]);
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let http = reqwest::Client::new();
    let with_host = |host: String| http.get(server.at("/mm/v1/health")).header("host", host);
    for host in ["127.evil.example", "127.0.0.1.nip.io", "localhost.evil.example", "evil.example"] {
        assert_eq!(status(with_host(format!("{host}:{port}"))).await, 403, "{host}");
    }
    for host in ["localhost", "127.0.0.1", "127.0.0.2", "[::1]"] {
        assert_eq!(status(with_host(format!("{host}:{port}"))).await, 200, "{host}");
    }
    // An <img> of a resolve URL from another site: no Origin, but the browser says where it comes from.
    hub.clear_requests();
    let img = http
        .get(server.at("/acme/tiny/resolve/main/model.safetensors"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "no-cors")
        .header("sec-fetch-dest", "image");
    assert_eq!(status(img).await, 403);
    assert!(hub.requests().is_empty(), "the upstream was never asked: {:?}", hub.requests());
    drop(server);

    // An open mirror with a token: the page gets nothing fetched either, a program with the token does.
    let token_file = home.path().join("token");
    std::fs::write(&token_file, "server-token-0123456789").unwrap();
    let server = Server::start(&hub, home.path(), &["--token-file", token_file.to_str().unwrap(), "--open-mirror"]);
    let img = |token: Option<&str>| {
        let request = http
            .get(server.at("/acme/tiny/resolve/main/config.json"))
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "no-cors");
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    assert_eq!(status(img(None)).await, 403);
    assert!(!hub.requests().iter().any(|r| r.host == Host::Cdn || r.path.contains("resolve")), "{:?}", hub.requests());
    assert_eq!(status(img(Some("server-token-0123456789"))).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ranged_read_of_a_file_the_mirror_lacks_is_forwarded_not_fetched_whole() {
    let hub = FakeHub::start().await;
    let big = HubFile::new("model.safetensors", noise(8_000_000, 32), true);
    hub.add_repo("acme/big", vec![HubFile::new("config.json", b"{}".to_vec(), false), big.clone()]);
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(&hub, home.path(), &[]);
    let http = reqwest::Client::new();
    hub.clear_requests();
    // What huggingface_hub's safetensors metadata read asks: the first 8 bytes, then the header.
    let url = server.at("/acme/big/resolve/main/model.safetensors");
    let head = http.get(&url).header("range", "bytes=0-7").send().await.unwrap();
    assert_eq!(head.status().as_u16(), 206);
    assert_eq!(head.headers()["content-range"], "bytes 0-7/8000000");
    assert_eq!(head.bytes().await.unwrap().as_ref(), &big.content[..8]);
    let middle = http.get(&url).header("range", "bytes=4000000-4000099").send().await.unwrap();
    assert_eq!(middle.bytes().await.unwrap().as_ref(), &big.content[4_000_000..4_000_100]);
    let fetched: Vec<_> = hub.requests().into_iter().filter(|r| r.host == Host::Cdn).collect();
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    assert!(fetched.iter().all(|r| r.range.is_some() && r.sent <= 100), "ranges, not the file: {fetched:?}");
    let blobs = home.path().join("cache/models--acme--big/blobs");
    assert!(!blobs.join(&big.sha256).exists() && !blobs.join(format!("{}.incomplete", big.sha256)).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_after_a_bad_upstream_answer_is_refused_rather_than_spliced() {
    let hub = FakeHub::start().await;
    let big = HubFile::new("model.safetensors", noise(3_000_000, 33), true);
    hub.add_repo("acme/flaky", vec![big.clone()]);
    // One wrong byte near the start: the hash fails only at the end, after most bytes were sent.
    hub.fault("model.safetensors", Fault::Flip { offset: 1000 });
    // Slow enough that bytes reach the client before the hash is known.
    hub.throttle(Some(3_000_000));
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(&hub, home.path(), &[]);
    let http = reqwest::Client::new();
    let url = server.at("/acme/flaky/resolve/main/model.safetensors");
    let mut answer = http.get(&url).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let mut got = Vec::new();
    let ended = loop {
        match answer.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(ended.is_err(), "the failed answer ends in an error, not a clean close ({} bytes)", got.len());
    assert!(got.len() < big.content.len());
    hub.clear_faults();
    hub.throttle(None);
    // curl -C -, wget -c, aria2c: a resume from what it kept.
    let resume = http.get(&url).header("range", format!("bytes={}-", got.len().max(1))).send().await.unwrap();
    assert_eq!(resume.status().as_u16(), 409, "refused: the kept bytes may be wrong");
    assert_eq!(resume.headers()["x-error-code"], "ResumeRefused");
    // From the start it is fetched again, whole and right.
    let whole = http.get(&url).send().await.unwrap();
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), big.content.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_slow_connections_do_not_stop_the_server_answering() {
    let hub = FakeHub::start().await;
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(&hub, home.path(), &[]);
    let address = server.url.trim_start_matches("http://").to_string();
    // Headers never finished, and a body promised and never sent.
    let mut held = common::half_sent(&address, 200, "GET /mm/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await;
    let body = "PATCH /mm/v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{";
    held.extend(common::half_sent(&address, 100, body).await);
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().unwrap();
    for _ in 0..3 {
        let answer =
            http.get(server.at("/mm/v1/health")).send().await.expect("mm serve answers beside 300 slow connections");
        assert_eq!(answer.status().as_u16(), 200);
    }
    // And the server cuts them off: headers have a deadline, and so has a body that stops arriving.
    for (i, stream) in held.iter_mut().enumerate() {
        assert!(closed_by_server(stream).await, "slow connection {i} was closed by the server");
    }
}

/// Waits (at most a minute) for the server to close `stream`; whether it did.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                // A 408 or 400 before the close is fine too.
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read).await.is_ok()
}

/// `mm` in `home` with `args`: its exit code and what it printed.
async fn mm_in(home: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = common::mm(&home.join("cache"), home);
    cmd.args(args);
    let out = common::run(cmd).await;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_delete_or_clean_up_loses_what_is_active_downloading_or_paused() {
    let hub = FakeHub::start().await;
    let big = HubFile::new("model.safetensors", noise(6_000_000, 34), true);
    hub.add_repo("acme/slow", vec![HubFile::new("config.json", b"{}".to_vec(), false), big.clone()]);
    let home = tempfile::tempdir().unwrap();

    // An active imported copy is not deleted from under active.json.
    let file = home.path().join("tiny.gguf");
    std::fs::write(&file, fake_hub::gguf_model("llama", 1, 4096, 1)).unwrap();
    assert_eq!(mm_in(home.path(), &["import", "--copy", file.to_str().unwrap()]).await.0, 0);
    assert_eq!(mm_in(home.path(), &["activate", "local/tiny.gguf"]).await.0, 0);
    let (code, said) = mm_in(home.path(), &["rm", "local/tiny.gguf"]).await;
    assert_eq!(code, 11, "conflict: {said}");
    assert!(said.contains("active text-generation model"), "{said}");
    let active: Value =
        serde_json::from_slice(&std::fs::read(data_dir(home.path()).join("active.json")).unwrap()).unwrap();
    let path = active["text-generation"]["path"].as_str().unwrap();
    assert!(Path::new(path).exists(), "the active file is still there: {active}");

    // A download running in another process (mm serve's queue) is not deleted under it.
    hub.throttle(Some(1_500_000));
    let server = Server::start(&hub, home.path(), &[]);
    let http = reqwest::Client::new();
    let started: Value = http
        .post(server.at("/mm/v1/downloads"))
        .json(&json!({ "repo": "acme/slow" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["id"].as_u64().unwrap();
    let partial = home.path().join("cache/models--acme--slow/blobs").join(format!("{}.incomplete", big.sha256));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0) {
        assert!(std::time::Instant::now() < deadline, "the download wrote nothing");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (code, said) = mm_in(home.path(), &["rm", "acme/slow"]).await;
    assert_eq!(code, 11, "conflict: {said}");
    assert!(said.contains("being downloaded"), "{said}");

    // Paused there, its partial file is not "reclaimable" here.
    let paused = http.post(server.at(&format!("/mm/v1/downloads/{id}/pause"))).send().await.unwrap();
    assert!(paused.status().is_success());
    let (code, said) = mm_in(home.path(), &["du", "--clean"]).await;
    assert_eq!(code, 0, "{said}");
    assert!(partial.exists(), "the paused download's bytes are kept: {said}");
    hub.throttle(None);
    let resumed = http.post(server.at(&format!("/mm/v1/downloads/{id}/resume"))).send().await.unwrap();
    assert!(resumed.status().is_success());
    let blob = home.path().join("cache/models--acme--slow/blobs").join(&big.sha256);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !blob.exists() {
        assert!(std::time::Instant::now() < deadline, "the resumed download did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read(&blob).unwrap(), *big.content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_asking_again_and_again_for_a_missing_file_asks_the_upstream_once() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/tiny", files());
    let home = tempfile::tempdir().unwrap();
    download(&hub, home.path(), "acme/tiny", None, None).await;
    let server = Server::start(&hub, home.path(), &[]);
    let http = reqwest::Client::new();
    hub.clear_requests();
    for _ in 0..5 {
        let answer = http.get(server.at("/acme/tiny/resolve/main/nothing.bin")).send().await.unwrap();
        assert_eq!(
            (answer.status().as_u16(), answer.headers()["x-error-code"].to_str().unwrap()),
            (404, "EntryNotFound")
        );
        let revision = http.get(server.at("/api/models/acme/tiny/revision/v9")).send().await.unwrap();
        assert_eq!(revision.headers()["x-error-code"], "RevisionNotFound");
    }
    let asked: Vec<_> = hub.requests().into_iter().filter(|r| r.path.starts_with("/api/models")).collect();
    assert_eq!(asked.len(), 2, "one listing of the commit, one of v9: {asked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_file_planted_as_a_link_is_never_written_through() {
    let hub = FakeHub::start().await;
    let big = HubFile::new("model.safetensors", noise(3_000_000, 35), true);
    hub.add_repo("acme/planted", vec![big.clone()]);
    let home = tempfile::tempdir().unwrap();
    // Another user of a shared cache plants the partial file as a link to one of ours.
    let victim = home.path().join(".bashrc");
    std::fs::write(&victim, "export PATH=$PATH\n").unwrap();
    let blobs = home.path().join("cache/models--acme--planted/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::os::unix::fs::symlink(&victim, blobs.join(format!("{}.incomplete", big.sha256))).unwrap();
    let mut cmd = common::mm(&home.path().join("cache"), home.path());
    cmd.env("HF_ENDPOINT", hub.endpoint()).args(["download", "acme/planted"]);
    let out = common::run(cmd).await;
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "export PATH=$PATH\n", "nothing written through the link");
    assert!(!blobs.join(&big.sha256).exists());
}
