//! A server that says exactly what a test tells it to, for the lying and stalling servers the hardening tests need:
//! each request is answered by a closure with raw bytes (a status line, headers, a body: whatever lie the test
//! needs, a `Content-Length` included or not) and the connection is closed, or by silence. Every request is kept.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    /// The path and query.
    pub target: String,
    /// Header names in lowercase.
    pub headers: HashMap<String, String>,
    /// How many requests came before this one.
    pub index: usize,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The first byte of a `Range: bytes=N-` header.
    pub fn range_start(&self) -> Option<u64> {
        self.header("range")?.strip_prefix("bytes=")?.split('-').next()?.parse().ok()
    }
}

/// What to do with a request.
pub enum RawReply {
    /// Write these bytes, then close the connection.
    Bytes(Vec<u8>),
    /// Write these bytes, then keep the connection open, silent, for this long.
    Hang(Vec<u8>, Duration),
}

/// A running server; it stops when dropped.
pub struct RawServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Handler = dyn Fn(&RawRequest) -> RawReply + Send + Sync;

impl RawServer {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(handler: impl Fn(&RawRequest) -> RawReply + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let (handler, log) = (handler.clone(), log.clone());
                tokio::spawn(async move {
                    let Some(request) = crate::read_request(&mut stream).await else { return };
                    let request = {
                        let mut log = log.lock().unwrap();
                        let request = RawRequest {
                            method: request.method,
                            target: request.target,
                            headers: request.headers,
                            index: log.len(),
                        };
                        log.push(request.clone());
                        request
                    };
                    match handler(&request) {
                        RawReply::Bytes(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                            let _ = stream.shutdown().await;
                        }
                        RawReply::Hang(bytes, for_how_long) => {
                            let _ = stream.write_all(&bytes).await;
                            let _ = stream.flush().await;
                            tokio::time::sleep(for_how_long).await;
                        }
                    }
                });
            }
        });
        RawServer { addr, requests, task }
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// An HTTP/1.1 answer with exactly these headers (nothing added: no `Content-Length` unless given) and body,
/// closing the connection.
pub fn answer(status: u16, headers: &[(&str, String)], body: &[u8]) -> RawReply {
    let mut out = format!("HTTP/1.1 {status} Status\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    RawReply::Bytes(bytes)
}

/// A JSON answer with its true `Content-Length`.
pub fn json(status: u16, value: &serde_json::Value) -> RawReply {
    let body = serde_json::to_vec(value).unwrap();
    answer(status, &[("Content-Type", "application/json".into()), ("Content-Length", body.len().to_string())], &body)
}
