//! The runtime host: the process that owns the loaded models (see the module above for what it does). A face's
//! program becomes the host when started with `MM_RUNTIME_HOST` set ([`run_if_asked`], first thing in `main`);
//! [`super::RuntimeClient`] starts it so, detached, and talks to it over its socket.

use super::plan::{self, LaunchPlan};
use super::slot::{Backend, Process, Slot};
use super::{proxy, runtime_dir, socket_path, HostReply, HostRequest, LoadedModel, RuntimeChange};
use super::{RuntimeKind, RuntimeState};
use crate::activation::{Activation, ActiveEntry};
use crate::compat::measured::{self as memory, Measurement, MemoryUse};
use crate::compat::{estimate, hardware, local};
use crate::error::{ErrorCode, ErrorPayload};
use crate::model::ModelType;
use crate::settings::{Settings, SettingsStore};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, watch};

/// The environment that makes a program the host, and what it is given.
pub(super) const ENV_DATA: &str = "MM_RUNTIME_HOST";
pub(super) const ENV_SETTINGS: &str = "MM_RUNTIME_SETTINGS";
pub(super) const ENV_CACHE: &str = "MM_RUNTIME_CACHE";
pub(super) const ENV_OLLAMA: &str = "MM_RUNTIME_OLLAMA";

/// How long a runtime may take to answer `/health` after it starts.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a host with nothing loaded stays (a client that started it but failed to ask).
const IDLE_EXIT: Duration = Duration::from_secs(30);
/// Failed `/health` polls in a row before a running runtime is called unhealthy.
const HEALTH_FAILURES: u32 = 3;
/// How long a new host waits for the one before it to finish stopping.
const HOST_HANDOFF: Duration = Duration::from_secs(20);
/// How long a stopping host waits for its runtimes to stop (answers in flight first).
const STOP_GRACE: Duration = Duration::from_secs(30);

/// What the host runs over: the same data folder, settings, cache and Ollama as the face that started it.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub data_dir: PathBuf,
    pub settings: PathBuf,
    pub cache_dir: PathBuf,
    pub ollama: String,
}

impl HostConfig {
    pub(super) fn env(&self) -> [(&'static str, String); 4] {
        [
            (ENV_DATA, self.data_dir.display().to_string()),
            (ENV_SETTINGS, self.settings.display().to_string()),
            (ENV_CACHE, self.cache_dir.display().to_string()),
            (ENV_OLLAMA, self.ollama.clone()),
        ]
    }
}

/// When this program was started as the host: runs it, then exits the process. Call first in `main`.
pub fn run_if_asked() {
    let Some(data_dir) = std::env::var_os(ENV_DATA) else { return };
    let var = |k| std::env::var_os(k).map(PathBuf::from).unwrap_or_default();
    let config = HostConfig {
        data_dir: data_dir.into(),
        settings: var(ENV_SETTINGS),
        cache_dir: var(ENV_CACHE),
        ollama: std::env::var(ENV_OLLAMA).unwrap_or_else(|_| crate::ollama::DEFAULT_HOST.into()),
    };
    crate::logs::to_stderr(true);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let code = match runtime.map(|rt| rt.block_on(serve(config))) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) | Err(e) => {
            tracing::error!("the runtime host stopped: {e}");
            1
        }
    };
    std::process::exit(code)
}

