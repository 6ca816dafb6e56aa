//! The download queue: at most `max_concurrent` downloads run, the rest wait in order; asking for a download
//! that is already queued, running or paused joins it; pause keeps the partial files for a later resume,
//! cancel deletes them. Subscribers get throttled progress and lifecycle events.

use super::plan::{self, Plan};
use super::progress::{Counters, RateLimiter, Speed};
use super::transfer::{discard_partial, FileTransfer};
use super::{
    DownloadError, DownloadEvent, DownloadProgress, DownloadRequest, DownloadState, LifecycleKind, ModelLifecycle,
};
use crate::cache::write;
use crate::error::{Coded, ErrorPayload};
use crate::hub::HubClient;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Downloads running at once; the rest wait. Default 3.
    pub max_concurrent: usize,
    /// Files of one download fetched at once. Default 4.
    pub files_in_parallel: usize,
    /// A transfer with no bytes for this long is retried. Default 30 s.
    pub stall_timeout: Duration,
    /// Progress is sent at most this often per download. Default 100 ms.
    pub progress_interval: Duration,
    /// Check each file's hash while downloading (sizes are always checked). Default true.
    pub verify_hashes: bool,
    /// Bytes per second for all downloads together; none for no limit.
    pub bandwidth_limit: Option<u64>,
    /// Connections one large file may use at once; 1 for a single stream. Default 16.
    pub connections_per_file: usize,
    /// Fetch Xet-backed hub files from the Xet CAS (else over HTTP). Default: on, unless `HF_HUB_DISABLE_XET`.
    pub use_xet: bool,
    /// Where URL downloads go; none for the app's models folder.
    pub models_dir: Option<PathBuf>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            max_concurrent: 3,
            files_in_parallel: 4,
            stall_timeout: Duration::from_secs(30),
            progress_interval: Duration::from_millis(100),
            verify_hashes: true,
            bandwidth_limit: None,
            connections_per_file: super::DEFAULT_CONNECTIONS_PER_FILE as usize,
            use_xet: !super::xet::disabled_by_env(),
            models_dir: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Pause,
    /// Paused, then resumed before the transfer had stopped: queued again once it has.
    PauseTakenBack,
    Cancel,
}

struct Job {
    id: u64,
    request: DownloadRequest,
    state: DownloadState,
    plan: Option<Arc<Plan>>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    stop: Option<Stop>,
    error: Option<ErrorPayload>,
    bytes_per_second: u64,
    watch: watch::Sender<DownloadProgress>,
}

impl Job {
    fn progress(&self) -> DownloadProgress {
        let plan = self.plan.as_deref();
        let bytes_total =
            plan.map(Plan::bytes_total).unwrap_or_else(|| self.counters.bytes_total.load(Ordering::Relaxed));
        // A URL whose length the server never said has a total of 0 until it ends: its bytes still count.
        let done = self.counters.bytes_done.load(Ordering::Relaxed);
        let bytes_done = if bytes_total > 0 { done.min(bytes_total) } else { done };
        let state = if self.state == DownloadState::Downloading && self.counters.verifying.load(Ordering::Relaxed) > 0 {
            DownloadState::Verifying
        } else {
            self.state
        };
        let eta_seconds = (self.state == DownloadState::Downloading && self.bytes_per_second > 0 && bytes_total > 0)
            .then(|| (bytes_total - bytes_done).div_ceil(self.bytes_per_second));
        DownloadProgress {
            id: self.id,
            repo: self.request.repo.clone(),
            revision: self.request.revision().to_string(),
            commit: plan.map(|p| p.commit.clone()),
            state,
            bytes_done,
            bytes_total,
            files_done: self.counters.files_done.load(Ordering::Relaxed),
            files_total: plan.map(|p| p.files.len() as u32).unwrap_or(u32::from(self.request.url.is_some())),
            bytes_per_second: if self.state == DownloadState::Downloading { self.bytes_per_second } else { 0 },
            eta_seconds,
            error: self.error.clone(),
            transport: self.counters.transport(),
        }
    }

    fn same_request(&self, other: &DownloadRequest) -> bool {
        self.request.repo.trim() == other.repo.trim()
            && self.request.revision() == other.revision()
            && self.request.files == other.files
            && self.request.include == other.include
            && self.request.exclude == other.exclude
            && self.request.url.as_ref().map(|u| &u.url) == other.url.as_ref().map(|u| &u.url)
    }
}

