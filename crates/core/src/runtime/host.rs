//! The runtime host: the process that owns the loaded models (see the module above for what it does). A face's
//! program becomes the host when started with `MM_RUNTIME_HOST` set ([`run_if_asked`], first thing in `main`);
//! [`super::RuntimeClient`] starts it so, detached, and talks to it over its socket.

use super::alias::{self, Alias};
use super::plan::{self, LaunchPlan};
use super::process::{Backend, Keep, Lease, Process, Spawned};
use super::router::Router;
use super::scheduler::{self, Budget, Decision, Resident};
use super::{runtime_dir, socket_path, Acquired, HostReply, HostRequest, LoadedModel, RuntimeChange, Target};
use super::{RuntimeKind, RuntimeState};
use crate::activation::Activation;
use crate::compat::measured::{self as memory, Measurement, MemoryUse};
use crate::compat::{estimate, hardware, local};
use crate::error::{ErrorCode, ErrorPayload};
use crate::model::ModelType;
use crate::settings::{Settings, SettingsStore};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, Notify};

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
    // Private before the socket is bound in it: its keys and socket are this user's.
    crate::paths::private_dir(&dir)?;
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
    let host = Host::new(config);
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
                // Nothing served (a model whose restarts are spent serves nothing) and nothing being loaded.
                // A stopped model stays listed a while, with why, before the host goes; a type's endpoint with
                // nothing loaded behind it keeps the host that long too.
                let processes = host.router.all();
                let quiet = processes.iter().all(|p| p.state() == RuntimeState::Stopped);
                let unloaded = processes.is_empty() && host.aliases().is_empty() && host.loaded_once();
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
    let _ = host.unload(None, None, None).await;
    // The runtimes stop after their last answers; then the host may go.
    host.retiring.close();
    let _ = tokio::time::timeout(STOP_GRACE, host.retiring.wait()).await;
    tracing::info!("runtime host {} done", std::process::id());
    drop(lock);
    Ok(())
}

/// How long a request waits for its model to load (and for room to load it).
const WAIT_FOR_LOAD: Duration = Duration::from_secs(600);
/// How long a load waits for busy models to make room, before it is refused with why.
const WAIT_FOR_ROOM: Duration = Duration::from_secs(120);
/// Loads waiting for room at once; one more is refused at once.
const MAX_WAITING: usize = 16;

struct Host {
    config: HostConfig,
    activation: Activation,
    ollama: String,
    http: reqwest::Client,
    /// Every model loaded, loading or stopped, by id.
    router: Router,
    /// The types' own endpoints.
    aliases: Mutex<BTreeMap<ModelType, Arc<Alias>>>,
    /// One room decision (and unload choice) at a time.
    ops: tokio::sync::Mutex<()>,
    /// Told when an answer ends or a model stops: the loads waiting for room look again.
    room: Arc<Notify>,
    /// Loads waiting for room now.
    waiting: AtomicUsize,
    changes: broadcast::Sender<RuntimeChange>,
    loaded_once: AtomicBool,
    /// Runtimes swapped out or unloaded, stopping once their last answer is sent; awaited before the host ends.
    retiring: tokio_util::task::TaskTracker,
    me: Weak<Host>,
}

fn err(code: ErrorCode, message: impl Into<String>) -> ErrorPayload {
    ErrorPayload::new(code, message)
}

/// How a model is asked for.
struct Ask {
    /// A context the user named (an explicit load only).
    context: Option<u64>,
    /// `mm load`: it may start a stopped model again, and change its context; the asker owns it.
    explicit: bool,
    owner: String,
    owner_pid: Option<u32>,
    keep_alive: Option<i64>,
}

/// The host's leases, for the types' endpoints.
struct TypeLeases(Weak<Host>);

impl alias::Leases for TypeLeases {
    fn lease(
        &self,
        model_type: ModelType,
        load: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Lease, String>> + Send>> {
        let host = self.0.clone();
        Box::pin(async move {
            let host = host.upgrade().ok_or("the runtime host is stopping")?;
            let alias = host.aliases().get(&model_type).cloned().ok_or("this endpoint was closed")?;
            let target = alias.serving();
            if !load {
                let process = host.router.get(&target.id).ok_or_else(|| format!("{} is not loaded", target.id))?;
                let mut lease = process.lease(None).ok_or_else(|| format!("{} is not ready", target.id))?;
                lease.counted = false;
                return Ok(lease);
            }
            let ask = Ask { context: None, explicit: false, owner: "serve".into(), owner_pid: None, keep_alive: None };
            host.acquire(&target, &ask).await.map_err(|e| e.message)
        })
    }
}

impl Host {
    fn new(config: HostConfig) -> Arc<Host> {
        let store = SettingsStore::new(config.settings.clone());
        let activation = Activation { cache_dir: config.cache_dir.clone(), data_dir: config.data_dir.clone(), store };
        let ollama = crate::ollama::Ollama::new(&config.ollama).host().to_string();
        let http = reqwest::Client::builder().no_proxy().build().expect("a plain HTTP client builds");
        Arc::new_cyclic(|me| Host {
            config,
            activation,
            ollama,
            http,
            router: Router::default(),
            aliases: Mutex::default(),
            ops: tokio::sync::Mutex::new(()),
            room: Arc::new(Notify::new()),
            waiting: AtomicUsize::new(0),
            changes: broadcast::channel(256).0,
            loaded_once: Default::default(),
            retiring: tokio_util::task::TaskTracker::new(),
            me: me.clone(),
        })
    }