/// Runs the host until nothing is loaded (or SIGTERM), on this thread's runtime.
pub async fn serve(config: HostConfig) -> std::io::Result<()> {
    let dir = runtime_dir(&config.data_dir);
    std::fs::create_dir_all(&dir)?;
    // One host per data folder: the lock is held for the host's life. A host that is still stopping (its socket
    // gone, its runtimes being stopped) is waited for; one that serves makes this one leave.
    let lock = std::fs::File::options().create(true).truncate(false).write(true).open(dir.join("host.lock"))?;
    let socket = socket_path(&config.data_dir);
    use std::os::fd::AsRawFd;
    let waiting = Instant::now();
    while unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        if tokio::net::UnixStream::connect(&socket).await.is_ok() || waiting.elapsed() > HOST_HANDOFF {
            tracing::info!("another runtime host serves {}", config.data_dir.display());
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket)?;
    crate::paths::restrict(&socket, 0o600)?;
    let host = Arc::new(Host::new(config));
    // Endpoints a host that died left in `active.json` are no longer served.
    host.publish_endpoints();
    tracing::info!("runtime host {} serving {}", std::process::id(), socket.display());
    tokio::spawn(host.clone().monitor());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut idle_since = Some(Instant::now());
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    idle_since = None;
                    tokio::spawn(host.clone().connection(stream));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            _ = term.recv() => break,
            _ = tick.tick() => {
                // Nothing served (a model whose restarts are spent serves nothing) and nothing being done.
                // A stopped model stays listed a while, with why, before the host goes.
                let slots = host.slots();
                let serving = slots.values().any(|s| s.view().state != RuntimeState::Stopped);
                let quiet = !serving && host.ops.try_lock().is_ok();
                let unloaded = slots.is_empty() && host.loaded_once();
                match (quiet, idle_since) {
                    (false, _) => idle_since = None,
                    (true, None) => idle_since = Some(Instant::now()),
                    (true, Some(t)) if t.elapsed() >= IDLE_EXIT || unloaded => break,
                    _ => {}
                }
            }
        }
    }
    let _ = std::fs::remove_file(&socket);
    host.unload(None, None).await;
    // The runtimes stop after their last answers; then the host may go.
    let retiring: Vec<_> = host.retiring.lock().expect("retiring").drain(..).collect();
    let _ = tokio::time::timeout(STOP_GRACE, async {
        for task in retiring {
            let _ = task.await;
        }
    })
    .await;
    tracing::info!("runtime host {} done", std::process::id());
    drop(lock);
    Ok(())
}

struct Host {
    config: HostConfig,
    activation: Activation,
    ollama: String,
    http: reqwest::Client,
    slots: Mutex<BTreeMap<ModelType, Arc<Slot>>>,
    /// One load, unload or sync at a time.
    ops: tokio::sync::Mutex<()>,
    changes: broadcast::Sender<RuntimeChange>,
    loaded_once: std::sync::atomic::AtomicBool,
    /// Runtimes swapped out or unloaded, stopping once their last answer is sent; awaited before the host ends.
    retiring: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn err(code: ErrorCode, message: impl Into<String>) -> ErrorPayload {
    ErrorPayload::new(code, message)
}

impl Host {
    fn new(config: HostConfig) -> Host {
        let store = SettingsStore::new(config.settings.clone());
        let activation = Activation { cache_dir: config.cache_dir.clone(), data_dir: config.data_dir.clone(), store };
        let ollama = crate::ollama::Ollama::new(&config.ollama).host().to_string();
        let http = reqwest::Client::builder().no_proxy().build().expect("a plain HTTP client builds");
        Host {
            config,
            activation,
            ollama,
            http,
            slots: Mutex::default(),
            ops: tokio::sync::Mutex::new(()),
            changes: broadcast::channel(256).0,
            loaded_once: Default::default(),
            retiring: Mutex::default(),
        }
    }

    /// Stops `backend` once no answer holds it, in the background.
    fn retire(&self, backend: Arc<Backend>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(retire(backend, self.ollama.clone(), self.http.clone()))
    }

    /// Keeps a stopping runtime's task for the host to await before it ends.
    fn track(&self, task: tokio::task::JoinHandle<()>) {
        let mut retiring = self.retiring.lock().expect("retiring");
        retiring.retain(|t| !t.is_finished());
        retiring.push(task);
    }

    fn slots(&self) -> BTreeMap<ModelType, Arc<Slot>> {
        self.slots.lock().expect("slots").clone()
    }

    fn loaded_once(&self) -> bool {
        self.loaded_once.load(Ordering::Relaxed)
    }

    fn settings(&self) -> Settings {
        self.activation.store.load().map(|(s, _)| s).unwrap_or_default()
    }

    fn status(&self) -> Vec<LoadedModel> {
        self.slots().values().map(|s| s.view()).collect()
    }

    fn changed(&self, model_type: ModelType) {
        let loaded = self.slots().get(&model_type).map(|s| s.view());
        let _ = self.changes.send(RuntimeChange { model_type, loaded });
    }

    /// Writes each loaded type's endpoint into `active.json`.
    fn publish_endpoints(&self) {
        let endpoints = self.slots().iter().map(|(t, s)| (*t, s.view().endpoint)).collect();
        if let Err(e) = self.activation.set_endpoints(&endpoints) {
            tracing::warn!("could not write the endpoints into active.json: {e}");
        }
    }