struct Jobs {
    next_id: u64,
    list: Vec<Job>,
    running: usize,
}

struct Inner {
    hub: Mutex<HubClient>,
    cache_dir: PathBuf,
    /// Where unfinished requests are kept across restarts, if anywhere; the lock orders its writers, so the
    /// newest list is the one that lands.
    journal: Option<(PathBuf, Mutex<()>)>,
    options: Mutex<DownloadOptions>,
    limiter: Arc<RateLimiter>,
    jobs: Mutex<Jobs>,
    events: broadcast::Sender<DownloadEvent>,
    /// Every change of a download's state adds one (what the library lists may differ after it).
    state_changes: std::sync::atomic::AtomicU64,
}

impl Inner {
    pub(crate) fn hub(&self) -> HubClient {
        self.hub.lock().unwrap().clone()
    }
}

/// The download queue. Cheap to clone; every clone is the same queue.
#[derive(Clone)]
pub struct Downloads {
    inner: Arc<Inner>,
}

impl Downloads {
    pub fn new(hub: HubClient, cache_dir: PathBuf, options: DownloadOptions) -> Downloads {
        Downloads::build(hub, cache_dir, options, None)
    }

    /// A queue that keeps its unfinished requests in `journal` (a JSON file). Those left by an earlier run come
    /// back paused: [`Downloads::resume`] continues each from the bytes already on disk. An unreadable journal
    /// is set aside as `*.corrupt` and the queue starts empty.
    pub fn with_journal(hub: HubClient, cache_dir: PathBuf, options: DownloadOptions, journal: PathBuf) -> Downloads {
        let pending = match read_journal(&journal) {
            Some(pending) => pending,
            None => {
                if journal.exists() {
                    let _ = std::fs::rename(&journal, journal.with_extension("corrupt"));
                }
                Vec::new()
            }
        };
        let downloads = Downloads::build(hub, cache_dir, options, Some(journal));
        {
            let mut jobs = downloads.inner.jobs.lock().unwrap();
            for request in pending {
                let id = jobs.next_id;
                jobs.next_id += 1;
                let mut job = new_job(id, request);
                job.state = DownloadState::Paused;
                job.watch = watch::channel(job.progress()).0;
                jobs.list.push(job);
            }
        }
        downloads
    }

    fn build(hub: HubClient, cache_dir: PathBuf, options: DownloadOptions, journal: Option<PathBuf>) -> Downloads {
        let (events, _) = broadcast::channel(1024);
        let limiter = Arc::new(RateLimiter::default());
        limiter.set(options.bandwidth_limit);
        Downloads {
            inner: Arc::new(Inner {
                hub: Mutex::new(hub),
                cache_dir,
                journal: journal.map(|path| (path, Mutex::new(()))),
                limiter,
                options: Mutex::new(options),
                jobs: Mutex::new(Jobs { next_id: 1, list: Vec::new(), running: 0 }),
                events,
                state_changes: Default::default(),
            }),
        }
    }

    pub fn cache_dir(&self) -> &std::path::Path {
        &self.inner.cache_dir
    }

    /// What downloading `request` would fetch, resolved against the hub without writing anything.
    pub async fn preview(&self, request: DownloadRequest) -> Result<super::DownloadPreview, DownloadError> {
        let hub = self.inner.hub();
        super::plan::preview(&hub, &self.inner.cache_dir, &request.normalized()?).await
    }

