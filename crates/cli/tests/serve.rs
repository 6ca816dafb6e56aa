//! `mm serve` as a program on another machine would use it: a real process, over HTTP, against the fake hub.
//! Start, join, follow on `/mm/v1/events`, cancel, conflict, not found, no space, auth refused, and a restart that
//! resumes an unfinished download.

use fake_hub::{noise, FakeHub, Host, HubFile};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;

/// A running `mm serve`, stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(hub: &FakeHub, home: &Path, args: &[&str]) -> Server {
        let mut cmd = common::mm(&home.join("cache"), home);
        cmd.env("HF_ENDPOINT", hub.endpoint()).args(["serve", "--json"]).args(args);
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let ready: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
        // An address for every interface is reached on loopback.
        let url = ready["listening"].as_str().unwrap().replace("0.0.0.0", "127.0.0.1");
        Server { child, url }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// SIGTERM, then the exit status.
    async fn stop(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "mm serve did not stop on SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One Server-Sent Event.
#[derive(Debug, Default, Clone)]
struct Sse {
    /// `{run}-{n}`.
    id: Option<String>,
    event: String,
    data: Value,
}

/// Reads a `text/event-stream` body event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(client: &reqwest::Client, url: &str, last_id: Option<&str>) -> Events {
        let mut request = client.get(url);
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events { response, buffer: String::new() }
    }

    /// The next event (comments and keep-alives skipped); `None` when the stream ends.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Sse::default();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data = serde_json::from_str(v.trim()).unwrap_or(Value::Null);
                    }
                }
                if !event.event.is_empty() {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.response.chunk())
                .await
                .expect("an event within 30 s")
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads until an event matches.
    async fn until(&mut self, what: &str, mut matches: impl FnMut(&Sse) -> bool) -> Sse {
        loop {
            let event = self.next().await.unwrap_or_else(|| panic!("the stream ended before {what}"));
            if matches(&event) {
                return event;
            }
        }
    }
}

