//! A face's side of the runtime host: starts it when a load needs it, and asks it over its socket.

use super::host::HostConfig;
use super::{socket_path, Acquired, HostReply, HostRequest, LoadedModel, RuntimeChange, Target};
use crate::error::{ErrorCode, ErrorPayload};
use crate::model::ModelType;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// How long a started host has to open its socket (it may first wait for a host that is stopping).
const HOST_START: Duration = Duration::from_secs(30);
/// How long a load may take to answer (the host's own limit on a runtime's start, and some).
const LOAD_ANSWER: Duration = Duration::from_secs(660);
/// How long any other request may take.
const ANSWER: Duration = Duration::from_secs(60);

/// The host of one data folder, as a face reaches it.
#[derive(Debug, Clone)]
pub struct RuntimeClient {
    config: HostConfig,
    /// The program that becomes the host (this face's own, which calls [`super::host::run_if_asked`]).
    program: Option<PathBuf>,
    /// Connections whose hold was let go, for the next request's (no connection to set up on the way).
    idle: Arc<Mutex<Vec<UnixStream>>>,
}

/// Idle connections kept for the next holds.
const IDLE_KEPT: usize = 32;

fn unreachable(e: impl std::fmt::Display) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::Io, format!("the runtime host did not answer: {e}"))
}

impl RuntimeClient {
    pub fn new(config: HostConfig) -> RuntimeClient {
        RuntimeClient { config, program: std::env::current_exe().ok(), idle: Arc::default() }
    }

    /// The running host, if any.
    async fn connect(&self) -> Option<UnixStream> {
        UnixStream::connect(socket_path(&self.config.data_dir)).await.ok()
    }