    /// Events of every download from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DownloadEvent> {
        self.inner.events.subscribe()
    }

    /// Sends `event` to every subscriber, beside the queue's own: what other sources (Ollama pulls, imports,
    /// deletes, activation) publish, so that one stream carries every model's changes.
    /// How many times a download's state changed: the library's listing is stale once this moves.
    pub fn state_changes(&self) -> u64 {
        self.inner.state_changes.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn publish(&self, event: DownloadEvent) {
        let _ = self.inner.events.send(event);
    }

    /// Changes how many downloads run at once; queued ones start if there is room now.
    pub fn set_max_concurrent(&self, n: usize) {
        self.inner.options.lock().unwrap().max_concurrent = n.max(1);
        schedule(&self.inner);
    }

    /// Uses `hub` (a new endpoint or token) for downloads that start from now on.
    /// The hub client downloads use now.
    pub fn hub(&self) -> HubClient {
        self.inner.hub()
    }

    pub fn set_hub(&self, hub: HubClient) {
        *self.inner.hub.lock().unwrap() = hub;
    }

    /// Takes the download settings from `settings`: concurrency, the speed limit (at once, running transfers
    /// included) and hash verification (for transfers that start from now on).
    pub fn apply_settings(&self, settings: &crate::settings::Settings) {
        {
            let mut options = self.inner.options.lock().unwrap();
            options.verify_hashes = settings.verify_on_download;
            options.bandwidth_limit = settings.bandwidth_limit;
            options.connections_per_file = settings.connections_per_file.max(1) as usize;
            options.use_xet = settings.use_xet && !super::xet::disabled_by_env();
        }
        self.inner.limiter.set(settings.bandwidth_limit);
        self.set_max_concurrent(settings.max_concurrent_downloads as usize);
    }

    /// Queues a download and returns its id, or the id of the same download already queued, running or paused.
    pub fn start(&self, request: DownloadRequest) -> Result<u64, DownloadError> {
        let request = request.normalized()?;
        let id = {
            let mut jobs = self.inner.jobs.lock().unwrap();
            if let Some(job) = jobs.list.iter().find(|j| !j.state.is_finished() && j.same_request(&request)) {
                let id = job.id;
                let paused = job.state == DownloadState::Paused;
                drop(jobs);
                if paused {
                    self.resume(id)?;
                }
                return Ok(id);
            }
            let id = jobs.next_id;
            jobs.next_id += 1;
            jobs.list.push(new_job(id, request));
            id
        };
        self.emit(id, Some(LifecycleKind::Queued));
        schedule(&self.inner);
        Ok(id)
    }

    /// Every download this queue has seen, oldest first.
    pub fn list(&self) -> Vec<DownloadProgress> {
        self.inner.jobs.lock().unwrap().list.iter().map(Job::progress).collect()
    }

    pub fn progress(&self, id: u64) -> Result<DownloadProgress, DownloadError> {
        self.with_job(id, |job| job.progress())
    }

    /// Stops a queued or running download, keeping its partial files for [`Downloads::resume`].
    pub fn pause(&self, id: u64) -> Result<(), DownloadError> {
        let was_queued = self.with_job(id, |job| match job.state {
            DownloadState::Queued => {
                job.state = DownloadState::Paused;
                true
            }
            DownloadState::Downloading | DownloadState::Verifying => {
                job.stop = Some(Stop::Pause);
                job.cancel.cancel();
                false
            }
            _ => false,
        })?;
        if was_queued {
            self.emit(id, Some(LifecycleKind::Paused));
        }
        Ok(())
    }

    /// Puts a paused (or failed) download back in the queue; it resumes from the bytes on disk.
    pub fn resume(&self, id: u64) -> Result<(), DownloadError> {
        let resumed = self.with_job(id, |job| {
            if matches!(job.state, DownloadState::Paused | DownloadState::Failed) {
                job.state = DownloadState::Queued;
                job.stop = None;
                job.error = None;
                job.cancel = CancellationToken::new();
                true
            } else {
                // Paused a moment ago, and the transfer has not stopped yet: it is queued again when it has
                // (else this resume would be lost, and the download left paused).
                if job.stop == Some(Stop::Pause) {
                    job.stop = Some(Stop::PauseTakenBack);
                }
                false
            }
        })?;
        if resumed {
            self.emit(id, Some(LifecycleKind::Resumed));
            schedule(&self.inner);
        }
        Ok(())
    }

    /// Stops a download and deletes its partial files. Finished files stay in the cache.
    pub fn cancel(&self, id: u64) -> Result<(), DownloadError> {
        let idle_plan = self.with_job(id, |job| match job.state {
            DownloadState::Queued | DownloadState::Paused | DownloadState::Failed => {
                job.state = DownloadState::Cancelled;
                Some(job.plan.clone())
            }
            DownloadState::Downloading | DownloadState::Verifying => {
                job.stop = Some(Stop::Cancel);
                job.cancel.cancel();
                None
            }
            _ => None,
        })?;
        if let Some(plan) = idle_plan {
            if let Some(plan) = plan {
                discard_all(&plan, &self.inner.cache_dir);
            }
            self.emit(id, Some(LifecycleKind::Cancelled));
        }
        Ok(())
    }

    /// Pauses every queued or running download, keeping their partial files (and their journal entries, so
    /// they come back paused next time), and waits for the transfers to stop.
    pub async fn shutdown(&self) {
        let ids: Vec<u64> =
            self.inner.jobs.lock().unwrap().list.iter().filter(|j| !j.state.is_finished()).map(|j| j.id).collect();
        for id in &ids {
            let _ = self.pause(*id);
        }
        for id in ids {
            let _ = self.wait(id).await;
        }
    }

    /// Waits until the download completes (its final progress) or fails, is cancelled, or is paused (the error).
    pub async fn wait(&self, id: u64) -> Result<DownloadProgress, ErrorPayload> {
        let mut rx = self.with_job(id, |job| job.watch.subscribe()).map_err(|e| e.payload())?;
        loop {
            let progress = rx.borrow_and_update().clone();
            match progress.state {
                DownloadState::Completed => return Ok(progress),
                DownloadState::Failed => {
                    return Err(progress
                        .error
                        .unwrap_or(ErrorPayload::new(crate::ErrorCode::Internal, "the download failed")))
                }
                DownloadState::Cancelled => return Err(DownloadError::Cancelled.payload()),
                DownloadState::Paused => {
                    return Err(ErrorPayload::new(crate::ErrorCode::Cancelled, "the download was paused"))
                }
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err(DownloadError::UnknownDownload(id).payload());
            }
        }
    }

    fn with_job<T>(&self, id: u64, f: impl FnOnce(&mut Job) -> T) -> Result<T, DownloadError> {
        let mut jobs = self.inner.jobs.lock().unwrap();
        let job = jobs.list.iter_mut().find(|j| j.id == id).ok_or(DownloadError::UnknownDownload(id))?;
        Ok(f(job))
    }

    fn emit(&self, id: u64, lifecycle: Option<LifecycleKind>) {
        emit(&self.inner, id, lifecycle);
    }
}