    fn me(&self) -> Arc<Host> {
        self.me.upgrade().expect("the host lives while it works")
    }

    /// Stops `backend` once no answer holds it, in the background; the host awaits it before it ends.
    fn retire(&self, backend: Arc<Backend>) -> tokio::task::JoinHandle<()> {
        self.retiring.spawn(retire(backend, self.ollama.clone(), self.http.clone()))
    }

    fn aliases(&self) -> BTreeMap<ModelType, Arc<Alias>> {
        self.aliases.lock().expect("aliases").clone()
    }

    fn loaded_once(&self) -> bool {
        self.loaded_once.load(Ordering::Relaxed)
    }

    fn settings(&self) -> Settings {
        self.activation.store.load().map(|(s, _)| s).unwrap_or_default()
    }

    /// A model as `mm ps` shows it: its view, and what follows from the settings and the endpoints.
    fn describe(&self, process: &Process, settings: &Settings) -> LoadedModel {
        let mut v = process.view();
        v.pinned = settings.pinned.iter().any(|p| p == process.id());
        v.endpoint = self.aliases().values().find(|a| a.serving().id == process.id()).map(|a| a.endpoint.clone());
        v.expires_at = match (v.pinned, *process.keep.lock().expect("keep")) {
            (true, _) | (_, Keep::Forever) => None,
            (_, Keep::Until(t)) => Some(t),
            (_, Keep::Default) => {
                (settings.idle_unload_seconds > 0).then(|| v.last_used.saturating_add(settings.idle_unload_seconds))
            }
        };
        v
    }

    fn status(&self) -> Vec<LoadedModel> {
        let settings = self.settings();
        self.router.all().iter().map(|p| self.describe(p, &settings)).collect()
    }

    fn changed(&self, process: &Process) {
        let loaded = self.router.get(process.id()).map(|p| self.describe(&p, &self.settings()));
        let _ = self.changes.send(RuntimeChange { id: process.id().to_string(), loaded });
    }

    /// Writes each type's endpoint into `active.json`.
    fn publish_endpoints(&self) {
        let endpoints = self.aliases().iter().map(|(t, a)| (*t, a.endpoint.clone())).collect();
        if let Err(e) = self.activation.set_endpoints(&endpoints) {
            tracing::warn!("could not write the endpoints into active.json: {e}");
        }
    }