    /// The running host, else one started now (detached: it outlives this process).
    async fn connect_or_start(&self) -> Result<UnixStream, ErrorPayload> {
        if let Some(stream) = self.connect().await {
            return Ok(stream);
        }
        let program = self.program.clone().ok_or_else(|| unreachable("this program's path is unknown"))?;
        let dir = super::runtime_dir(&self.config.data_dir);
        std::fs::create_dir_all(&dir).map_err(unreachable)?;
        let log = std::fs::File::options().create(true).append(true).open(dir.join("host.log")).map_err(unreachable)?;
        let mut cmd = std::process::Command::new(&program);
        cmd.envs(self.config.env())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(unreachable)?)
            .stderr(log);
        // Its own process group: a terminal's Ctrl-C on `mm` does not reach it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(|e| unreachable(format!("cannot start {}: {e}", program.display())))?;
        // Reaped by a thread, so that it never lingers as a zombie of a long-lived face.
        let deadline = tokio::time::Instant::now() + HOST_START;
        loop {
            if let Some(stream) = self.connect().await {
                std::thread::spawn(move || child.wait());
                return Ok(stream);
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Another host may have won the race to start.
                if let Some(stream) = self.connect().await {
                    return Ok(stream);
                }
                return Err(unreachable(format!("it exited ({status}); see {}", dir.join("host.log").display())));
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                std::thread::spawn(move || child.wait());
                return Err(unreachable(format!(
                    "it did not start in {} s; see {}",
                    HOST_START.as_secs(),
                    dir.join("host.log").display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ask(mut stream: UnixStream, request: &HostRequest) -> Result<HostReply, ErrorPayload> {
        let mut line = serde_json::to_vec(request).expect("serialises");
        line.push(b'\n');
        stream.write_all(&line).await.map_err(unreachable)?;
        let mut reply = String::new();
        let limit = if matches!(request, HostRequest::Load { .. }) { LOAD_ANSWER } else { ANSWER };
        tokio::time::timeout(limit, BufReader::new(stream).read_line(&mut reply))
            .await
            .map_err(|_| unreachable(format!("no answer in {} s", limit.as_secs())))?
            .map_err(unreachable)?;
        if reply.is_empty() {
            return Err(unreachable("it closed the connection"));
        }
        serde_json::from_str::<Result<HostReply, ErrorPayload>>(&reply).map_err(unreachable)?
    }

    /// Loads the active model of `model_type` (starting the host), answered once it is ready.
    /// `owner_pid`: a process whose end unloads it (the app's, `mm serve`'s); none for a load that stays.
    pub async fn load(
        &self,
        model_type: ModelType,
        context: Option<u64>,
        owner: &str,
        owner_pid: Option<u32>,
    ) -> Result<LoadedModel, ErrorPayload> {
        let stream = self.connect_or_start().await?;
        let request = HostRequest::Load { model_type, context, owner: owner.to_string(), owner_pid };
        match Self::ask(stream, &request).await? {
            HostReply::Loaded(m) => Ok(*m),
            other => Err(unreachable(format!("unexpected answer {other:?}"))),
        }
    }

    /// Holds `target` for one request, loading it first when it is not loaded (starting the host): answered once it
    /// is ready, and held until the [`ModelHold`] is dropped (when the answer has been sent).
    pub async fn acquire(
        &self,
        target: Target,
        keep_alive: Option<i64>,
        owner: &str,
        owner_pid: Option<u32>,
    ) -> Result<ModelHold, ErrorPayload> {
        let request = HostRequest::Acquire { target, keep_alive, owner: owner.to_string(), owner_pid };
        // A kept connection first; one the host closed meanwhile (it ended) is left for a new one.
        let kept = self.idle.lock().expect("idle").pop();
        if let Some(stream) = kept {
            if let Ok(answer) = self.hold_on(stream, &request).await {
                return answer;
            }
        }
        let stream = self.connect_or_start().await?;
        self.hold_on(stream, &request).await?
    }

    /// Asks for a hold on `stream`: `Err` when the connection failed (a kept one may have been closed by a host
    /// that ended), `Ok` with the host's answer.
    async fn hold_on(
        &self,
        mut stream: UnixStream,
        request: &HostRequest,
    ) -> Result<Result<ModelHold, ErrorPayload>, ErrorPayload> {
        let mut line = serde_json::to_vec(&request).expect("serialises");
        line.push(b'\n');
        stream.write_all(&line).await.map_err(unreachable)?;
        // The host says nothing more until the hold is let go: a buffered read of its one line takes nothing past it.
        let mut reader = BufReader::new(stream);
        let mut reply = String::new();
        tokio::time::timeout(LOAD_ANSWER, reader.read_line(&mut reply))
            .await
            .map_err(|_| unreachable(format!("no answer in {} s", LOAD_ANSWER.as_secs())))?
            .map_err(unreachable)?;
        if reply.is_empty() {
            return Err(unreachable("it closed the connection"));
        }
        let stream = reader.into_inner();
        Ok(match serde_json::from_str::<Result<HostReply, ErrorPayload>>(&reply).map_err(unreachable)? {
            Ok(HostReply::Acquired(acquired)) => {
                Ok(ModelHold { acquired: *acquired, adapter: None, stream: Some(stream), idle: self.idle.clone() })
            }
            Ok(other) => Err(unreachable(format!("unexpected answer {other:?}"))),
            Err(e) => Err(e),
        })
    }

    /// Unloads one model (`id`), a type, or everything (of `owner`); nothing to do without a host.
    pub async fn unload(
        &self,
        model_type: Option<ModelType>,
        id: Option<&str>,
        owner: Option<&str>,
    ) -> Result<Vec<LoadedModel>, ErrorPayload> {
        let Some(stream) = self.connect().await else {
            return match id {
                Some(id) => {
                    Err(ErrorPayload::new(ErrorCode::NotFound, format!("{id} is not loaded (mm ps lists what is)")))
                }
                None => Ok(Vec::new()),
            };
        };
        let request = HostRequest::Unload { model_type, id: id.map(str::to_string), owner: owner.map(str::to_string) };
        match Self::ask(stream, &request).await? {
            HostReply::Unloaded(m) => Ok(m),
            other => Err(unreachable(format!("unexpected answer {other:?}"))),
        }
    }

    /// What is loaded (nothing without a host).
    pub async fn status(&self) -> Vec<LoadedModel> {
        let Some(stream) = self.connect().await else { return Vec::new() };
        match Self::ask(stream, &HostRequest::Status).await {
            Ok(HostReply::Status(m)) => m,
            _ => Vec::new(),
        }
    }

    /// Tells the host the active models changed; the swap follows in the host, without waiting for it here.
    pub async fn sync(&self) {
        if let Some(mut stream) = self.connect().await {
            let mut line = serde_json::to_vec(&HostRequest::Sync).expect("serialises");
            line.push(b'\n');
            let _ = stream.write_all(&line).await;
        }
    }

    /// The host's changes while it runs; `None` when no host runs.
    pub async fn watch(&self) -> Option<RuntimeWatch> {
        let mut stream = self.connect().await?;
        let mut line = serde_json::to_vec(&HostRequest::Watch).expect("serialises");
        line.push(b'\n');
        stream.write_all(&line).await.ok()?;
        Some(RuntimeWatch { lines: BufReader::new(stream).lines() })
    }
}

/// A model held for one request (see [`RuntimeClient::acquire`]): its runtime is not unloaded while this lives.
/// Dropped, it lets the model go and keeps its connection for the next hold.
#[derive(Debug)]
pub struct ModelHold {
    pub acquired: Acquired,
    /// The adapter the request named (`BASE+ADAPTER`), applied for it alone; the runtime's others at scale 0.
    pub adapter: Option<String>,
    stream: Option<UnixStream>,
    idle: Arc<Mutex<Vec<UnixStream>>>,
}

impl Drop for ModelHold {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else { return };
        let mut line = serde_json::to_vec(&HostRequest::Release).expect("serialises");
        line.push(b'\n');
        // A short line into an empty socket: written whole at once, or the connection is dropped (which lets go
        // as well).
        if stream.try_write(&line).ok() == Some(line.len()) {
            let mut idle = self.idle.lock().expect("idle");
            if idle.len() < IDLE_KEPT {
                idle.push(stream);
            }
        }
    }
}

/// The host's changes, as they happen.
pub struct RuntimeWatch {
    lines: tokio::io::Lines<BufReader<UnixStream>>,
}

impl RuntimeWatch {
    /// The next change; `None` once the host is gone.
    pub async fn next(&mut self) -> Option<RuntimeChange> {
        loop {
            let line = self.lines.next_line().await.ok()??;
            if let Ok(change) = serde_json::from_str(&line) {
                return Some(change);
            }
        }
    }
}