fn new_job(id: u64, request: DownloadRequest) -> Job {
    let (watch, _) = watch::channel(DownloadProgress {
        id,
        repo: request.repo.clone(),
        revision: request.revision().to_string(),
        commit: None,
        state: DownloadState::Queued,
        bytes_done: 0,
        bytes_total: 0,
        files_done: 0,
        files_total: 0,
        bytes_per_second: 0,
        eta_seconds: None,
        error: None,
        transport: None,
    });
    Job {
        id,
        request,
        state: DownloadState::Queued,
        plan: None,
        counters: Arc::new(Counters::default()),
        cancel: CancellationToken::new(),
        stop: None,
        error: None,
        bytes_per_second: 0,
        watch,
    }
}

/// The unfinished requests a journal keeps (another process's, say); `None` when it is missing or unreadable.
pub fn read_journal(journal: &Path) -> Option<Vec<DownloadRequest>> {
    serde_json::from_slice(&std::fs::read(journal).ok()?).ok()
}

/// Rewrites the journal with the requests not finished yet, atomically and durably. Writers take turns, and each
/// reads the queue while it holds its turn, so the last file written is the newest list.
fn save_journal(inner: &Inner) {
    let Some((path, turn)) = &inner.journal else { return };
    let _turn = turn.lock().unwrap();
    let pending: Vec<DownloadRequest> = {
        let jobs = inner.jobs.lock().unwrap();
        jobs.list.iter().filter(|j| !j.state.is_finished()).map(|j| j.request.clone()).collect()
    };
    if let Err(e) = crate::disk::write_atomic(path, &serde_json::to_vec_pretty(&pending).unwrap(), 0o600) {
        eprintln!("warning: could not keep the download journal {}: {e}", path.display());
    }
}