    async fn connection(self: Arc<Self>, stream: tokio::net::UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let request: HostRequest = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => {
                    let reply: Result<HostReply, _> = Err(err(ErrorCode::InvalidInput, format!("bad request: {e}")));
                    let _ = write_line(&mut write, &reply).await;
                    continue;
                }
            };
            let reply = match request {
                HostRequest::Watch => {
                    let mut changes = self.changes.subscribe();
                    loop {
                        let change = match changes.recv().await {
                            Ok(c) => c,
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return,
                        };
                        if write_line(&mut write, &change).await.is_err() {
                            return;
                        }
                    }
                }
                HostRequest::Status => Ok(HostReply::Status(self.status())),
                HostRequest::Load { model_type, context, owner, owner_pid } => {
                    let _op = self.ops.lock().await;
                    // The last to load a model owns it: a load by `mm` keeps it after the app quits.
                    self.load(model_type, context, &owner).await.map(|_| {
                        let slot = self.slots().get(&model_type).cloned().expect("just loaded");
                        slot.update(|v| v.owner = owner.clone());
                        *slot.owner_pid.lock().expect("owner") = owner_pid;
                        HostReply::Loaded(Box::new(slot.view()))
                    })
                }
                HostRequest::Unload { model_type, owner } => {
                    Ok(HostReply::Unloaded(self.unload(model_type, owner.as_deref()).await))
                }
                HostRequest::Sync => {
                    self.sync().await;
                    Ok(HostReply::Synced)
                }
            };
            if write_line(&mut write, &reply).await.is_err() {
                return;
            }
        }
    }

    /// Loads the active model of `model_type` (under the ops lock): already loaded, the same answer; another model
    /// of the type loaded, a swap; a failure leaves what was serving.
    async fn load(
        &self,
        model_type: ModelType,
        context: Option<u64>,
        owner: &str,
    ) -> Result<LoadedModel, ErrorPayload> {
        let settings = self.settings();
        let entry =
            self.activation.entries(&settings).remove(&model_type).ok_or_else(|| super::nothing_active(model_type))?;
        let existing = self.slots().get(&model_type).cloned();
        if let Some(slot) = &existing {
            let view = slot.view();
            let same_context = context.is_none_or(|c| view.plan.as_ref().is_some_and(|p| p.context == c));
            let serving = matches!(view.state, RuntimeState::Ready | RuntimeState::Loading);
            if slot.current().is_some_and(|b| b.id == entry.id) && same_context && serving {
                return Ok(view);
            }
        }
        if existing.is_none() {
            self.evict_for(model_type, settings.max_loaded as usize).await;
        }
        let slot = match existing {
            Some(slot) => slot,
            None => self.open_slot(model_type, &entry, owner).await?,
        };
        let restarts = if slot.current().is_some_and(|b| b.id == entry.id) { slot.view().restarts } else { 0 };
        slot.update(|v| {
            if slot.current().is_none() {
                v.id = entry.id.clone();
                v.state = RuntimeState::Loading;
                v.error = None;
            }
        });
        self.changed(model_type);
        // A swap plans with the memory the model it replaces will give back.
        let reclaim = slot.current().and(slot.view().measured);
        match self.start(&entry, context, &settings, reclaim).await {
            Ok(backend) => {
                self.swap_in(&slot, backend, restarts);
                self.loaded_once.store(true, Ordering::Relaxed);
                self.publish_endpoints();
                self.changed(model_type);
                Ok(slot.view())
            }
            Err(e) => {
                if slot.current().is_none() {
                    self.slots.lock().expect("slots").remove(&model_type);
                    slot.close(Some(e.message.clone()));
                    self.publish_endpoints();
                } else {
                    let serving = slot.view().id;
                    tracing::warn!("loading {} failed; {serving} keeps serving: {}", entry.id, e.message);
                }
                self.changed(model_type);
                Err(match slot.current() {
                    Some(b) => err(e.code, format!("{}; {} keeps serving", e.message, b.id)),
                    None => e,
                })
            }
        }
    }

    /// Makes room for one more loaded type: the least recently used goes.
    async fn evict_for(&self, model_type: ModelType, max_loaded: usize) {
        let slots = self.slots();
        if slots.len() < max_loaded.max(1) {
            return;
        }
        let oldest = slots.iter().filter(|(t, _)| **t != model_type).min_by_key(|(_, s)| s.view().last_used);
        if let Some((t, _)) = oldest {
            tracing::info!("unloading {t} to keep at most {max_loaded} loaded");
            if let Some((_, Some(stopping))) = self.unload_type(*t) {
                self.track(stopping);
            }
        }
    }

    /// A new endpoint for `model_type`, on the port it had before when it is free.
    async fn open_slot(
        &self,
        model_type: ModelType,
        entry: &ActiveEntry,
        owner: &str,
    ) -> Result<Arc<Slot>, ErrorPayload> {
        let ports_file = runtime_dir(&self.config.data_dir).join("ports.json");
        let mut ports: BTreeMap<String, u16> =
            std::fs::read(&ports_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let remembered = ports.get(model_type.as_str()).copied().unwrap_or(0);
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", remembered)).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| err(ErrorCode::Io, format!("no local port for the {model_type} endpoint: {e}")))?,
        };
        let port = listener.local_addr().map_err(|e| err(ErrorCode::Io, e.to_string()))?.port();
        if port != remembered {
            ports.insert(model_type.as_str().to_string(), port);
            let _ = crate::disk::write_atomic(&ports_file, &serde_json::to_vec(&ports).expect("serialises"), 0o644);
        }
        let now = crate::format::now_unix();
        // The endpoint holds its slot weakly: dropping the slot stops it.
        let slot = Arc::new_cyclic(|me: &std::sync::Weak<Slot>| {
            let proxy = tokio::spawn(proxy::serve(listener, me.clone()));
            Slot {
                model_type,
                backend: watch::channel(None).0,
                view: Mutex::new(LoadedModel {
                    model_type,
                    id: entry.id.clone(),
                    runtime: runtime_of(entry),
                    state: RuntimeState::Loading,
                    endpoint: format!("http://127.0.0.1:{port}/v1"),
                    pid: None,
                    command: None,
                    plan: None,
                    estimate_bytes: 0,
                    measured: None,
                    requests: 0,
                    restarts: 0,
                    loaded_at: now,
                    last_used: now,
                    owner: owner.to_string(),
                    error: None,
                }),
                requests: AtomicU64::new(0),
                last_used: AtomicU64::new(now),
                owner_pid: Mutex::new(None),
                proxy,
            }
        });
        self.slots.lock().expect("slots").insert(model_type, slot.clone());
        Ok(slot)
    }

    /// Points the endpoint at `backend`; the runtime it replaces stops after its last answer.
    /// (Who owns it is the request's to say: the load request sets it once the load succeeds.)
    fn swap_in(&self, slot: &Arc<Slot>, backend: Arc<Backend>, restarts: u32) {
        let old = slot.backend.send_replace(Some(backend.clone()));
        let now = crate::format::now_unix();
        slot.update(|v| {
            v.id = backend.id.clone();
            v.runtime = if backend.process.is_some() { RuntimeKind::LlamaServer } else { RuntimeKind::Ollama };
            v.state = RuntimeState::Ready;
            v.pid = backend.process.as_ref().map(|p| p.pid);
            v.command = backend.process.as_ref().map(|p| p.command.clone());
            v.estimate_bytes = backend.plan.as_ref().map_or(v.estimate_bytes, |p| p.estimate_bytes);
            v.plan = backend.plan.clone();
            v.measured = None;
            v.restarts = restarts;
            v.loaded_at = now;
            v.error = None;
        });
        slot.touch();
        if let Some(old) = old.filter(|o| !Arc::ptr_eq(o, &backend)) {
            self.track(self.retire(old));
        }
    }

    /// Starts the runtime for `entry` and waits until it answers.
    async fn start(
        &self,
        entry: &ActiveEntry,
        context: Option<u64>,
        settings: &Settings,
        reclaim: Option<MemoryUse>,
    ) -> Result<Arc<Backend>, ErrorPayload> {
        if let Some(name) = entry.id.strip_prefix(crate::ollama::OLLAMA_PREFIX) {
            return self.start_ollama(entry, name).await;
        }
        let file =
            entry.primary_file.clone().filter(|f| f.to_ascii_lowercase().ends_with(".gguf")).ok_or_else(|| {
                err(
                    ErrorCode::InvalidInput,
                    format!(
                        "{} has no GGUF file: llama-server runs GGUF models (this one is {:?})",
                        entry.id, entry.format
                    ),
                )
            })?;
        let program = find_llama_server(settings)?;
        let (summary, hw) = {
            let (file, cache) = (PathBuf::from(&file), self.config.cache_dir.clone());
            tokio::task::spawn_blocking(move || (local::read_gguf(&file), hardware::probe(&cache)))
                .await
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?
        };
        let summary = summary.map_err(|e| err(ErrorCode::InvalidInput, format!("cannot read {file}: {e}")))?;
        let mut hw = hw;
        if let Some(back) = reclaim {
            hw.ram_available += back.ram;
            if let (Some(gpu), Some(freed)) = (hw.gpus.iter_mut().max_by_key(|g| g.vram_free), back.gpu) {
                gpu.vram_free += freed;
            }
        }
        let model = estimate::from_gguf(&summary, None);
        let plan = plan::plan(&model, &hw, settings.max_context, context)
            .map_err(|why| err(ErrorCode::InvalidInput, format!("{} cannot be loaded here: {why}", entry.id)))?;
        let port = free_port().map_err(|e| err(ErrorCode::Io, format!("no free local port: {e}")))?;
        let args = plan::llama_server_args(&file, port, &plan, &entry.id);
        let command = std::iter::once(program.display().to_string())
            .chain(args.iter().cloned())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ");
        // One log per start: a swap's new runtime does not write over the log of the one still serving.
        let log = runtime_dir(&self.config.data_dir).join(format!("llama-server-{}-{port}.log", entry.model_type));
        let out = std::fs::File::create(&log)
            .map_err(|e| err(ErrorCode::Io, format!("cannot write {}: {e}", log.display())))?;
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().map_err(|e| err(ErrorCode::Io, e.to_string()))?)
            .stderr(out)
            .kill_on_drop(true);
        // The runtime goes with the host, whatever ends it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        tracing::info!("starting {command}");
        let mut child =
            cmd.spawn().map_err(|e| err(ErrorCode::Io, format!("cannot start {}: {e}", program.display())))?;
        let pid = child.id().unwrap_or(0);
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(err(
                    ErrorCode::Io,
                    format!("llama-server exited ({status}) while loading {}: {}", entry.id, last_lines(&log)),
                ));
            }
            if self.health(&base).await == Some(true) {
                break;
            }
            if started.elapsed() > LOAD_TIMEOUT {
                let _ = child.kill().await;
                return Err(err(
                    ErrorCode::Io,
                    format!("llama-server did not become ready in {} s: {}", LOAD_TIMEOUT.as_secs(), last_lines(&log)),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::info!("{} ready on {base} in {} ms", entry.id, started.elapsed().as_millis());
        Ok(Arc::new(Backend {
            id: entry.id.clone(),
            base,
            ollama_name: None,
            file,
            plan: Some(plan),
            process: Some(Process { child: tokio::sync::Mutex::new(child), pid, command, log }),
        }))
    }

    /// Asks Ollama to load `name` and keep it loaded.
    async fn start_ollama(&self, entry: &ActiveEntry, name: &str) -> Result<Arc<Backend>, ErrorPayload> {
        keep_alive(&self.http, &self.ollama, name, -1).await?;
        let file = entry.primary_file.clone().unwrap_or_default();
        let estimate = tokio::task::spawn_blocking({
            let file = PathBuf::from(&file);
            move || local::read_gguf(&file).ok().map(|s| estimate::from_gguf(&s, None).total_bytes)
        })
        .await
        .ok()
        .flatten();
        Ok(Arc::new(Backend {
            id: entry.id.clone(),
            base: self.ollama.clone(),
            ollama_name: Some(name.to_string()),
            file,
            plan: estimate.map(|e| LaunchPlan {
                context: estimate::HEADLINE_CONTEXT.min(4096),
                gpu_layers: 0,
                layers: None,
                estimate_bytes: e,
                reason: "Ollama sizes it itself".into(),
            }),
            process: None,
        }))
    }

    /// Whether a llama-server answers `/health` with 200 (`Some(false)`: it answers, still loading).
    async fn health(&self, base: &str) -> Option<bool> {
        let res = self.http.get(format!("{base}/health")).timeout(Duration::from_secs(2)).send().await.ok()?;
        Some(res.status().is_success())
    }

    /// Unloads one type, or all (of `owner`, when named), and answers once their runtimes have stopped (after
    /// their last answers, without holding up other requests meanwhile); returns what was unloaded.
    async fn unload(&self, model_type: Option<ModelType>, owner: Option<&str>) -> Vec<LoadedModel> {
        let matches =
            |t: ModelType, s: &Slot| model_type.is_none_or(|m| m == t) && owner.is_none_or(|o| s.view().owner == o);
        self.unload_where(|t, s| matches(t, s)).await
    }

    /// Unloads each type `chosen` picks (asked under the ops lock), then waits for their runtimes to stop.
    async fn unload_where(&self, chosen: impl Fn(ModelType, &Slot) -> bool) -> Vec<LoadedModel> {
        let (out, stopping): (Vec<_>, Vec<_>) = {
            let _op = self.ops.lock().await;
            let picked: Vec<ModelType> = self.slots().iter().filter(|(t, s)| chosen(**t, s)).map(|(t, _)| *t).collect();
            picked.into_iter().filter_map(|t| self.unload_type(t)).unzip()
        };
        let _ = tokio::time::timeout(STOP_GRACE, async {
            for task in stopping.into_iter().flatten() {
                let _ = task.await;
            }
        })
        .await;
        out
    }

    /// Takes a type out of service (under the ops lock): its endpoint closed, its runtime stopping.
    fn unload_type(&self, model_type: ModelType) -> Option<(LoadedModel, Option<tokio::task::JoinHandle<()>>)> {
        let slot = self.slots.lock().expect("slots").remove(&model_type)?;
        let stopping = slot.close(None).map(|backend| self.retire(backend));
        let view = slot.view();
        self.publish_endpoints();
        self.changed(model_type);
        tracing::info!("unloaded {} ({model_type})", view.id);
        Some((view, stopping))
    }

    /// After a change of the active models: a loaded type whose active model changed is swapped, one no longer
    /// active is unloaded.
    async fn sync(&self) {
        let _op = self.ops.lock().await;
        let active = self.activation.entries(&self.settings());
        for (t, slot) in self.slots() {
            let view = slot.view();
            match active.get(&t) {
                None => {
                    if let Some((_, Some(stopping))) = self.unload_type(t) {
                        self.track(stopping);
                    }
                }
                Some(entry) if entry.id != view.id => {
                    if let Err(e) = self.load(t, None, &view.owner).await {
                        tracing::warn!("switching {t} to {} failed: {}", entry.id, e.message);
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Every second: each runtime's process and health; every five, memory, Ollama's list, the idle time-out.
    async fn monitor(self: Arc<Self>) {
        let mut failures: BTreeMap<ModelType, u32> = BTreeMap::new();
        let mut tick = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            tick += 1;
            let settings = if tick.is_multiple_of(5) { Some(self.settings()) } else { None };
            for (t, slot) in self.slots() {
                let before = slot.view();
                // Unloads wait for the ops lock in their own task (the monitor keeps watching the others), and
                // check again under it: a load may have changed the slot meanwhile.
                if owner_gone(&slot) {
                    tokio::spawn(self.clone().unload_if(t, owner_gone));
                    continue;
                }
                if let Some(idle) = settings.as_ref().map(|s| s.idle_unload_seconds).filter(|m| *m > 0) {
                    let idle_for = move |s: &Slot| crate::format::now_unix().saturating_sub(s.view().last_used) >= idle;
                    if idle_for(&slot) {
                        tokio::spawn(self.clone().unload_if(t, idle_for));
                        continue;
                    }
                }
                // Held for this look only: a runtime being retired waits until no one holds it.
                let Some(backend) = slot.current() else { continue };
                match &backend.process {
                    Some(process) => {
                        let exited = process.child.lock().await.try_wait().ok().flatten();
                        if let Some(status) = exited {
                            // Taken out of service here, so that the next look does not see it again.
                            slot.backend.send_replace(None);
                            let why = format!("llama-server exited ({status}): {}", last_lines(&process.log));
                            slot.update(|v| {
                                v.state = RuntimeState::Unhealthy;
                                v.error = Some(format!("{why}; restarting"));
                            });
                            self.changed(t);
                            tokio::spawn(self.clone().restart(t, backend.id.clone(), backend.plan.clone(), why));
                            continue;
                        }
                        let healthy = self.health(&backend.base).await;
                        let n = failures.entry(t).or_default();
                        *n = if healthy.is_some() { 0 } else { *n + 1 };
                        let state = match healthy {
                            Some(true) => RuntimeState::Ready,
                            Some(false) => RuntimeState::Loading,
                            None if *n >= HEALTH_FAILURES => RuntimeState::Unhealthy,
                            None => before.state,
                        };
                        slot.update(|v| {
                            v.state = state;
                            v.error = (state == RuntimeState::Unhealthy).then(|| "it stopped answering /health".into());
                        });
                        if tick % 5 == 1 {
                            if let Some(now) = memory::of_process(process.pid) {
                                slot.update(|v| v.measured = Some(memory::peak(v.measured, now)));
                                self.record(&slot, &backend);
                            }
                        }
                    }
                    None if tick % 5 == 1 => {
                        let name = backend.ollama_name.clone().unwrap_or_default();
                        match ollama_ps(&self.http, &self.ollama, &name).await {
                            Some(m) => {
                                slot.update(|v| {
                                    v.state = RuntimeState::Ready;
                                    v.error = None;
                                    v.measured = Some(memory::peak(v.measured, m));
                                });
                                self.record(&slot, &backend);
                            }
                            None => slot.update(|v| {
                                v.state = RuntimeState::Unhealthy;
                                v.error = Some(format!("Ollama at {} does not list {name} as loaded", self.ollama));
                            }),
                        }
                    }
                    None => {}
                }
                let after = slot.view();
                if (after.state, &after.error, after.measured) != (before.state, &before.error, before.measured) {
                    self.changed(t);
                }
            }
        }
    }

    /// Keeps the measurement of a loaded model beside its estimate.
    fn record(&self, slot: &Slot, backend: &Backend) {
        let view = slot.view();
        let (Some(measured), Some(plan)) = (view.measured, backend.plan.as_ref()) else { return };
        let m = Measurement {
            id: backend.id.clone(),
            file: backend.file.clone(),
            context: plan.context,
            gpu_layers: plan.gpu_layers,
            estimate_bytes: plan.estimate_bytes,
            measured,
            at: crate::format::now_unix(),
        };
        if let Err(e) = memory::record(&self.config.data_dir, m) {
            tracing::warn!("could not keep the measurement of {}: {e}", backend.id);
        }
    }

    /// Unloads `model_type` if `still` holds under the ops lock (the monitor's decisions, made without it).
    async fn unload_if(self: Arc<Self>, model_type: ModelType, still: impl Fn(&Slot) -> bool) {
        for gone in self.unload_where(|t, s| t == model_type && still(s)).await {
            tracing::info!("unloaded {} ({model_type}): its owner ended or it was idle", gone.id);
        }
    }

    /// A runtime that died (already out of service): started again after 1, 2, 4... s ([`RESTART_BACKOFF`]), up to
    /// the `restartAttempts` setting, each attempt under the ops lock and each wait without it.
    async fn restart(self: Arc<Self>, model_type: ModelType, id: String, plan: Option<LaunchPlan>, why: String) {
        let context = plan.map(|p| p.context);
        loop {
            let Some(slot) = self.slots().get(&model_type).cloned() else { return };
            let tries = slot.view().restarts;
            if tries >= self.settings().restart_attempts {
                slot.stop(Some(format!("{why} (restarted {tries} times; no more attempts)")));
                self.changed(model_type);
                return;
            }
            tokio::time::sleep(RESTART_BACKOFF.delay(tries + 1, None)).await;
            let _op = self.ops.lock().await;
            // Unloaded, or loaded again, while this waited.
            let Some(slot) = self.slots().get(&model_type).cloned().filter(|s| s.current().is_none()) else { return };
            let settings = self.settings();
            let entry = self.activation.entries(&settings).remove(&model_type).filter(|e| e.id == id);
            let Some(entry) = entry else {
                slot.stop(Some(format!("{why}; not restarted: it is no longer the active {model_type} model")));
                self.changed(model_type);
                return;
            };
            slot.update(|v| v.restarts = tries + 1);
            match self.start(&entry, context, &settings, None).await {
                Ok(backend) => {
                    self.swap_in(&slot, backend, tries + 1);
                    self.changed(model_type);
                    return;
                }
                Err(e) => tracing::warn!("restarting {} failed: {}", entry.id, e.message),
            }
        }
    }
}

/// The waits between a runtime's restarts: the retry policy of every transfer, from a second up to a minute (the
/// `restartAttempts` setting counts the attempts).
const RESTART_BACKOFF: crate::hub::retry::RetryPolicy =
    crate::hub::retry::RetryPolicy { attempts: u32::MAX, base: Duration::from_secs(1), max: Duration::from_secs(64) };

/// Stops a runtime once no answer holds it any more (SIGTERM, then SIGKILL after 5 s; Ollama: `keep_alive: 0`).
async fn retire(backend: Arc<Backend>, ollama: String, http: reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Arc::strong_count(&backend) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match &backend.process {
        Some(process) => {
            let mut child = process.child.lock().await;
            // A process already reaped is not signalled: its number may be another's now.
            if matches!(child.try_wait(), Ok(None)) {
                unsafe { libc::kill(process.pid as i32, libc::SIGTERM) };
                if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            }
            let _ = std::fs::remove_file(&process.log);
        }
        None => {
            if let Err(e) = keep_alive(&http, &ollama, backend.ollama_name.as_deref().unwrap_or_default(), 0).await {
                tracing::warn!("Ollama did not unload {}: {}", backend.id, e.message);
            }
        }
    }
}

/// `POST /api/generate {model, keep_alive}` with no prompt: loads (−1: for good) or unloads (0) a model.
async fn keep_alive(http: &reqwest::Client, base: &str, name: &str, keep: i64) -> Result<(), ErrorPayload> {
    let body = serde_json::json!({"model": name, "keep_alive": keep});
    // Loading a large model takes a while; unloading does not.
    let limit = if keep == 0 { Duration::from_secs(30) } else { LOAD_TIMEOUT };
    let res = http.post(format!("{base}/api/generate")).json(&body).timeout(limit).send().await.map_err(|e| {
        err(ErrorCode::Network, format!("Ollama at {base} did not answer: {e}. Start it (ollama serve) and try again"))
    })?;
    if res.status().is_success() {
        return Ok(());
    }
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or(text);
    let code = if status == reqwest::StatusCode::NOT_FOUND { ErrorCode::NotFound } else { ErrorCode::Network };
    Err(err(code, format!("Ollama could not {} {name}: {message}", if keep == 0 { "unload" } else { "load" })))
}

/// What Ollama's `/api/ps` says `name` takes, when it is loaded.
async fn ollama_ps(http: &reqwest::Client, base: &str, name: &str) -> Option<MemoryUse> {
    let res = http.get(format!("{base}/api/ps")).timeout(Duration::from_secs(2)).send().await.ok()?;
    let body: serde_json::Value = res.json().await.ok()?;
    let model = body["models"].as_array()?.iter().find(|m| m["name"] == name || m["model"] == name)?;
    let size = model["size"].as_u64().unwrap_or(0);
    let vram = model["size_vram"].as_u64().unwrap_or(0);
    Some(MemoryUse { ram: size.saturating_sub(vram), gpu: (vram > 0).then_some(vram) })
}

fn runtime_of(entry: &ActiveEntry) -> RuntimeKind {
    if entry.id.starts_with(crate::ollama::OLLAMA_PREFIX) {
        RuntimeKind::Ollama
    } else {
        RuntimeKind::LlamaServer
    }
}

/// `llama-server`: the settings' path, else `PATH`.
pub fn find_llama_server(settings: &Settings) -> Result<PathBuf, ErrorPayload> {
    if let Some(path) = settings.llama_server.as_deref().filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(err(
                ErrorCode::NotFound,
                format!("llama-server is not at {} (the llamaServer setting)", path.display()),
            ))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("llama-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            err(
                ErrorCode::NotFound,
                "llama-server was not found on PATH: install llama.cpp, or set its path (mm config set llamaServer PATH)",
            )
        })
}

/// Whether the app (or `mm serve`) that loaded a model has ended.
fn owner_gone(slot: &Slot) -> bool {
    slot.owner_pid.lock().expect("owner").is_some_and(|pid| !alive(pid))
}

/// Whether a process runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn quote(arg: String) -> String {
    if arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,".contains(c)) {
        arg
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The last lines of a runtime's log, for an error message.
fn last_lines(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        format!("(nothing in {})", log.display())
    } else {
        format!("{tail} (log: {})", log.display())
    }
}

async fn write_line<T: serde::Serialize>(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    value: &T,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).expect("serialises");
    line.push(b'\n');
    write.write_all(&line).await
}
