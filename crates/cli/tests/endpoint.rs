//! The one model endpoint of `mm serve` with real runtimes (tiny llama models in the real `llama-server`): the
//! official `openai` and `ollama` Python clients with nothing loaded first; several models resident; with
//! `maxLoaded 1`, clients alternating two models lose no request; a budget too small for two unloads the idle
//! one and never the busy one, and a client that goes away while its model waits does not cancel the load; a
//! pinned model stays; a failed load answers its waiters and leaves the others serving; stopping `mm serve`
//! stops what it loaded.

mod common;

use common::{llama_server, mm, run, tiny_llama};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A test's own machine with models imported and `mm serve` running over it; what it loaded is unloaded when the
/// test ends, pass or fail.
struct Machine {
    cache: tempfile::TempDir,
    home: tempfile::TempDir,
    serve: Option<std::process::Child>,
    url: String,
}

impl Machine {
    /// Tiny models `(id, seed, broken, type)` imported, the settings given, then `mm serve`.
    async fn new(models: &[(&str, u32, bool, &str)], settings: &[(&str, &str)]) -> Machine {
        Machine::serving(models, settings, &[]).await
    }

    /// [`Machine::new`], with more arguments for `mm serve`.
    async fn serving(models: &[(&str, u32, bool, &str)], settings: &[(&str, &str)], serve_args: &[&str]) -> Machine {
        let mut m = Machine {
            cache: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
            serve: None,
            url: String::new(),
        };
        m.ok(&["config", "set", "llamaServer", llama_server().to_str().unwrap()]).await;
        for (key, value) in settings {
            m.ok(&["config", "set", key, value]).await;
        }
        for (name, seed, broken, model_type) in models {
            let path = m.home.path().join(name);
            tiny_llama(&path, *seed, *broken);
            m.ok(&["import", path.to_str().unwrap()]).await;
            let id = format!("local/{name}");
            if *model_type != "text-generation" {
                m.ok(&["type", &id, model_type]).await;
            }
        }
        let mut serve = m.cmd(&["serve", "--json", "--listen", "127.0.0.1:0"]);
        serve.args(serve_args);
        let mut child = serve.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let ready: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
        m.url = ready["listening"].as_str().unwrap().to_string();
        m.serve = Some(child);
        m
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = mm(self.cache.path(), self.home.path());
        cmd.args(args);
        cmd
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = run(self.cmd(args)).await;
        assert!(out.status.success(), "mm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    async fn ps(&self) -> Vec<Value> {
        let out = self.ok(&["ps", "--json"]).await;
        serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
    }

    /// `mm ps --json` until `done` says so (or fails after `secs`).
    async fn ps_until(&self, secs: u64, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let list = self.ps().await;
            if done(&list) {
                return list;
            }
            assert!(Instant::now() < deadline, "{what} within {secs} s: {list:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(mut child) = self.serve.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.cmd(&["unload"]).output();
    }
}

fn loaded<'a>(ps: &'a [Value], id: &str) -> Option<&'a Value> {
    ps.iter().find(|m| m["id"] == id)
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// One chat answer from `model`: its text's model name, or the error's status and body.
async fn chat(http: &reqwest::Client, m: &Machine, model: &str) -> Result<String, String> {
    chat_at(http, &Url(m.url.clone()), model).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_clients_list_chat_stream_and_embed_with_nothing_loaded() {
    let m =
        Machine::new(&[("chat.gguf", 1, false, "text-generation"), ("embed.gguf", 2, false, "embedding")], &[]).await;
    m.ok(&["activate", "local/chat.gguf"]).await;
    assert!(m.ps().await.is_empty(), "nothing is loaded before the clients ask");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/endpoint/clients.py");
    let out = tokio::process::Command::new(common::python())
        .arg(&script)
        .args([m.url.as_str(), "local/chat.gguf", "local/embed.gguf"])
        .output()
        .await
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("all clients passed"), "{said}");

    // Both stay resident, each with its role: the chat model and the embedding model (started with --embeddings).
    let ps = m.ps().await;
    let (chat, embed) = (loaded(&ps, "local/chat.gguf").unwrap(), loaded(&ps, "local/embed.gguf").unwrap());
    assert_eq!((chat["state"].as_str(), embed["state"].as_str()), (Some("ready"), Some("ready")), "{ps:#?}");
    assert!(embed["command"].as_str().unwrap().contains("--embeddings --pooling mean"), "{embed}");
    assert!(!chat["command"].as_str().unwrap().contains("--embeddings"), "{chat}");
    assert_eq!(chat["owner"], "serve");
    // The runtime itself answers only this app: its key is in a private file, never on its command line.
    let command = chat["command"].as_str().unwrap();
    assert!(command.contains("--api-key-file") && command.contains("--no-slots"), "{command}");
    let port = command.split("--port ").nth(1).unwrap().split(' ').next().unwrap();
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2});
    let direct = reqwest::Client::new().post(format!("http://127.0.0.1:{port}/v1/chat/completions")).json(&body);
    assert_eq!(direct.send().await.unwrap().status(), 401, "a program that is not this app is refused");

    // Stopping mm serve stops what it loaded.
    let pids: Vec<u64> = ps.iter().map(|m| m["pid"].as_u64().unwrap()).collect();
    let mut m = m;
    let mut child = m.serve.take().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    m.ps_until(20, "what mm serve loaded unloaded once it stopped", |l| l.is_empty()).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "a llama-server mm serve loaded still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_one_model_at_a_time_three_clients_alternating_two_models_get_every_answer() {
    let m = Machine::new(
        &[("a.gguf", 1, false, "text-generation"), ("b.gguf", 2, false, "text-generation")],
        &[("maxLoaded", "1")],
    )
    .await;
    let http = reqwest::Client::new();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for client in 0..3 {
        let (http, failures) = (http.clone(), failures.clone());
        let url = m.url.clone();
        clients.push(tokio::spawn(async move {
            let m = Url(url);
            let mut answered = 0;
            for i in 0..8 {
                let model = if (i + client) % 2 == 0 { "local/a.gguf" } else { "local/b.gguf" };
                match chat_at(&http, &m, model).await {
                    Ok(by) if by == model => answered += 1,
                    Ok(by) => failures.lock().unwrap().push(format!("{model} was answered by {by}")),
                    Err(e) => failures.lock().unwrap().push(format!("{model}: {e}")),
                }
            }
            answered
        }));
    }
    let mut answered = 0;
    for c in clients {
        answered += c.await.unwrap();
    }
    assert!(failures.lock().unwrap().is_empty(), "requests failed in the swaps: {:?}", failures.lock().unwrap());
    assert_eq!(answered, 24);
    assert!(m.ps().await.len() <= 1, "at most one model loaded");
}