/// Sends the job's progress (and a lifecycle event) to subscribers and waiters.
fn emit(inner: &Inner, id: u64, lifecycle: Option<LifecycleKind>) {
    if matches!(lifecycle, Some(LifecycleKind::Queued | LifecycleKind::Completed | LifecycleKind::Cancelled)) {
        save_journal(inner);
    }
    let (progress, event) = {
        let jobs = inner.jobs.lock().unwrap();
        let Some(job) = jobs.list.iter().find(|j| j.id == id) else { return };
        let progress = job.progress();
        job.watch.send_replace(progress.clone());
        let event = lifecycle.map(|kind| ModelLifecycle {
            kind,
            repo: progress.repo.clone(),
            revision: progress.revision.clone(),
            download_id: Some(id),
            error: progress.error.clone(),
        });
        (progress, event)
    };
    if event.is_some() {
        inner.state_changes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    let _ = inner.events.send(DownloadEvent::Progress(progress));
    if let Some(event) = event {
        let _ = inner.events.send(DownloadEvent::Lifecycle(event));
    }
}

/// Starts queued downloads, in order, while there is room.
fn schedule(inner: &Arc<Inner>) {
    let max = inner.options.lock().unwrap().max_concurrent;
    let mut started = Vec::new();
    {
        let mut jobs = inner.jobs.lock().unwrap();
        while jobs.running < max {
            let Some(job) = jobs.list.iter_mut().find(|j| j.state == DownloadState::Queued) else { break };
            job.state = DownloadState::Downloading;
            started.push((job.id, job.request.clone(), job.counters.clone(), job.cancel.clone()));
            jobs.running += 1;
        }
    }
    for (id, request, counters, cancel) in started {
        emit(inner, id, Some(LifecycleKind::Started));
        let inner = inner.clone();
        let span = match &request.url {
            Some(source) => tracing::info_span!("download", id, url = %crate::logs::redact_url(&source.url)),
            None => {
                tracing::info_span!("download", id, repo = %request.repo, revision = %request.revision.as_deref().unwrap_or("main"))
            }
        };
        tokio::spawn(
            async move {
                tracing::info!("started");
                let reporter = tokio::spawn(report(inner.clone(), id));
                let result = run(&inner, id, &request, counters, cancel).await;
                reporter.abort();
                finish(&inner, id, result);
                schedule(&inner);
            }
            .instrument(span),
        );
    }
}

/// Sends progress while bytes move, at most once per `progress_interval`.
async fn report(inner: Arc<Inner>, id: u64) {
    let interval = inner.options.lock().unwrap().progress_interval;
    let mut speed = Speed::new(Duration::from_secs(3));
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(interval).await;
        let changed = {
            let mut jobs = inner.jobs.lock().unwrap();
            let Some(job) = jobs.list.iter_mut().find(|j| j.id == id) else { return };
            let done = job.counters.bytes_done.load(Ordering::Relaxed);
            job.bytes_per_second = speed.sample(Instant::now(), done);
            let changed = done != last;
            last = done;
            changed
        };
        if changed {
            emit(&inner, id, None);
        }
    }
}

async fn run(
    inner: &Arc<Inner>,
    id: u64,
    request: &DownloadRequest,
    counters: Arc<Counters>,
    cancel: CancellationToken,
) -> Result<(), DownloadError> {
    if let Some(source) = &request.url {
        let options = inner.options.lock().unwrap().clone();
        let config = inner.hub().config().clone();
        let job = super::url::UrlJob {
            http: url_client(config.timeout, &config.proxies),
            proxies: config.proxies,
            source: source.clone(),
            models: models_dir(&options),
            counters,
            limiter: inner.limiter.clone(),
            cancel,
            retry: inner.hub().retry_policy(),
            stall_timeout: options.stall_timeout,
            connections: super::parts::Connections::shared(options.connections_per_file, 1),
        };
        return job.run().await.map(|_| ());
    }
    let hub = inner.hub();
    let plan = tokio::select! {
        _ = cancel.cancelled() => return Err(DownloadError::Cancelled),
        plan = plan::resolve(&hub, &inner.cache_dir, request) => Arc::new(plan?),
    };
    plan::preflight(&plan, &inner.cache_dir)?;
    plan::record_tree(&plan)?;
    plan::record_hub_info(&plan)?;
    {
        let mut jobs = inner.jobs.lock().unwrap();
        if let Some(job) = jobs.list.iter_mut().find(|j| j.id == id) {
            job.plan = Some(plan.clone());
            job.counters.bytes_done.store(0, Ordering::Relaxed);
            job.counters.files_done.store(0, Ordering::Relaxed);
        }
    }
    emit(inner, id, None);

    let options = inner.options.lock().unwrap().clone();
    let files_cancel = cancel.child_token();
    // The large files that will come at once share the connections a download starts with.
    let large = plan.files.iter().filter(|f| f.size >= super::parts::MIN_SIZE && !plan.is_present(f)).count();
    let connections =
        super::parts::Connections::shared(options.connections_per_file, large.min(options.files_in_parallel.max(1)));
    let permits = Arc::new(Semaphore::new(options.files_in_parallel.max(1)));
    let xet = super::xet::Engine::new(super::transfer::xet_cache_dir(&inner.cache_dir), options.connections_per_file);
    let mut tasks = tokio::task::JoinSet::new();
    for file in plan.files.iter().cloned() {
        if plan.is_present(&file) {
            counters.bytes_done.fetch_add(file.size, Ordering::Relaxed);
        }
        let transfer = FileTransfer {
            hub: inner.hub(),
            plan: plan.clone(),
            cache_dir: inner.cache_dir.clone(),
            file,
            stall_timeout: options.stall_timeout,
            connections,
            use_xet: options.use_xet,
            xet: xet.clone(),
            verify_hashes: options.verify_hashes,
            limiter: inner.limiter.clone(),
            counters: counters.clone(),
            cancel: files_cancel.clone(),
        };
        let permits = permits.clone();
        tasks.spawn(
            async move {
                let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
                transfer.run().await
            }
            .in_current_span(),
        );
    }
    let mut first_error = None;
    let mut linked_any = false;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => linked_any = true,
            Ok(Err(err)) => {
                files_cancel.cancel();
                if first_error.is_none() || matches!(first_error, Some(DownloadError::Cancelled)) {
                    first_error = Some(err);
                }
            }
            Err(join) => {
                files_cancel.cancel();
                first_error
                    .get_or_insert(DownloadError::io("a transfer task", std::io::Error::other(join.to_string())));
            }
        }
    }
    // A branch or tag points at its commit once something of it is in place; a commit needs no ref.
    if linked_any && plan.revision != plan.commit {
        write::write_ref(&plan.repo_dir, &plan.revision, &plan.commit)
            .map_err(|e| DownloadError::io(format!("writing the ref {} of {}", plan.revision, plan.repo), e))?;
    }
    if cancel.is_cancelled() {
        return Err(DownloadError::Cancelled);
    }
    first_error.map_or(Ok(()), Err)
}