async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_starts_joins_follows_and_cancels_downloads_with_clear_errors() {
    let hub = FakeHub::start().await;
    let home = tempfile::tempdir().unwrap();
    let big = HubFile::new("model.safetensors", noise(3_000_000, 7), true);
    hub.add_repo("acme/big", vec![HubFile::new("config.json", b"{}".to_vec(), false), big.clone()]);
    hub.add_repo("acme/tiny", vec![HubFile::new("model.gguf", fake_hub::gguf_model("llama", 2, 4096, 1), true)]);
    hub.add_repo("acme/huge", vec![HubFile::new("model.gguf", noise(10, 3), true).listed_size(1 << 60)]);
    hub.throttle(Some(500_000));
    let server = Server::start(&hub, home.path(), &["--listen", "127.0.0.1:0"]);
    let http = reqwest::Client::new();

    let (status, health) = json_of(http.get(server.at("/mm/v1/health")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let mut events = Events::open(&http, &server.at("/mm/v1/events"), None).await;

    // Start: 202 with the job; the same request again joins it (200, the same id).
    let request = json!({ "repo": "acme/big" });
    let (status, started) =
        json_of(http.post(server.at("/mm/v1/downloads")).json(&request).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["joined"], false);
    let id = started["id"].as_u64().unwrap();
    let (status, again) = json_of(http.post(server.at("/mm/v1/downloads")).json(&request).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!((again["id"].as_u64(), &again["joined"]), (Some(id), &json!(true)));

    // Followed live: progress of this job with bytes moving, each event numbered.
    let moving = events
        .until("progress with bytes", |e| {
            e.event == "download-progress" && e.data["id"] == id && e.data["bytesDone"].as_u64() > Some(0)
        })
        .await;
    assert!(moving.id.is_some(), "{moving:?}");
    let (status, one) = json_of(http.get(server.at(&format!("/mm/v1/downloads/{id}"))).send().await.unwrap()).await;
    assert_eq!((status, &one["repo"]), (StatusCode::OK, &json!("acme/big")));

    // Cancel: the job ends, the event says so, and a second cancel is a conflict.
    let (status, cancelled) =
        json_of(http.delete(server.at(&format!("/mm/v1/downloads/{id}"))).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    events.until("the cancelled lifecycle", |e| e.event == "model-lifecycle" && e.data["kind"] == "cancelled").await;
    let (status, err) = json_of(http.delete(server.at(&format!("/mm/v1/downloads/{id}"))).send().await.unwrap()).await;
    assert_eq!((status, &err["code"]), (StatusCode::CONFLICT, &json!("conflict")), "{err}");
    let partial = home.path().join("cache/models--acme--big/blobs").join(format!("{}.incomplete", big.sha256));
    assert!(!partial.exists(), "cancelling deleted the partial file");

    // Not found, no space, a malformed id, a body that is not JSON, an unknown endpoint: each its code and status.
    let cases = [
        (json!({ "repo": "acme/nothing" }), StatusCode::NOT_FOUND, "not-found"),
        (json!({ "repo": "acme/huge" }), StatusCode::INSUFFICIENT_STORAGE, "insufficient-space"),
        (json!({ "repo": "bad id" }), StatusCode::BAD_REQUEST, "invalid-input"),
        (json!({ "repository": 1 }), StatusCode::BAD_REQUEST, "invalid-input"),
    ];
    for (body, want, code) in cases {
        let (status, err) = json_of(http.post(server.at("/mm/v1/downloads")).json(&body).send().await.unwrap()).await;
        assert_eq!((status, err["code"].as_str()), (want, Some(code)), "{body}: {err}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    let huge = http.post(server.at("/mm/v1/downloads")).json(&json!({ "repo": "acme/huge" })).send().await.unwrap();
    assert!(json_of(huge).await.1["message"].as_str().unwrap().contains("free"), "the message names the problem");
    let (status, err) = json_of(http.get(server.at("/mm/v1/nothing")).send().await.unwrap()).await;
    assert_eq!((status, &err["code"]), (StatusCode::NOT_FOUND, &json!("not-found")));
    let big_body = "x".repeat(mm_server::MAX_BODY_BYTES + 1);
    let response = http.post(server.at("/mm/v1/downloads")).header("content-type", "application/json").body(big_body);
    assert!(response.send().await.unwrap().status().is_client_error(), "a body over the cap is refused");

    // A whole download, then the library, one model (its id as one encoded segment), activation, delete.
    hub.throttle(None);
    let tiny = json!({ "repo": "acme/tiny" });
    let (_, started) = json_of(http.post(server.at("/mm/v1/downloads")).json(&tiny).send().await.unwrap()).await;
    let tiny_id = started["id"].as_u64().unwrap();
    events
        .until("tiny completed", |e| {
            e.event == "model-lifecycle" && e.data["kind"] == "completed" && e.data["downloadId"] == tiny_id
        })
        .await;
    let (_, models) = json_of(http.get(server.at("/mm/v1/models?status=available")).send().await.unwrap()).await;
    assert_eq!(models.as_array().unwrap().len(), 1, "{models}");
    assert_eq!(models[0]["id"], "acme/tiny", "the cancelled one is partial: {models}");
    let (status, details) = json_of(http.get(server.at("/mm/v1/models/acme%2Ftiny")).send().await.unwrap()).await;
    assert_eq!((status, &details["model"]["format"]), (StatusCode::OK, &json!("gguf")), "{details}");
    let activate = http.put(server.at("/mm/v1/active/text-generation")).json(&json!({ "id": "acme/tiny" }));
    let (status, entry) = json_of(activate.send().await.unwrap()).await;
    assert_eq!((status, &entry["id"]), (StatusCode::OK, &json!("acme/tiny")), "{entry}");
    events.until("the activation", |e| e.event == "model-lifecycle" && e.data["kind"] == "activated").await;
    let (status, _) = json_of(http.delete(server.at("/mm/v1/active/text-generation")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, report) = json_of(http.delete(server.at("/mm/v1/models/acme%2Ftiny")).send().await.unwrap()).await;
    assert_eq!((status, report["bytesFreed"].as_u64() > Some(0)), (StatusCode::OK, true), "{report}");
    events.until("the delete", |e| e.event == "model-lifecycle" && e.data["kind"] == "deleted").await;

    // The hub token can be set and is never read back.
    let patch = http.patch(server.at("/mm/v1/settings")).json(&json!({ "token": "hf_secret0123456789" }));
    let (status, view) = json_of(patch.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let (_, view) = json_of(http.get(server.at("/mm/v1/settings")).send().await.unwrap()).await;
    assert!(!view.to_string().contains("secret0123456789"), "{view}");
    assert_eq!(view["tokenHint"], "hf_…6789");

    // Where the hub is and where models go are not changed over the network.
    let patch = http.patch(server.at("/mm/v1/settings")).json(&json!({ "endpoint": "http://evil.example" }));
    let (status, err) = json_of(patch.send().await.unwrap()).await;
    assert_eq!((status, &err["code"]), (StatusCode::FORBIDDEN, &json!("permission")), "{err}");
    // Without a token, a web page (it sends Origin) or a rebound name (another Host) is refused.
    let page = http.get(server.at("/mm/v1/models")).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let rebound = http.get(server.at("/mm/v1/models")).header("host", "evil.example:8765").send().await.unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);

    // A path to read on the server is checked.
    let compat = http.post(server.at("/mm/v1/compat")).json(&json!({ "target": "/proc/self/environ" }));
    let (status, err) = json_of(compat.send().await.unwrap()).await;
    assert_eq!((status, &err["code"]), (StatusCode::BAD_REQUEST, &json!("invalid-input")), "{err}");
    let import = http.post(server.at("/mm/v1/imports")).json(&json!({ "paths": ["relative/model.gguf"] }));
    let (status, err) = json_of(import.send().await.unwrap()).await;
    assert_eq!((status, &err["code"]), (StatusCode::BAD_REQUEST, &json!("invalid-input")), "{err}");

    // The OpenAPI document it serves is the checked-in one.
    let served: Value = http.get(server.at("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(served, mm_server::openapi::document());

    // A client that comes back with Last-Event-ID gets what it missed.
    let seen = moving.id.clone().unwrap();
    let (run, n) = seen.split_once('-').unwrap();
    let n: u64 = n.parse().unwrap();
    let mut resumed = Events::open(&http, &server.at("/mm/v1/events"), Some(&seen)).await;
    let next = resumed.next().await.unwrap();
    assert_eq!(next.id, Some(format!("{run}-{}", n + 1)), "{next:?}");
    // An id of another run of the server (or a bare number) cannot be replayed from: `reset`, read the state again.
    for other in [format!("0{run}-{n}"), n.to_string()] {
        let mut other_run = Events::open(&http, &server.at("/mm/v1/events"), Some(&other)).await;
        assert_eq!(other_run.next().await.unwrap().event, "reset", "{other}");
    }

    // SIGTERM: the event streams end and the process exits 0.
    let status = server.stop().await;
    assert!(status.success(), "{status:?}");
    assert!(events.next().await.is_none() || events.next().await.is_none(), "the stream ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_every_request_needs_the_token_and_a_restart_resumes_downloads() {
    let hub = FakeHub::start().await;
    let home = tempfile::tempdir().unwrap();
    let big = HubFile::new("model.safetensors", noise(4_000_000, 9), true);
    hub.add_repo("acme/big", vec![big.clone()]);
    hub.throttle(Some(1_000_000));
    let server = Server::start(&hub, home.path(), &["--listen", "0.0.0.0:0"]);
    let kept = home.path().join(".mm-data/dev.model-manager.app/serve-token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&kept).unwrap();
    let http = reqwest::Client::new();

    let (status, err) = json_of(http.get(server.at("/mm/v1/models")).send().await.unwrap()).await;
    assert_eq!((status, &err["code"]), (StatusCode::UNAUTHORIZED, &json!("auth")), "{err}");
    let wrong = http.get(server.at("/mm/v1/models")).bearer_auth("not-the-token").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    let events = http.get(server.at("/mm/v1/events")).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::UNAUTHORIZED, "the event stream too");

    let start = http.post(server.at("/mm/v1/downloads")).bearer_auth(&token).json(&json!({ "repo": "acme/big" }));
    let (status, started) = json_of(start.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let partial = home.path().join("cache/models--acme--big/blobs").join(format!("{}.incomplete", big.sha256));
    wait_until("a megabyte on disk", async || std::fs::metadata(&partial).is_ok_and(|m| m.len() >= 1_000_000)).await;
    assert!(server.stop().await.success());
    let kept_bytes = std::fs::metadata(&partial).unwrap().len();
    assert!(kept_bytes < 4_000_000, "stopped before the end");

    // Started again: the same token (kept), and the download carries on from its partial file.
    wait_until("the stopped transfer to be logged", async || hub.requests().iter().any(|r| r.host == Host::Cdn)).await;
    hub.throttle(None);
    hub.clear_requests();
    let server = Server::start(&hub, home.path(), &["--listen", "0.0.0.0:0"]);
    let blob = home.path().join("cache/models--acme--big/blobs").join(&big.sha256);
    wait_until("the resumed download to finish", async || blob.exists()).await;
    assert_eq!(std::fs::read(&blob).unwrap(), *big.content);
    let resumed: Vec<_> = hub.requests().into_iter().filter(|r| r.host == Host::Cdn).collect();
    assert!(
        resumed.iter().all(|r| r.range.as_deref().is_some_and(|r| !r.starts_with("bytes=0-"))),
        "only missing bytes were asked for: {resumed:?}"
    );
    let list = http.get(server.at("/mm/v1/downloads")).bearer_auth(&token).send().await.unwrap();
    let (status, list) = json_of(list).await;
    assert_eq!((status, &list[0]["state"]), (StatusCode::OK, &json!("completed")), "{list}");
    assert!(server.stop().await.success());

    // A token file instead: its token, and nothing else, opens the door.
    let file = home.path().join("token");
    std::fs::write(&file, "a-token-from-a-file-0123456789\n").unwrap();
    let server = Server::start(&hub, home.path(), &["--listen", "0.0.0.0:0", "--token-file", file.to_str().unwrap()]);
    let ok = http.get(server.at("/mm/v1/health")).bearer_auth("a-token-from-a-file-0123456789").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let old = http.get(server.at("/mm/v1/health")).bearer_auth(token.trim()).send().await.unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mm_remote_drives_another_machines_models_with_its_token() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/tiny", vec![HubFile::new("model.gguf", fake_hub::gguf_model("llama", 2, 4096, 1), true)]);
    let server_home = tempfile::tempdir().unwrap();
    let token_file = server_home.path().join("token");
    std::fs::write(&token_file, "remote-token-0123456789").unwrap();
    let server = Server::start(
        &hub,
        server_home.path(),
        &["--listen", "0.0.0.0:0", "--token-file", token_file.to_str().unwrap()],
    );
    // The laptop: its own empty home and cache, and no hub at all.
    let laptop = tempfile::tempdir().unwrap();
    let mm = |args: &[&str]| {
        let mut cmd = common::mm(&laptop.path().join("cache"), laptop.path());
        cmd.env("MM_REMOTE", &server.url).env("HF_ENDPOINT", "http://127.0.0.1:9").args(args);
        cmd.args(["--remote-token-file", token_file.to_str().unwrap()]);
        cmd
    };
    let json_of = |out: &std::process::Output| -> Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        // One document, or JSON lines of which the last says how it ended.
        serde_json::from_str(&text)
            .or_else(|_| serde_json::from_str(text.lines().last().unwrap_or_default()))
            .unwrap_or_else(|e| panic!("{e}: {text}"))
    };

    let done = json_of(&common::run(mm(&["download", "acme/tiny", "--json"])).await);
    assert_eq!((&done["event"], &done["progress"]["state"]), (&json!("done"), &json!("completed")), "{done}");
    assert!(server_home.path().join("cache/models--acme--tiny").is_dir(), "it landed on the other machine");
    assert!(!laptop.path().join("cache").exists(), "and nothing here");
    let listed = json_of(&common::run(mm(&["list", "--json"])).await);
    assert_eq!((&listed["models"][0]["id"], &listed["machine"]), (&json!("acme/tiny"), &json!(server.url)));
    let active = json_of(&common::run(mm(&["activate", "acme/tiny", "--json"])).await);
    assert_eq!(active["active"]["id"], "acme/tiny");
    let shown = json_of(&common::run(mm(&["active", "--json"])).await);
    assert_eq!(shown["text-generation"]["id"], "acme/tiny");
    json_of(&common::run(mm(&["deactivate", "text-generation", "--json"])).await);
    // Without --type, the machine that has the model says which type it is: here the one its user chose there.
    assert!(common::run(mm(&["type", "acme/tiny", "embedding"])).await.status.success());
    let active = json_of(&common::run(mm(&["activate", "acme/tiny", "--json"])).await);
    assert_eq!(active["active"]["modelType"], "embedding", "{active}");
    json_of(&common::run(mm(&["deactivate", "embedding", "--json"])).await);
    let system = json_of(&common::run(mm(&["system", "--json"])).await);
    assert!(system["ramTotal"].as_u64() > Some(0), "{system}");
    let removed = json_of(&common::run(mm(&["rm", "acme/tiny", "--json"])).await);
    assert!(removed["bytesFreed"].as_u64() > Some(0), "{removed}");
    assert!(!server_home.path().join("cache/models--acme--tiny").exists());

    // A command of this machine only says so; a wrong token is refused with the auth code's status.
    let local_only = common::run(mm(&["search", "llama"])).await;
    assert_eq!(local_only.status.code(), Some(2), "{}", String::from_utf8_lossy(&local_only.stderr));
    assert!(String::from_utf8_lossy(&local_only.stderr).contains("drop --remote"));
    let mut wrong = common::mm(&laptop.path().join("cache"), laptop.path());
    wrong.args(["--remote", &server.url, "list"]).env("MM_REMOTE_TOKEN", "not-the-token-at-all");
    let refused = common::run(wrong).await;
    assert_eq!(refused.status.code(), Some(4), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_loads_the_active_model_reports_it_live_and_stops_it_with_the_server() {
    let hub = FakeHub::start().await;
    let home = tempfile::tempdir().unwrap();
    let model = home.path().join("tiny.gguf");
    common::tiny_llama(&model, 1, false);
    let mut setup = common::mm(&home.path().join("cache"), home.path());
    setup.args(["config", "set", "llamaServer", common::llama_server().to_str().unwrap()]);
    assert!(common::run(setup).await.status.success());
    let mut import = common::mm(&home.path().join("cache"), home.path());
    import.arg("import").arg(&model);
    assert!(common::run(import).await.status.success());
    let server = Server::start(&hub, home.path(), &[]);
    let client = reqwest::Client::new();
    let mut events = Events::open(&client, &server.at("/mm/v1/events"), None).await;

    let (status, loaded) = json_of(
        client.post(server.at("/mm/v1/runtime/load")).json(&json!({"target": "local/tiny.gguf"})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{loaded}");
    assert_eq!((loaded["state"].as_str(), loaded["owner"].as_str()), (Some("ready"), Some("serve")));
    let change = events
        .until("the load's change", |e| e.event == "runtime-changed" && e.data["loaded"]["state"] == "ready")
        .await;
    assert_eq!(change.data["loaded"]["id"], "local/tiny.gguf");
    let (_, listed) = json_of(client.get(server.at("/mm/v1/runtime")).send().await.unwrap()).await;
    assert_eq!(listed[0]["endpoint"], loaded["endpoint"]);
    let answer = client
        .post(format!("{}/completions", loaded["endpoint"].as_str().unwrap()))
        .json(&json!({"prompt": "hello", "max_tokens": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);

    // What `mm serve` loaded ends with it.
    let pid = loaded["pid"].as_u64().unwrap();
    assert!(server.stop().await.success());
    wait_until("the runtime mm serve loaded to stop", async || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_repair_says_the_same_on_this_machine_and_through_mm_serve() {
    let hub = FakeHub::start().await;
    let weights = HubFile::new("model.safetensors", noise(200_000, 41), true);
    hub.add_repo("acme/fixme", vec![HubFile::new("config.json", b"{}".to_vec(), false), weights.clone()]);
    let home = tempfile::tempdir().unwrap();
    let mm = |args: &[&str]| {
        let mut cmd = common::mm(&home.path().join("cache"), home.path());
        cmd.env("HF_ENDPOINT", hub.endpoint()).args(args);
        cmd
    };
    assert!(common::run(mm(&["download", "acme/fixme"])).await.status.success());
    let blob = home.path().join("cache/models--acme--fixme/blobs").join(&weights.sha256);
    let corrupt = || {
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[1000] ^= 0xff;
        let _ = std::fs::remove_file(&blob);
        std::fs::write(&blob, bytes).unwrap();
    };
    // The report a face ends with: of after the repair, naming what was fetched again.
    let report = |out: std::process::Output| -> Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let last = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_string();
        serde_json::from_str::<Value>(&last).unwrap()["report"].clone()
    };
    corrupt();
    let here = report(common::run(mm(&["verify", "acme/fixme", "--repair", "--json"])).await);
    assert_eq!((here["ok"].clone(), here["repaired"].clone()), (json!(true), json!(["model.safetensors"])), "{here}");
    assert_eq!(std::fs::read(&blob).unwrap(), *weights.content);

    corrupt();
    let server = Server::start(&hub, home.path(), &["--listen", "127.0.0.1:0"]);
    let there = report(common::run(mm(&["--remote", &server.url, "verify", "acme/fixme", "--repair", "--json"])).await);
    assert_eq!(there, here, "the same operation, the same report");
    assert_eq!(std::fs::read(&blob).unwrap(), *weights.content);
}