/// A whole request on a connection of its own, whose answer is never read.
async fn send_raw(m: &Machine, body: &Value) -> tokio::net::TcpStream {
    let body = body.to_string();
    let address = m.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await.unwrap();
    stream
}

/// A server's address, for tasks that outlive a borrow of the machine.
struct Url(String);

async fn chat_at(http: &reqwest::Client, url: &Url, model: &str) -> Result<String, String> {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4});
    let res =
        http.post(format!("{}/v1/chat/completions", url.0)).json(&body).send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let answer: Value = res.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {answer}"));
    }
    assert!(answer["choices"][0]["message"]["content"].is_string(), "{answer}");
    Ok(answer["model"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_too_small_for_two_unloads_the_idle_model_and_never_the_busy_one() {
    let m =
        Machine::new(&[("a.gguf", 1, false, "text-generation"), ("b.gguf", 2, false, "text-generation")], &[]).await;
    let http = reqwest::Client::new();
    assert_eq!(chat(&http, &m, "local/a.gguf").await.unwrap(), "local/a.gguf");
    // Once measured, a is counted as its peak and a margin.
    let ps =
        m.ps_until(20, "a measured", |l| loaded(l, "local/a.gguf").is_some_and(|a| a["measured"].is_object())).await;
    let a = loaded(&ps, "local/a.gguf").unwrap().clone();
    // Room for a as it is counted now and half of b (as large as a, and counted by its estimate).
    let (need, estimate) = (a["needBytes"].as_u64().unwrap(), a["estimateBytes"].as_u64().unwrap());
    let limit = need.max(estimate) + need.min(estimate) / 2;
    m.ok(&["config", "set", "memoryLimit", &limit.to_string()]).await;

    // a is busy: a long stream it answers (each token with its 200 likeliest: some 17 MB, far more than the
    // sockets between hold), read no further than its first event.
    let body = json!({
        "model": "local/a.gguf", "messages": [{"role": "user", "content": "hello"}], "stream": true,
        "max_tokens": 1800, "ignore_eos": true, "logprobs": true, "top_logprobs": 200,
    });
    let mut stream = http.post(m.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "), "{first:?}");

    // b waits for it, and says why. Its client then goes away: the load goes on for whoever asks next.
    let mut impatient =
        send_raw(&m, &json!({"model": "local/b.gguf", "messages": [{"role": "user", "content": "hi"}]})).await;
    let waiting = tokio::spawn({
        let (http, url) = (http.clone(), Url(m.url.clone()));
        async move { chat_at(&http, &url, "local/b.gguf").await }
    });
    let ps = m
        .ps_until(20, "b waits for room", |l| {
            loaded(l, "local/b.gguf")
                .is_some_and(|b| b["error"].as_str().is_some_and(|e| e.contains("local/a.gguf is busy")))
        })
        .await;
    let a_now = loaded(&ps, "local/a.gguf").unwrap();
    assert_eq!((a_now["state"].as_str(), a_now["busy"].as_u64()), (Some("ready"), Some(1)), "{ps:#?}");
    assert_eq!(loaded(&ps, "local/b.gguf").unwrap()["state"], "loading");
    tokio::io::AsyncWriteExt::shutdown(&mut impatient).await.unwrap();
    drop(impatient);

    // a's answer ends whole; then a goes and b answers.
    let mut rest = Vec::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("\"finish_reason\":\"length\"") && rest.trim_end().ends_with("data: [DONE]"), "{rest}");
    assert_eq!(waiting.await.unwrap().unwrap(), "local/b.gguf");
    let ps = m.ps().await;
    assert!(loaded(&ps, "local/a.gguf").is_none(), "the idle model made room: {ps:#?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(a["pid"].as_u64().unwrap()) {
        assert!(Instant::now() < deadline, "a's llama-server still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A model larger than the whole budget is refused at once, with why.
    m.ok(&["config", "set", "memoryLimit", "2000000"]).await;
    let refused = chat(&http, &m, "local/a.gguf").await.unwrap_err();
    assert!(refused.starts_with("503") && refused.contains("models may take"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_model_is_never_unloaded_for_another() {
    let m = Machine::new(
        &[("a.gguf", 1, false, "text-generation"), ("b.gguf", 2, false, "text-generation")],
        &[("maxLoaded", "1")],
    )
    .await;
    let pinned: Value = serde_json::from_str(&m.ok(&["load", "local/a.gguf", "--pin", "--json"]).await).unwrap();
    assert_eq!(pinned["pinned"], true);
    let http = reqwest::Client::new();
    let refused = chat(&http, &m, "local/b.gguf").await.unwrap_err();
    assert!(refused.starts_with("503") && refused.contains("local/a.gguf is pinned"), "{refused}");
    let ps = m.ps().await;
    assert_eq!(loaded(&ps, "local/a.gguf").unwrap()["pid"], pinned["pid"], "the pinned model kept running");
    assert_eq!(chat(&http, &m, "local/a.gguf").await.unwrap(), "local/a.gguf");
    // Unloading it unpins it: then b has room.
    m.ok(&["unload", "local/a.gguf"]).await;
    assert_eq!(chat(&http, &m, "local/b.gguf").await.unwrap(), "local/b.gguf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_load_answers_every_waiter_and_leaves_the_others_serving() {
    let m =
        Machine::new(&[("a.gguf", 1, false, "text-generation"), ("bad.gguf", 3, true, "text-generation")], &[]).await;
    let http = reqwest::Client::new();
    assert_eq!(chat(&http, &m, "local/a.gguf").await.unwrap(), "local/a.gguf");
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (http, url) = (http.clone(), Url(m.url.clone()));
            tokio::spawn(async move { chat_at(&http, &url, "local/bad.gguf").await })
        })
        .collect();
    for w in waiters {
        let e = w.await.unwrap().unwrap_err();
        assert!(e.starts_with("503") && e.contains("llama-server exited") && e.contains("local/bad.gguf"), "{e}");
    }
    assert_eq!(chat(&http, &m, "local/a.gguf").await.unwrap(), "local/a.gguf", "the others keep serving");
    assert!(loaded(&m.ps().await, "local/bad.gguf").is_none(), "the failed model is not listed as loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_model_names_get_the_format_s_errors() {
    let m = Machine::new(&[("a.gguf", 1, false, "text-generation")], &[]).await;
    let http = reqwest::Client::new();
    let cases = [
        ("/v1/chat/completions", json!({"model": "nobody/nothing"}), 404),
        ("/v1/chat/completions", json!({"model": "/etc/passwd"}), 400),
        ("/v1/chat/completions", json!({"model": "local/../../etc/passwd"}), 400),
        ("/v1/chat/completions", json!({"model": 7}), 400),
        ("/v1/chat/completions", json!({"messages": []}), 400),
        ("/v1/embeddings", json!({"model": "text-to-image"}), 404),
        ("/api/chat", json!({"model": "nobody/nothing", "messages": []}), 404),
        ("/api/generate", json!({"prompt": "hi"}), 400),
    ];
    for (path, body, status) in cases {
        let res = http.post(m.url(path)).json(&body).send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{path} {body}");
        let answer: Value = res.json().await.unwrap();
        let message = if path.starts_with("/v1") { &answer["error"]["message"] } else { &answer["error"] };
        assert!(message.as_str().is_some_and(|s| !s.is_empty()), "{path}: {answer}");
    }
    let not_json = http.post(m.url("/v1/chat/completions")).body("{").send().await.unwrap();
    assert_eq!(not_json.status(), 400);
    // A web page cannot reach it (a server without a token), and says so in OpenAI's shape.
    let page = http.get(m.url("/v1/models")).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(page.status(), 403);
    let answer: Value = page.json().await.unwrap();
    assert_eq!(answer["error"]["type"], "permission_error", "{answer}");
    assert!(m.ps().await.is_empty(), "no bad name loaded anything");
}

/// Writes a tiny LoRA adapter for the tiny llama model (tests/fixtures/tiny_lora.py) with `args`.
fn tiny_lora(path: &std::path::Path, args: &[&str]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny_lora.py");
    let out = std::process::Command::new(common::python()).arg(script).arg(path).args(args).output().unwrap();
    assert!(out.status.success(), "tiny_lora.py: {}", String::from_utf8_lossy(&out.stderr));
}

/// The weights `mm compat` counts for a model.
async fn weights(m: &Machine, id: &str) -> u64 {
    let report: Value = serde_json::from_str(&m.ok(&["compat", id, "--json"]).await).unwrap();
    report["report"]["entries"][0]["requirements"]["weightsBytes"].as_u64().unwrap_or_else(|| panic!("{report:#}"))
}

async fn complete(http: &reqwest::Client, url: &str, model: &str) -> Value {
    let body = json!({"model": model, "prompt": "hello world", "max_tokens": 8, "temperature": 0});
    let res = http.post(url).json(&body).send().await.unwrap();
    let status = res.status();
    let answer: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{model}: {status} {answer}");
    answer
}

/// A GGUF LoRA imported beside its base is linked to it (the only model it fits), listed as `BASE+ADAPTER` with
/// its parent, and served by the base's llama-server with the adapter loaded: at temperature 0 it answers otherwise
/// than the base, which still answers as it did alone. An adapter for another shape, or named alone, says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lora_adapter_is_linked_to_its_base_and_served_as_its_own_model() {
    let m = Machine::new(&[("base.gguf", 1, false, "text-generation")], &[]).await;
    let http = reqwest::Client::new();
    let completions = m.url("/v1/completions");
    let alone = complete(&http, &completions, "local/base.gguf").await["choices"][0]["text"].clone();
    let before = weights(&m, "local/base.gguf").await;

    let lora = m.home.path().join("lora.gguf");
    tiny_lora(&lora, &["7", "--base-repo", "acme/tiny-base"]);
    m.ok(&["import", lora.to_str().unwrap()]).await;
    let wide = m.home.path().join("wide.gguf");
    tiny_lora(&wide, &["8", "--embd", "128", "--base-repo", "acme/big-base"]);
    m.ok(&["import", wide.to_str().unwrap()]).await;
    let list: Value = serde_json::from_str(&m.ok(&["list", "--json"]).await).unwrap();
    let model = |id: &str| list["models"].as_array().unwrap().iter().find(|x| x["id"] == id).cloned().unwrap();
    let adapter = model("local/lora.gguf")["adapter"].clone();
    assert_eq!(
        (adapter["base"].as_str(), adapter["linkedBy"].as_str()),
        (Some("local/base.gguf"), Some("fits")),
        "{adapter:#}"
    );
    assert_eq!(adapter["baseNamed"], "acme/tiny-base");
    assert_eq!(model("local/base.gguf")["adapters"], json!(["local/lora.gguf"]));
    let wide = model("local/wide.gguf")["adapter"].clone();
    assert_eq!(wide["base"], Value::Null);
    assert!(wide["problem"].as_str().unwrap().contains("its base acme/big-base is not installed: get it"), "{wide:#}");

    let models: Value = http.get(m.url("/v1/models")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"local/base.gguf+local/lora.gguf"), "{ids:?}");
    assert!(!ids.contains(&"local/lora.gguf") && !ids.iter().any(|i| i.contains("wide")), "{ids:?}");
    let entry =
        models["data"].as_array().unwrap().iter().find(|x| x["id"] == "local/base.gguf+local/lora.gguf").unwrap();
    assert_eq!(entry["parent"], "local/base.gguf");

    // One runtime: the base, the adapter loaded unapplied; each request says which applies.
    let with = complete(&http, &completions, "local/base.gguf+local/lora.gguf").await["choices"][0]["text"].clone();
    let base = complete(&http, &completions, "local/base.gguf").await["choices"][0]["text"].clone();
    assert_ne!(with, alone, "the adapter changes the answer");
    assert_eq!(base, alone, "the base answers as it did alone");
    assert_eq!(complete(&http, &completions, "local/base.gguf+local/lora.gguf").await["choices"][0]["text"], with);
    let ps = m.ps().await;
    assert_eq!(ps.len(), 1, "{ps:#?}");
    let command = ps[0]["command"].as_str().unwrap();
    assert!(
        command.contains(&format!("--lora {}", lora.display())) && command.contains("--lora-init-without-apply"),
        "{command}"
    );

    let res = http.post(&completions).json(&json!({"model": "local/lora.gguf", "prompt": "x"})).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let text = res.text().await.unwrap();
    assert!(text.contains("name it with its base: local/base.gguf+local/lora.gguf"), "{text}");

    let out = run(m.cmd(&["activate", "local/lora.gguf"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is an adapter, which runs on a base: activate local/base.gguf"), "{stderr}");

    // Linked by hand: to a base it does not fit, refused with where; back to automatic.
    let out = run(m.cmd(&["link", "local/wide.gguf", "local/base.gguf"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("does not fit local/base.gguf: blk.0."), "{stderr}");
    let linked: Value =
        serde_json::from_str(&m.ok(&["link", "local/lora.gguf", "local/base.gguf", "--json"]).await).unwrap();
    assert_eq!(linked["adapter"]["linkedBy"], "user");
    m.ok(&["link", "local/lora.gguf", "auto"]).await;

    // Its estimate counts the adapter's bytes beside the base's, and so does the base's (it loads with them).
    let counted = weights(&m, "local/base.gguf+local/lora.gguf").await;
    assert_eq!(counted, before + std::fs::metadata(&lora).unwrap().len());
    assert_eq!(weights(&m, "local/base.gguf").await, counted);

    // The type's own endpoint serves the base on the same runtime, its adapters at scale 0.
    let pid = m.ps().await[0]["pid"].clone();
    m.ok(&["activate", "local/base.gguf"]).await;
    let loaded: Value = serde_json::from_str(&m.ok(&["load", "--json"]).await).unwrap();
    assert_eq!(loaded["pid"], pid, "the runtime with the adapter serves the type too: {loaded:#}");
    let typed = format!("{}/completions", loaded["endpoint"].as_str().unwrap());
    let body = json!({"prompt": "hello world", "max_tokens": 8, "temperature": 0});
    let answer: Value = http.post(&typed).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["choices"][0]["text"], alone, "{answer}");
    assert_eq!(complete(&http, &completions, "local/base.gguf+local/lora.gguf").await["choices"][0]["text"], with);
    assert_eq!(m.ps().await[0]["pid"], pid, "no restart between them");

    // Deleting the base says which adapters lose it.
    let out = run(m.cmd(&["rm", "local/base.gguf", "--dry-run"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("its adapters would lose their base: local/lora.gguf"), "{stderr}");
}

/// What the laptop's own client does with another machine's model: the official `openai` client lists it, asks
/// for it and streams from it, all through the laptop's endpoint.
const PEER_CLIENT: &str = r#"
import sys, openai
base, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)
listed = {m.id: m for m in client.models.list()}
assert model in listed, list(listed)
assert listed[model].model_extra["machine"] == model.split("/")[0], listed[model]
assert client.models.retrieve(model).id == model
answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4)
assert answer.choices[0].message.role == "assistant", answer
chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True))
assert len(chunks) >= 2, chunks
try:
    client.chat.completions.create(model="dead/local/x", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    raise SystemExit("a dead machine's model answered")
except openai.APIStatusError as e:
    assert e.status_code == 503 and "dead" in e.message, (e.status_code, e.message)
print("peer client passed")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_machines_model_is_listed_and_served_through_this_endpoint_and_a_dead_one_never_hangs_the_list() {
    // The GPU box asks for its token even on loopback; the laptop keeps it (`mm machines add`), its clients never
    // see it.
    let gpu = Machine::new(&[("chat.gguf", 1, false, "text-generation")], &[("serveRequireToken", "true")]).await;
    let gpu_token = gpu.home.path().join(".mm-data/dev.model-manager.app/serve-token");
    let closed = common::free_port();
    let dead = format!("dead=http://127.0.0.1:{closed}");
    let laptop = Machine::serving(&[("own.gguf", 2, false, "text-generation")], &[], &["--peer", &dead]).await;
    laptop.ok(&["machines", "add", "gpu", &gpu.url, "--token-file", gpu_token.to_str().unwrap()]).await;
    let listed: Value = serde_json::from_str(&laptop.ok(&["machines", "list", "--json"]).await).unwrap();
    assert_eq!(listed[0]["name"], "gpu");

    // The list: the laptop's own, then the GPU box's by NAME/ID; the dead machine is left out within its wait.
    let http = reqwest::Client::new();
    let started = Instant::now();
    let list: Value = http.get(laptop.url("/v1/models")).send().await.unwrap().json().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "the dead machine held the list: {:?}", started.elapsed());
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.contains(&"local/own.gguf") && ids.contains(&"gpu/local/chat.gguf"), "{ids:?}");
    assert!(!ids.iter().any(|id| id.starts_with("dead/")), "{ids:?}");
    let again = Instant::now();
    http.get(laptop.url("/v1/models")).send().await.unwrap();
    assert!(again.elapsed() < Duration::from_secs(1), "a machine known to be down is not waited for twice");

    let out = tokio::process::Command::new(common::python())
        .args(["-c", PEER_CLIENT, laptop.url.as_str(), "gpu/local/chat.gguf"])
        .output()
        .await
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("peer client passed"), "{said}");

    // The GPU box's own scheduler loaded it; the laptop loaded nothing.
    assert!(loaded(&gpu.ps().await, "local/chat.gguf").is_some());
    assert!(laptop.ps().await.is_empty());
    // The GPU box never hands its models on to a machine that asks as a peer (no loops, one hop).
    let hop: Value = http
        .get(gpu.url("/v1/models"))
        .bearer_auth(std::fs::read_to_string(&gpu_token).unwrap().trim())
        .header("x-model-manager-peer", "1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(hop["data"].as_array().unwrap().iter().all(|m| m.get("machine").is_none()), "{hop}");
    // A path that is not a plain one is never passed on (it would reach another route with the GPU box's token).
    // Sent as written (a client library would tidy the dots away first).
    let sneaky = json!({"model": "gpu/local/chat.gguf", "messages": []}).to_string();
    for path in ["/v1/%2e%2e/mm/v1/settings", "/v1/chat/../../mm/v1/settings", "/v1/x/%2E%2E/%2E%2E/mm/v1/settings"] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = laptop.url.trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            sneaky.len()
        );
        stream.write_all(format!("{head}{sneaky}").as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let status = answer.split_whitespace().nth(1).unwrap_or_default().to_string();
        assert!(status.starts_with('4'), "{path}: {answer}");
    }
}
