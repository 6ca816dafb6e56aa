//! A local Ollama server for tests: `GET /api/tags`, `POST /api/pull` streaming newline-delimited JSON progress
//! (pulling manifest, layer bytes, verifying, writing manifest, success), `DELETE /api/delete`. A model named
//! `broken*` fails mid-stream with an `error` line; an unknown namespace `missing/*` fails at the manifest.
//! Loading as Ollama does it: `POST /api/generate` with no prompt loads a model (`keep_alive` 0 unloads it),
//! `GET /api/ps` lists the loaded ones with their memory, and `POST /v1/chat/completions` answers naming the model
//! it was asked for (a loaded one only).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub struct OllamaModel {
    pub name: String,
    pub size: u64,
    pub family: String,
}

pub struct FakeOllama {
    addr: std::net::SocketAddr,
    models: Arc<Mutex<Vec<OllamaModel>>>,
    blobs: Arc<Mutex<Option<std::path::PathBuf>>>,
    loaded: Loaded,
    task: tokio::task::JoinHandle<()>,
}

/// The models in memory, with their `keep_alive` as asked.
type Loaded = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

impl Drop for FakeOllama {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOllama {
    pub async fn start() -> FakeOllama {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind ollama");
        let addr = listener.local_addr().unwrap();
        let models = Arc::new(Mutex::new(Vec::new()));
        let blobs = Arc::new(Mutex::new(None));
        let loaded: Loaded = Arc::default();
        let (shared, shared_blobs, shared_loaded) = (models.clone(), blobs.clone(), loaded.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (models, blobs, loaded) = (shared.clone(), shared_blobs.clone(), shared_loaded.clone());
                tokio::spawn(async move {
                    let _ = handle(stream, models, blobs, loaded).await;
                });
            }
        });
        FakeOllama { addr, models, blobs, loaded, task }
    }

    /// `OLLAMA_HOST` for clients: `127.0.0.1:{port}`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    pub fn add(&self, name: &str, size: u64, family: &str) {
        self.models.lock().unwrap().push(OllamaModel { name: name.into(), size, family: family.into() });
    }

    /// Where `/api/show` says model files are: `{dir}/sha256-{size as hex}` (tests create the files).
    pub fn blobs_dir(&self, dir: &std::path::Path) {
        *self.blobs.lock().unwrap() = Some(dir.to_path_buf());
    }

    /// The file `/api/show` names for a model of this size.
    pub fn blob_name(size: u64) -> String {
        format!("sha256-{size:064x}")
    }

    /// The models in memory now, with the `keep_alive` each was loaded with.
    pub fn loaded(&self) -> Vec<(String, serde_json::Value)> {
        self.loaded.lock().unwrap().clone()
    }

    pub fn names(&self) -> Vec<String> {
        self.models.lock().unwrap().iter().map(|m| m.name.clone()).collect()
    }
}