    async fn connection(self: Arc<Self>, stream: tokio::net::UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        while let Some(line) = read_line(&mut lines).await {
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
                HostRequest::Acquire { target, keep_alive, owner, owner_pid } => {
                    let started = Instant::now();
                    let ask = Ask { context: None, explicit: false, owner, owner_pid, keep_alive };
                    match self.acquire(&target, &ask).await {
                        Ok(lease) => {
                            let acquired = Acquired {
                                base: lease.backend.base.clone(),
                                ollama_name: lease.backend.ollama_name.clone(),
                                api_key: lease.backend.api_key.clone(),
                                waited_ms: started.elapsed().as_millis() as u64,
                                adapters: lease.backend.adapters.clone(),
                                loaded: lease.process.view(),
                            };
                            let reply: Result<HostReply, ErrorPayload> = Ok(HostReply::Acquired(Box::new(acquired)));
                            if write_line(&mut write, &reply).await.is_err() {
                                return;
                            }
                            // Held until the face says its answer was sent (the connection then serves its next
                            // request), or closes the connection.
                            loop {
                                let line = match read_line(&mut lines).await {
                                    Some(line) => line,
                                    None => return,
                                };
                                if matches!(serde_json::from_str(&line), Ok(HostRequest::Release)) {
                                    break;
                                }
                            }
                            drop(lease);
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
                // Nothing is held on this connection: nothing to let go.
                HostRequest::Release => continue,
                HostRequest::Status => Ok(HostReply::Status(self.status())),
                HostRequest::Load { model_type, context, owner, owner_pid } => {
                    self.load_type(model_type, context, owner, owner_pid).await.map(|m| HostReply::Loaded(Box::new(m)))
                }
                HostRequest::Unload { model_type, id, owner } => {
                    self.unload(model_type, id.as_deref(), owner.as_deref()).await.map(HostReply::Unloaded)
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

    /// A hold on `target` for one request: at once when it is ready, else once its load (started now, or the one
    /// in progress, which every request for it joins) is done. The load goes on if the asker goes away.
    async fn acquire(&self, target: &Target, ask: &Ask) -> Result<Lease, ErrorPayload> {
        let deadline = Instant::now() + WAIT_FOR_LOAD;
        // The load this request waits for: its failure is this request's answer.
        let mut joined: Option<Arc<Process>> = None;
        loop {
            if let Some(load) = joined.as_ref().filter(|p| p.state() == RuntimeState::Stopped) {
                return Err(unavailable(&load.view()));
            }
            let (process, created) = self.router.get_or_insert(&target.id, || self.new_process(target, ask));
            if created {
                tokio::spawn(self.me().bring_up(process.clone(), ask.context));
                self.changed(&process);
            }
            let view = process.view();
            // Loaded from another file or for another role (its type changed): unloaded, then loaded as asked.
            if !process.target.serves(target) && !created {
                if let Some(task) = self.drain(process.clone(), "(asked for with another file or type)") {
                    let _ = task.await;
                }
                continue;
            }
            match view.state {
                // Its load settings changed since it started: started again, once its answers are sent.
                RuntimeState::Ready if settings_changed(&view, target, &self.settings()) => {
                    if let Some(task) = self.drain(process.clone(), "(its load settings changed)") {
                        let _ = task.await;
                    }
                    continue;
                }
                RuntimeState::Ready => {
                    let other_context = ask.context.is_some_and(|c| view.plan.as_ref().is_some_and(|p| p.context != c));
                    if ask.explicit && other_context {
                        self.reload(&process, ask.context).await?;
                        continue;
                    }
                    if let Some(mut lease) = process.lease(ask.keep_alive) {
                        if ask.explicit {
                            // The last to load a model owns it: a load by `mm` keeps it after the app quits.
                            lease.counted = false;
                            process.update(|v| v.owner = ask.owner.clone());
                            *process.owner_pid.lock().expect("owner") = ask.owner_pid;
                        }
                        return Ok(lease);
                    }
                }
                RuntimeState::Stopped if ask.explicit && !created => {
                    // Its restarts were spent: an explicit load starts it again.
                    if process.advance(RuntimeState::Loading, None) {
                        process.admitted.store(false, Ordering::SeqCst);
                        tokio::spawn(self.me().bring_up(process.clone(), ask.context));
                    }
                    joined = Some(process.clone());
                }
                RuntimeState::Stopped => return Err(unavailable(&view)),
                RuntimeState::Loading | RuntimeState::Unhealthy => joined = Some(process.clone()),
                // Being unloaded: once it is gone, this request loads it again.
                RuntimeState::Draining => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(err(
                    ErrorCode::Network,
                    format!(
                        "{} was not ready in {} s: {}",
                        target.id,
                        WAIT_FOR_LOAD.as_secs(),
                        unavailable(&view).message
                    ),
                ));
            }
            process.changed(left.min(Duration::from_secs(1))).await;
        }
    }

    fn new_process(&self, target: &Target, ask: &Ask) -> Process {
        let now = crate::format::now_unix();
        let view = LoadedModel {
            model_type: target.model_type,
            id: target.id.clone(),
            runtime: target.runtime,
            state: RuntimeState::Loading,
            endpoint: None,
            pid: None,
            command: None,
            plan: None,
            estimate_bytes: 0,
            measured: None,
            need_bytes: 0,
            requests: 0,
            busy: 0,
            pinned: false,
            expires_at: None,
            restarts: 0,
            loaded_at: now,
            last_used: now,
            owner: ask.owner.clone(),
            error: None,
        };
        let process = Process::new(target.clone(), view, self.room.clone());
        *process.owner_pid.lock().expect("owner") = ask.owner_pid;
        process
    }

    /// A model's load, in its own task (a request that goes away does not end it): its plan, room for it, its
    /// runtime started; a failure stops it with why, for every request waiting on it.
    async fn bring_up(self: Arc<Self>, process: Arc<Process>, context: Option<u64>) {
        let id = process.id().to_string();
        match self.start_with_room(&process, context).await {
            Ok(backend) => match process.serve(backend, 0) {
                Ok(_) => {
                    self.loaded_once.store(true, Ordering::Relaxed);
                    tracing::info!("{id} is ready");
                }
                // Unloaded while it loaded.
                Err(backend) => {
                    drop(self.retire(backend));
                }
            },
            Err(e) => {
                tracing::warn!("loading {id} failed: {}", e.message);
                self.router.remove(&process);
                process.advance(RuntimeState::Stopped, Some(e.message));
            }
        }
        self.changed(&process);
    }

    /// The plan, the room the scheduler makes for it, and the runtime started.
    async fn start_with_room(
        &self,
        process: &Arc<Process>,
        context: Option<u64>,
    ) -> Result<Arc<Backend>, ErrorPayload> {
        let settings = self.settings();
        let target = &process.target;
        // What idle models could give back: the plan may count on it (the scheduler unloads them if so).
        let reclaim: u64 = self
            .router
            .all()
            .iter()
            .filter(|p| p.id() != target.id && p.view().busy == 0)
            .filter_map(|p| p.view().measured)
            .map(|m| m.ram + m.gpu.unwrap_or(0))
            .sum();
        let plan = self.plan(target, context, &settings, reclaim).await?;
        let measured = memory::of_model(&self.config.data_dir, &target.id)
            .filter(|m| {
                // The same file, context, layers and cache (the estimate says which cache).
                Some(&m.file) == target.file.as_ref()
                    && (m.context, m.gpu_layers, m.estimate_bytes)
                        == (plan.context, plan.gpu_layers, plan.estimate_bytes)
            })
            .map(|m| m.measured_bytes());
        let need = scheduler::need(plan.estimate_bytes, measured);
        process.update(|v| {
            v.estimate_bytes = plan.estimate_bytes;
            v.plan = Some(plan.clone());
            v.need_bytes = need;
        });
        self.make_room(process, need).await?;
        process.update(|v| v.error = None);
        self.start(target, &plan, &settings).await
    }

    /// Waits until the scheduler says `need` bytes fit, and unloads what it chose to make room.
    async fn make_room(&self, process: &Arc<Process>, need: u64) -> Result<(), ErrorPayload> {
        let started = Instant::now();
        let mut counted = None;
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let stopping = {
                let _op = self.ops.lock().await;
                if process.state() != RuntimeState::Loading {
                    return Err(err(
                        ErrorCode::Cancelled,
                        format!("{} was unloaded while it waited to load", process.id()),
                    ));
                }
                let settings = self.settings();
                let residents = self.residents(process, &settings);
                let budget = self.budget(&settings).await;
                match scheduler::decide(process.id(), need, &residents, &budget) {
                    Decision::Load { unload } => {
                        process.admitted.store(true, Ordering::SeqCst);
                        let why = format!("to make room for {}", process.id());
                        let chosen: Vec<_> = unload.iter().filter_map(|id| self.router.get(id)).collect();
                        Some(chosen.into_iter().filter_map(|p| self.drain(p, &why)).collect::<Vec<_>>())
                    }
                    Decision::Refuse { why } => return Err(err(ErrorCode::InsufficientSpace, why)),
                    Decision::Wait { why } => {
                        if counted.is_none() {
                            if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
                                self.waiting.fetch_sub(1, Ordering::SeqCst);
                                return Err(err(
                                    ErrorCode::InsufficientSpace,
                                    format!("{why}, and {MAX_WAITING} loads wait already"),
                                ));
                            }
                            counted = Some(Waiting(&self.waiting));
                        }
                        if started.elapsed() > WAIT_FOR_ROOM {
                            return Err(err(
                                ErrorCode::InsufficientSpace,
                                format!("{why} (waited {} s)", WAIT_FOR_ROOM.as_secs()),
                            ));
                        }
                        process.update(|v| v.error = Some(why));
                        None
                    }
                }
            };
            match stopping {
                Some(tasks) => {
                    // Their memory is free once they have stopped.
                    for task in tasks {
                        let _ = task.await;
                    }
                    return Ok(());
                }
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
                }
            }
        }
    }

    /// The other models, as the scheduler weighs them.
    fn residents(&self, except: &Process, settings: &Settings) -> Vec<Resident> {
        self.router
            .all()
            .iter()
            .filter(|p| p.id() != except.id() && p.state() != RuntimeState::Stopped)
            // A model waiting for room takes none yet.
            .filter(|p| p.state() != RuntimeState::Loading || p.admitted.load(Ordering::SeqCst))
            .map(|p| {
                let v = p.view();
                Resident {
                    id: v.id.clone(),
                    need: v.need_bytes,
                    using: v.measured.map_or(0, |m| m.ram + m.gpu.unwrap_or(0)),
                    busy: v.busy > 0 || v.state != RuntimeState::Ready,
                    pinned: settings.pinned.contains(&v.id),
                    last_used: v.last_used,
                }
            })
            .collect()
    }

    /// The memory free now, and what the settings keep.
    async fn budget(&self, settings: &Settings) -> Budget {
        let cache = self.config.cache_dir.clone();
        let hw = tokio::task::spawn_blocking(move || hardware::probe(&cache)).await.ok();
        let free = hw.map_or(0, |hw| hw.ram_available + hw.gpus.iter().map(|g| g.vram_free).max().unwrap_or(0));
        Budget {
            free,
            reserve: settings.memory_reserve,
            limit: settings.memory_limit,
            max_loaded: settings.max_loaded as usize,
        }
    }

    /// Unloads `process` once its last answer is sent (no new request reaches it meanwhile); the task ends
    /// when its runtime has stopped. None when it is unloading already.
    fn drain(&self, process: Arc<Process>, why: &str) -> Option<tokio::task::JoinHandle<()>> {
        if process.state() == RuntimeState::Stopped {
            self.router.remove(&process);
            self.changed(&process);
            return None;
        }
        if !process.advance(RuntimeState::Draining, None) {
            return None;
        }
        tracing::info!("unloading {} {why}", process.id());
        self.changed(&process);
        let host = self.me();
        Some(tokio::spawn(async move {
            process.drained().await;
            if let Some(backend) = process.take() {
                let _ = host.retire(backend).await;
            }
            // Out of the router first: a request waiting on it loads it again.
            host.router.remove(&process);
            process.advance(RuntimeState::Stopped, None);
            host.changed(&process);
            host.publish_endpoints();
        }))
    }

    /// Starts `process` again with another context, beside the runtime serving it, which stops after its last
    /// answer (an explicit load that names a context).
    async fn reload(&self, process: &Arc<Process>, context: Option<u64>) -> Result<(), ErrorPayload> {
        let settings = self.settings();
        let own = process.view().measured.map_or(0, |m| m.ram + m.gpu.unwrap_or(0));
        let plan = self.plan(&process.target, context, &settings, own).await?;
        let backend = self.start(&process.target, &plan, &settings).await?;
        match process.serve(backend, 0) {
            Ok(Some(old)) => {
                drop(self.retire(old));
            }
            Ok(None) => {}
            Err(backend) => {
                drop(self.retire(backend));
            }
        }
        self.changed(process);
        Ok(())
    }

    /// Loads the active model of `model_type` on the type's endpoint (opened now, on the port it had before when
    /// it is free): already serving it, the same answer; another model on it, a swap (the new one loaded beside,
    /// the old unloaded once its last answer is sent); a failure leaves what was serving.
    async fn load_type(
        &self,
        model_type: ModelType,
        context: Option<u64>,
        owner: String,
        owner_pid: Option<u32>,
    ) -> Result<LoadedModel, ErrorPayload> {
        let settings = self.settings();
        let entry =
            self.activation.entries(&settings).remove(&model_type).ok_or_else(|| super::nothing_active(model_type))?;
        let target = Target::from(&entry);
        let existing = self.aliases().get(&model_type).cloned();
        let before = existing.as_ref().map(|a| a.serving());
        let ask = Ask { context, explicit: true, owner, owner_pid, keep_alive: None };
        let lease = match self.acquire(&target, &ask).await {
            Ok(lease) => lease,
            Err(e) => {
                let serving = before.filter(|b| b.id != target.id && self.router.get(&b.id).is_some());
                return Err(match serving {
                    Some(b) => err(e.code, format!("{}; {} keeps serving", e.message, b.id)),
                    None => e,
                });
            }
        };
        match &existing {
            Some(alias) => *alias.serving.lock().expect("alias") = target.clone(),
            None => {
                let alias = self.open_alias(model_type, &target).await?;
                self.aliases.lock().expect("aliases").insert(model_type, alias);
            }
        }
        self.publish_endpoints();
        // The model it replaced goes, unless another type's endpoint serves it or it is pinned.
        if let Some(old) = before.filter(|b| b.id != target.id) {
            let elsewhere = self.aliases().values().any(|a| a.serving().id == old.id);
            let pinned = settings.pinned.contains(&old.id);
            if let Some(process) = self.router.get(&old.id).filter(|_| !elsewhere && !pinned) {
                if let Some(task) = self.drain(process, &format!("({model_type} now serves {})", target.id)) {
                    drop(task);
                }
            }
        }
        let view = self.describe(&lease.process, &self.settings());
        self.changed(&lease.process);
        Ok(view)
    }

    /// A type's endpoint, on the port it had before when it is free.
    async fn open_alias(&self, model_type: ModelType, target: &Target) -> Result<Arc<Alias>, ErrorPayload> {
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
        let leases = Arc::new(TypeLeases(self.me.clone()));
        Alias::open(listener, model_type, target.clone(), leases)
            .map(Arc::new)
            .map_err(|e| err(ErrorCode::Io, format!("the {model_type} endpoint: {e}")))
    }

    /// Unloads one model, one type (its endpoint closed), or everything (of `owner`, when named: its endpoints
    /// stay), and answers once their runtimes have stopped (after their last answers).
    async fn unload(
        &self,
        model_type: Option<ModelType>,
        id: Option<&str>,
        owner: Option<&str>,
    ) -> Result<Vec<LoadedModel>, ErrorPayload> {
        let settings = self.settings();
        let (out, stopping) = {
            let _op = self.ops.lock().await;
            let chosen: Vec<Arc<Process>> = match id {
                Some(id) => vec![self
                    .router
                    .get(id)
                    .ok_or_else(|| err(ErrorCode::NotFound, format!("{id} is not loaded (mm ps lists what is)")))?],
                None => self
                    .router
                    .all()
                    .into_iter()
                    .filter(|p| model_type.is_none_or(|t| p.target.model_type == t))
                    .filter(|p| owner.is_none_or(|o| p.view().owner == o))
                    .collect(),
            };
            if owner.is_none() && id.is_none() {
                let mut aliases = self.aliases.lock().expect("aliases");
                aliases.retain(|t, _| model_type.is_some_and(|m| m != *t));
            }
            let out: Vec<LoadedModel> = chosen.iter().map(|p| self.describe(p, &settings)).collect();
            let stopping: Vec<_> = chosen.into_iter().filter_map(|p| self.drain(p, "(asked)")).collect();
            (out, stopping)
        };
        self.publish_endpoints();
        let _ = tokio::time::timeout(STOP_GRACE, async {
            for task in stopping {
                let _ = task.await;
            }
        })
        .await;
        Ok(out)
    }

    /// After a change of the active models: a type's endpoint whose active model changed is swapped, one whose
    /// type is no longer active is closed and its model unloaded.
    async fn sync(&self) {
        let active = self.activation.entries(&self.settings());
        for (t, alias) in self.aliases() {
            let serving = alias.serving();
            match active.get(&t) {
                None => {
                    self.aliases.lock().expect("aliases").remove(&t);
                    self.publish_endpoints();
                    if let Some(process) = self.router.get(&serving.id) {
                        let _ = self.drain(process, &format!("(no {t} model is active)"));
                    }
                }
                Some(entry) if entry.id != serving.id => {
                    let (owner, owner_pid) = match self.router.get(&serving.id) {
                        Some(p) => (p.view().owner, *p.owner_pid.lock().expect("owner")),
                        None => ("mm".to_string(), None),
                    };
                    if let Err(e) = self.load_type(t, None, owner, owner_pid).await {
                        tracing::warn!("switching {t} to {} failed: {}", entry.id, e.message);
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Every second: each runtime's process and health; every five, memory, Ollama's list, the idle time-out.
    async fn monitor(self: Arc<Self>) {
        let mut failures: BTreeMap<String, u32> = BTreeMap::new();
        let mut tick = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            tick += 1;
            let settings = self.settings();
            let now = crate::format::now_unix();
            for process in self.router.all() {
                let before = process.view();
                if !matches!(before.state, RuntimeState::Ready | RuntimeState::Unhealthy) {
                    continue;
                }
                let described = self.describe(&process, &settings);
                if owner_gone(&process) {
                    let _ = self.drain(process, "(the app or mm serve that loaded it ended)");
                    continue;
                }
                if before.busy == 0 && described.expires_at.is_some_and(|t| now >= t) {
                    let _ = self.drain(process, "(idle)");
                    continue;
                }
                // Held for this look only: a runtime being retired waits until no one holds it.
                let Some(backend) = process.current() else { continue };
                match &backend.spawned {
                    Some(spawned) => {
                        let exited = spawned.child.lock().await.try_wait().ok().flatten();
                        if let Some(status) = exited {
                            // Taken out of service here, so that the next look does not see it again.
                            process.take();
                            let why = format!("llama-server exited ({status}): {}", last_lines(&spawned.log));
                            process.advance(RuntimeState::Unhealthy, Some(format!("{why}; restarting")));
                            self.changed(&process);
                            tokio::spawn(self.clone().restart(process.clone(), backend.plan.clone(), why));
                            continue;
                        }
                        let healthy = self.health(&backend.base).await;
                        let n = failures.entry(process.id().to_string()).or_default();
                        *n = if healthy.is_some() { 0 } else { *n + 1 };
                        match healthy {
                            Some(true) if before.state == RuntimeState::Unhealthy => {
                                process.advance(RuntimeState::Ready, None);
                            }
                            None if *n >= HEALTH_FAILURES && before.state == RuntimeState::Ready => {
                                process.advance(RuntimeState::Unhealthy, Some("it stopped answering /health".into()));
                            }
                            _ => {}
                        }
                        if tick % 5 == 1 {
                            if let Some(now) = memory::of_process(spawned.pid) {
                                self.measured(&process, &backend, now);
                            }
                        }
                    }
                    None if tick % 5 == 1 => {
                        let name = backend.ollama_name.clone().unwrap_or_default();
                        match ollama_ps(&self.http, &self.ollama, &name).await {
                            Some(m) => {
                                if before.state == RuntimeState::Unhealthy {
                                    process.advance(RuntimeState::Ready, None);
                                }
                                self.measured(&process, &backend, m);
                            }
                            None => {
                                let why = format!("Ollama at {} does not list {name} as loaded", self.ollama);
                                process.advance(RuntimeState::Unhealthy, Some(why));
                            }
                        }
                    }
                    None => {}
                }
                let after = process.view();
                if (after.state, &after.error, after.measured) != (before.state, &before.error, before.measured) {
                    self.changed(&process);
                }
            }
        }
    }

    /// A new reading of what a model takes: its peak, its need from it, and the measurement kept beside the
    /// estimate.
    fn measured(&self, process: &Process, backend: &Backend, now: MemoryUse) {
        process.update(|v| {
            let peak = memory::peak(v.measured, now);
            v.measured = Some(peak);
            v.need_bytes = scheduler::need(v.estimate_bytes, Some(peak.ram + peak.gpu.unwrap_or(0)));
        });
        let view = process.view();
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

    /// A runtime that died (already out of service): started again after 1, 2, 4... s ([`RESTART_BACKOFF`]), up to
    /// the `restartAttempts` setting.
    async fn restart(self: Arc<Self>, process: Arc<Process>, plan: Option<LaunchPlan>, why: String) {
        loop {
            let tries = process.view().restarts;
            if tries >= self.settings().restart_attempts {
                process
                    .advance(RuntimeState::Stopped, Some(format!("{why} (restarted {tries} times; no more attempts)")));
                self.changed(&process);
                return;
            }
            tokio::time::sleep(RESTART_BACKOFF.delay(tries + 1, None)).await;
            // Unloaded, or loaded again, while this waited.
            if process.state() != RuntimeState::Unhealthy || process.current().is_some() {
                return;
            }
            let settings = self.settings();
            process.update(|v| v.restarts = tries + 1);
            let plan = match plan.clone() {
                Some(plan) => Ok(plan),
                None => self.plan(&process.target, None, &settings, 0).await,
            };
            match plan {
                Ok(plan) => match self.start(&process.target, &plan, &settings).await {
                    Ok(backend) => {
                        if let Err(backend) = process.serve(backend, tries + 1) {
                            drop(self.retire(backend));
                        }
                        self.changed(&process);
                        return;
                    }
                    Err(e) => tracing::warn!("restarting {} failed: {}", process.id(), e.message),
                },
                Err(e) => tracing::warn!("restarting {} failed: {}", process.id(), e.message),
            }
        }
    }

    /// How `target` is started: for a GGUF model the context and GPU layers from the estimate against the memory
    /// free now (and `reclaim` bytes the idle models could give back); for Ollama, its estimate only.
    async fn plan(
        &self,
        target: &Target,
        context: Option<u64>,
        settings: &Settings,
        reclaim: u64,
    ) -> Result<LaunchPlan, ErrorPayload> {
        let file = target.file.clone().unwrap_or_default();
        if target.runtime == RuntimeKind::Ollama {
            let estimate = tokio::task::spawn_blocking({
                let file = PathBuf::from(&file);
                move || local::read_gguf(&file).ok().map(|s| estimate::from_gguf(&s, None).total_bytes)
            })
            .await
            .ok()
            .flatten();
            return Ok(LaunchPlan {
                context: estimate::HEADLINE_CONTEXT.min(4096),
                gpu_layers: 0,
                layers: None,
                estimate_bytes: estimate.unwrap_or(0),
                reason: "Ollama sizes it itself".into(),
                pooling: None,
                load: Default::default(),
            });
        }
        if !file.to_ascii_lowercase().ends_with(".gguf") {
            return Err(err(
                ErrorCode::InvalidInput,
                format!(
                    "{} has no GGUF file: llama-server runs GGUF models (this one is {:?})",
                    target.id, target.format
                ),
            ));
        }
        find_llama_server(settings, &self.config.data_dir)?;
        let (summary, hw) = {
            let (file, cache) = (PathBuf::from(&file), self.config.cache_dir.clone());
            tokio::task::spawn_blocking(move || (local::read_gguf(&file), hardware::probe(&cache)))
                .await
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?
        };
        let summary = summary.map_err(|e| err(ErrorCode::InvalidInput, format!("cannot read {file}: {e}")))?;
        let mut hw = hw;
        hw.ram_available += reclaim;
        let mut model = estimate::from_gguf(&summary, None);
        // Its adapters' weights are loaded beside its own.
        model.weights_bytes +=
            target.adapters.iter().map(|(_, f)| std::fs::metadata(f).map_or(0, |m| m.len())).sum::<u64>();
        let load = settings.load_of(&target.model);
        let mut plan = plan::plan(&model, &hw, settings.max_context, context, &load)
            .map_err(|why| err(ErrorCode::InvalidInput, format!("{} cannot be loaded here: {why}", target.id)))?;
        // An embedding model that names no pooling (or none) would serve no OpenAI-style embedding.
        if target.model_type == ModelType::Embedding && matches!(summary.pooling_type, None | Some(0)) {
            plan.pooling = Some("mean".into());
        }
        Ok(plan)
    }

    /// Starts the runtime for `target` with `plan` and waits until it answers.
    async fn start(
        &self,
        target: &Target,
        plan: &LaunchPlan,
        settings: &Settings,
    ) -> Result<Arc<Backend>, ErrorPayload> {
        if target.runtime == RuntimeKind::Ollama {
            let name = target.id.strip_prefix(crate::ollama::OLLAMA_PREFIX).unwrap_or(&target.id);
            keep_alive(&self.http, &self.ollama, name, -1).await?;
            return Ok(Arc::new(Backend {
                id: target.id.clone(),
                base: self.ollama.clone(),
                ollama_name: Some(name.to_string()),
                file: target.file.clone().unwrap_or_default(),
                plan: Some(plan.clone()),
                adapters: Vec::new(),
                api_key: None,
                spawned: None,
            }));
        }
        let file = target.file.clone().unwrap_or_default();
        let program = find_llama_server(settings, &self.config.data_dir)?;
        let port = free_port().map_err(|e| err(ErrorCode::Io, format!("no free local port: {e}")))?;
        // Its key in a 0600 file (a command line is any user's to read): only this app's requests reach it.
        let key = new_key().map_err(|e| err(ErrorCode::Internal, format!("no randomness for a runtime's key: {e}")))?;
        let key_file = runtime_dir(&self.config.data_dir).join(format!("llama-server-{port}.key"));
        crate::disk::write_atomic(&key_file, key.as_bytes(), 0o600)
            .map_err(|e| err(ErrorCode::Io, format!("cannot write {}: {e}", key_file.display())))?;
        let flags = super::builds::known_flags(&program).await;
        if let Some(unknown) = crate::settings::load::extra_flags(&plan.load.extra_args).find(|f| !flags.contains(*f)) {
            return Err(err(
                ErrorCode::InvalidInput,
                format!(
                    "{} has no flag {unknown} (in the load settings' extraArgs of {}): see its --help",
                    program.display(),
                    target.model
                ),
            ));
        }
        let args = plan::llama_server_args(target, port, plan, &key_file.display().to_string(), |f| flags.contains(f));
        let command = std::iter::once(program.display().to_string())
            .chain(args.iter().cloned())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ");
        // One log per start: a swap's new runtime does not write over the log of the one still serving.
        let log = runtime_dir(&self.config.data_dir).join(format!("llama-server-{}-{port}.log", target.model_type));
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
        let pid = child.id().ok_or_else(|| err(ErrorCode::Io, "llama-server ended as it started"))?;
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let mut wait = Duration::from_millis(5);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(err(
                    ErrorCode::Io,
                    format!("llama-server exited ({status}) while loading {}: {}", target.id, last_lines(&log)),
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
            // Soon after the start (a small model is ready in tens of milliseconds), then every 100 ms.
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(100));
        }
        tracing::info!("{} ready on {base} in {} ms", target.id, started.elapsed().as_millis());
        Ok(Arc::new(Backend {
            id: target.id.clone(),
            base,
            ollama_name: None,
            file,
            plan: Some(plan.clone()),
            adapters: target.adapters.iter().map(|(id, _)| id.clone()).collect(),
            api_key: Some(key),
            spawned: Some(Spawned { child: tokio::sync::Mutex::new(child), pid, command, log, key_file }),
        }))
    }

    /// Whether a llama-server answers `/health` with 200 (`Some(false)`: it answers, still loading).
    async fn health(&self, base: &str) -> Option<bool> {
        let res = self.http.get(format!("{base}/health")).timeout(Duration::from_secs(2)).send().await.ok()?;
        Some(res.status().is_success())
    }
}

/// Whether a ready model runs with other load settings than its model's now.
fn settings_changed(view: &LoadedModel, target: &Target, settings: &Settings) -> bool {
    target.runtime == RuntimeKind::LlamaServer
        && view.plan.as_ref().is_some_and(|p| p.load != settings.load_of(&target.model))
}

/// A load counted among those waiting for room, for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a model cannot take requests now.
fn unavailable(view: &LoadedModel) -> ErrorPayload {
    let why = view.error.clone().unwrap_or_else(|| "it is not running".into());
    err(ErrorCode::Network, format!("{} is not being served: {why}", view.id))
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
    match &backend.spawned {
        Some(spawned) => {
            let mut child = spawned.child.lock().await;
            // A process already reaped is not signalled: its number may be another's now.
            if matches!(child.try_wait(), Ok(None)) {
                unsafe { libc::kill(spawned.pid as i32, libc::SIGTERM) };
                if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            }
            let _ = std::fs::remove_file(&spawned.log);
            let _ = std::fs::remove_file(&spawned.key_file);
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

/// `llama-server`: the settings' path, else the first on `PATH`, else the newest build the app got
/// ([`super::builds`]); with none, where to get one.
pub fn find_llama_server(settings: &Settings, data_dir: &Path) -> Result<PathBuf, ErrorPayload> {
    if let Some(path) = settings.llama_server.as_deref().filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(err(
                ErrorCode::NotFound,
                format!(
                    "llama-server is not at {} (the llamaServer setting): get llama.cpp (mm runtime get, or Settings → \
                     Runtimes), or set the path of one (mm config set llamaServer PATH)",
                    path.display()
                ),
            ))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("llama-server"))
        .find(|p| p.is_file())
        .or_else(|| super::builds::newest(data_dir))
        .ok_or_else(|| {
            err(
                ErrorCode::NotFound,
                "no llama-server on this machine: get llama.cpp (mm runtime get, or Settings → Runtimes → Get \
                 llama.cpp), or set the path of one you built (mm config set llamaServer PATH)",
            )
        })
}

/// Whether the app (or `mm serve`) that loaded a model has ended.
fn owner_gone(process: &Process) -> bool {
    process.owner_pid.lock().expect("owner").is_some_and(|pid| !alive(pid))
}

/// Whether a process runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// A runtime's key: 32 random bytes, as hex.
fn new_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(crate::format::hex(&bytes))
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

/// The longest request line the host reads (a request is a few hundred bytes).
const MAX_LINE: u64 = 1 << 20;

/// One line of a connection, at most [`MAX_LINE`] bytes; none at its end, or past the limit (the connection is
/// then dropped).
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut line = Vec::new();
    let n = tokio::io::AsyncReadExt::take(&mut *reader, MAX_LINE).read_until(b'\n', &mut line).await.ok()?;
    if n == 0 || (line.last() != Some(&b'\n') && n as u64 >= MAX_LINE) {
        return None;
    }
    String::from_utf8(line).ok()
}

async fn write_line<T: serde::Serialize>(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    value: &T,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).expect("serialises");
    line.push(b'\n');
    write.write_all(&line).await
}