/// A client for URL downloads: no token, redirects followed (to any host: nothing secret travels with them), a
/// silent server given up on after `timeout`, bytes as stored (no compression, so ranges mean the same to both),
/// through the hub's proxies.
fn url_client(timeout: Duration, proxies: &crate::proxy::Proxies) -> reqwest::Client {
    proxies
        .apply(reqwest::Client::builder())
        .user_agent(concat!("model-manager/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(timeout)
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::ACCEPT_ENCODING,
            reqwest::header::HeaderValue::from_static("identity"),
        )]))
        .build()
        .expect("a plain client builds")
}

fn models_dir(options: &DownloadOptions) -> PathBuf {
    options.models_dir.clone().unwrap_or_else(|| crate::models_folder::models_dir(&crate::paths::app_data_dir()))
}

fn discard_all(plan: &Plan, cache_dir: &std::path::Path) {
    for file in &plan.files {
        discard_partial(plan, cache_dir, file);
    }
}

fn finish(inner: &Arc<Inner>, id: u64, result: Result<(), DownloadError>) {
    let (kind, discard) = {
        let mut jobs = inner.jobs.lock().unwrap();
        jobs.running -= 1;
        let Some(job) = jobs.list.iter_mut().find(|j| j.id == id) else { return };
        job.bytes_per_second = 0;
        match result {
            Ok(()) => {
                tracing::info!("completed");
                job.state = DownloadState::Completed;
                (LifecycleKind::Completed, None)
            }
            Err(DownloadError::Cancelled) if job.stop == Some(Stop::Pause) => {
                tracing::info!("paused");
                job.state = DownloadState::Paused;
                (LifecycleKind::Paused, None)
            }
            Err(DownloadError::Cancelled) if job.stop == Some(Stop::PauseTakenBack) => {
                tracing::info!("paused and resumed: queued again");
                job.state = DownloadState::Queued;
                job.stop = None;
                job.cancel = CancellationToken::new();
                (LifecycleKind::Resumed, None)
            }
            Err(DownloadError::Cancelled) => {
                tracing::info!("cancelled");
                job.state = DownloadState::Cancelled;
                if let Some(source) = &job.request.url {
                    super::url::discard(source, &models_dir(&inner.options.lock().unwrap()));
                }
                (LifecycleKind::Cancelled, job.plan.clone())
            }
            Err(err) => {
                tracing::warn!(code = %err.code(), error = %err, "failed");
                job.state = DownloadState::Failed;
                job.error = Some(err.payload());
                (LifecycleKind::Failed, None)
            }
        }
    };
    if let Some(plan) = discard {
        discard_all(&plan, &inner.cache_dir);
    }
    emit(inner, id, Some(kind));
    if kind == LifecycleKind::Resumed {
        schedule(inner);
    }
}