async fn handle(
    mut stream: TcpStream,
    models: Arc<Mutex<Vec<OllamaModel>>>,
    blobs: Arc<Mutex<Option<std::path::PathBuf>>>,
    loaded: Loaded,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: serde_json::Value = serde_json::from_slice(&buf[head_end..]).unwrap_or(serde_json::Value::Null);
    let mut first = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let name = body.get("model").or_else(|| body.get("name")).and_then(|v| v.as_str()).unwrap_or("").to_string();
    match (method, path) {
        ("GET", "/api/tags") => {
            let list: Vec<serde_json::Value> = models
                .lock()
                .unwrap()
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "name": m.name, "model": m.name, "modified_at": "2026-06-30T12:00:00Z", "size": m.size,
                        "digest": format!("{:064x}", m.size),
                        "details": {"format": "gguf", "family": m.family, "families": [m.family],
                                    "parameter_size": "1B", "quantization_level": "Q4_K_M"}
                    })
                })
                .collect();
            reply(&mut stream, 200, &serde_json::json!({ "models": list }).to_string()).await
        }
        ("DELETE", "/api/delete") => {
            let gone = {
                let mut list = models.lock().unwrap();
                let before = list.len();
                list.retain(|m| m.name != name);
                list.len() < before
            };
            if gone {
                reply(&mut stream, 200, "").await
            } else {
                reply(&mut stream, 404, &format!("{{\"error\":\"model '{name}' not found\"}}")).await
            }
        }
        ("POST", "/api/pull") => pull(&mut stream, &name, models).await,
        ("POST", "/api/generate") => {
            let size = models.lock().unwrap().iter().find(|m| m.name == name).map(|m| m.size);
            let Some(_) = size else {
                return reply(&mut stream, 404, &format!("{{\"error\":\"model '{name}' not found\"}}")).await;
            };
            let keep = body.get("keep_alive").cloned().unwrap_or(serde_json::json!("5m"));
            let unload = keep == serde_json::json!(0);
            {
                let mut list = loaded.lock().unwrap();
                list.retain(|(n, _)| *n != name);
                if !unload {
                    list.push((name.clone(), keep));
                }
            }
            let reason = if unload { "unload" } else { "load" };
            let answer = serde_json::json!({"model": name, "created_at": "2026-06-30T12:00:00Z", "response": "",
                                            "done": true, "done_reason": reason});
            reply(&mut stream, 200, &answer.to_string()).await
        }
        ("GET", "/api/ps") => {
            let all = models.lock().unwrap().clone();
            let list: Vec<serde_json::Value> = loaded
                .lock()
                .unwrap()
                .iter()
                .filter_map(|(n, _)| all.iter().find(|m| m.name == *n))
                .map(|m| {
                    serde_json::json!({"name": m.name, "model": m.name, "size": m.size + 100_000_000,
                                       "digest": format!("{:064x}", m.size), "expires_at": "2318-01-01T00:00:00Z",
                                       "size_vram": 0, "details": {"family": m.family}})
                })
                .collect();
            reply(&mut stream, 200, &serde_json::json!({ "models": list }).to_string()).await
        }
        ("POST", "/v1/chat/completions") => {
            let is_loaded = loaded.lock().unwrap().iter().any(|(n, _)| *n == name);
            if !is_loaded {
                return reply(
                    &mut stream,
                    404,
                    &format!("{{\"error\":{{\"message\":\"model \\\"{name}\\\" not found\"}}}}"),
                )
                .await;
            }
            let answer = serde_json::json!({"object": "chat.completion", "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]});
            reply(&mut stream, 200, &answer.to_string()).await
        }
        ("POST", "/api/show") => {
            let size = models.lock().unwrap().iter().find(|m| m.name == name).map(|m| m.size);
            let dir = blobs.lock().unwrap().clone().unwrap_or_else(|| "/usr/share/ollama/.ollama/models/blobs".into());
            match size {
                Some(size) => {
                    let from = dir.join(FakeOllama::blob_name(size));
                    let modelfile = format!(
                        "# Modelfile generated by \"ollama show\"\nFROM {}\nTEMPLATE {{{{ .Prompt }}}}\n",
                        from.display()
                    );
                    reply(&mut stream, 200, &serde_json::json!({ "modelfile": modelfile }).to_string()).await
                }
                None => reply(&mut stream, 404, &format!("{{\"error\":\"model '{name}' not found\"}}")).await,
            }
        }
        _ => reply(&mut stream, 404, "404 page not found").await,
    }
}

async fn reply(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await
}

/// Streams a pull as Ollama does: one JSON object per line, the body ended by closing the connection.
async fn pull(stream: &mut TcpStream, name: &str, models: Arc<Mutex<Vec<OllamaModel>>>) -> std::io::Result<()> {
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n").await?;
    let line = |value: serde_json::Value| {
        let mut text = value.to_string();
        text.push('\n');
        text
    };
    stream.write_all(line(serde_json::json!({"status": "pulling manifest"})).as_bytes()).await?;
    if name.starts_with("missing/") {
        let error = line(serde_json::json!({"error": "pull model manifest: file does not exist"}));
        stream.write_all(error.as_bytes()).await?;
        return stream.flush().await;
    }
    let total: u64 = 4_000_000;
    let digest = "sha256:6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa";
    for step in 1..=4 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let done = total * step / 4;
        let progress = serde_json::json!({"status": format!("pulling {}", &digest[7..19]), "digest": digest,
                                          "total": total, "completed": done});
        stream.write_all(line(progress).as_bytes()).await?;
        if name.starts_with("broken") && step == 2 {
            let error = line(serde_json::json!({"error": "max retries exceeded: unexpected EOF"}));
            stream.write_all(error.as_bytes()).await?;
            return stream.flush().await;
        }
    }
    for status in ["verifying sha256 digest", "writing manifest", "success"] {
        stream.write_all(line(serde_json::json!({ "status": status })).as_bytes()).await?;
    }
    let full = if name.contains(':') { name.to_string() } else { format!("{name}:latest") };
    models.lock().unwrap().push(OllamaModel { name: full, size: total, family: "llama".into() });
    stream.flush().await
}
