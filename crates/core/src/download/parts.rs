//! One large file over several connections at once. The file is cut into pieces fetched with closed `Range`
//! requests by a pool of connections that grows while the throughput does (from [`START_CONNECTIONS`] up to the
//! setting's cap); each piece is retried and resumed on its own, with its own stall timeout, and every `206` must be
//! exactly the range asked for, of the file's known size. A hub file's redirect target (a signed CDN link) is
//! remembered, so a piece costs one request; a target that stops being accepted (`401`/`403`: the signature
//! expired) is resolved again.
//!
//! One writer thread puts the bytes in place with positional writes and hashes the contiguous prefix as it grows
//! (bytes that land past it are read back from the page cache once the gap before them fills), so the sha256 of the
//! whole file is ready when its last byte lands, without a second read of the file. Which ranges are on disk is
//! kept beside the bytes (`{part}.ranges`), so a killed process fetches only what is missing. A server that answers
//! a range with the whole file (`200`) is left to the single stream, quietly.

use super::hasher::{Digests, Hasher};
use super::origin::{next_chunk, Origin};
use super::progress::{Counters, RateLimiter};
use super::DownloadError;
use crate::http::ContentRange;
use crate::hub::client::retry_after;
use crate::hub::RetryPolicy;
use bytes::Bytes;
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Files smaller than this go in one stream: more connections would not pay for their requests.
pub const MIN_SIZE: u64 = 16 << 20;
/// Connections one large file starts with (fewer when it has fewer pieces or the cap is lower), shared out when
/// several large files of a download come at once.
pub const START_CONNECTIONS: usize = 8;

/// How many connections one file may use: to start with, and at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    pub start: usize,
    pub max: usize,
}

impl Connections {
    /// For one of `files` large files fetched at once, under a cap of `max` per file: [`START_CONNECTIONS`] shared
    /// out among them (at least 2 each), so that a download starts with about as many connections however many
    /// files it has.
    pub fn shared(max: usize, files: usize) -> Connections {
        let max = max.max(1);
        Connections { start: (START_CONNECTIONS / files.max(1)).max(2).min(max), max }
    }
}
/// How often the pool looks at the throughput, and by how much connections added must have raised it for more to
/// be added (half as many again as are running, at least 2).
const GROWTH_WINDOW: Duration = Duration::from_millis(500);
const GROWTH: f64 = 1.10;
/// What a [`PieceWriter`] keeps in memory: how many chunks may wait for it, and how many bytes that landed ahead of
/// the hashed ones it keeps to hash them without reading them back (more are read back from the page cache).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Buffers {
    pub queue: usize,
    pub hold: usize,
}

impl Buffers {
    /// HTTP's chunks are small: many wait, and the pieces in flight (about one per connection) are kept.
    pub const HTTP: Buffers = Buffers { queue: 64, hold: 32 << 20 };
    /// The Xet engine's chunks are large (a term, up to tens of MiB) and hold its buffers: one waits, none are kept.
    /// One fewer waiting term took a 512 MiB file's peak from 155-286 MB to 142-220 MB, no slower (2026-12-07).
    pub const XET: Buffers = Buffers { queue: 1, hold: 0 };
}
/// The ranges file is rewritten at most this often.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The size of a piece: enough of them for every connection several times over, none tiny or huge.
fn piece_size(size: u64, max_connections: usize) -> u64 {
    (size / (max_connections as u64 * 4)).clamp(1 << 20, 32 << 20)
}

/// Why the parallel fetch did not finish the file.
pub(crate) enum Stopped {
    /// The server does not serve ranges as asked: the single stream takes over from the contiguous bytes on disk.
    Fallback(String),
    Failed(DownloadError),
}

impl From<DownloadError> for Stopped {
    fn from(e: DownloadError) -> Self {
        Stopped::Failed(e)
    }
}

/// What is on disk of a file fetched in pieces, kept beside it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    size: u64,
    /// The validator the pieces were fetched under (a URL's ETag or Last-Modified), sent with `If-Range`.
    validator: Option<String>,
    /// `[start, end)` ranges on disk, sorted and merged.
    done: Vec<(u64, u64)>,
}

impl Record {
    fn add(&mut self, start: u64, end: u64) {
        self.done.push((start, end));
        self.done.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.done.len());
        for (s, e) in self.done.drain(..) {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.done = merged;
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.done.iter().map(|(s, e)| e - s).sum()
    }

    /// The end of the contiguous bytes from 0.
    fn prefix(&self) -> u64 {
        self.done.first().filter(|(s, _)| *s == 0).map_or(0, |(_, e)| *e)
    }

    /// The `[start, end)` ranges not on disk, in order.
    fn missing(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        for &(s, e) in self.done.iter().chain(std::iter::once(&(self.size, self.size))) {
            if at < s {
                out.push((at, s));
            }
            at = at.max(e);
        }
        out
    }
}

/// `[start, end)` cut into pieces of at most `piece` bytes.
pub(crate) fn cut(start: u64, end: u64, piece: u64) -> impl Iterator<Item = (u64, u64)> {
    (start..end).step_by(piece as usize).map(move |from| (from, (from + piece).min(end)))
}

/// A partial file written in pieces, in any order, by whoever has its bytes (connections over HTTP, the Xet
/// engine): the writer thread, the channel into it, and the ranges still missing when it opened.
pub(crate) struct PieceWriter {
    pub missing: Vec<(u64, u64)>,
    /// The bytes its record named when it opened, counted as done.
    pub on_disk: u64,
    pub tx: mpsc::Sender<(u64, Bytes)>,
    pub writer: tokio::task::JoinHandle<io::Result<(Record, Option<Digests>)>>,
}

impl PieceWriter {
    /// Opens `part` for a file of `size` bytes: the ranges its record names are kept when they may be
    /// (`resumable`: a validator, or a hash that checks the whole file), and a single stream's contiguous bytes
    /// likewise; the writer hashes with `hasher` from byte 0, within `buffers`.
    pub fn open(
        part: &Path,
        size: u64,
        validator: Option<String>,
        resumable: bool,
        hasher: Hasher,
        counters: &Arc<Counters>,
        buffers: Buffers,
    ) -> io::Result<PieceWriter> {
        let record = resumable.then(|| load_record(part, size, validator.as_deref())).flatten();
        let record = match record {
            Some(record) => record,
            None => {
                // Bytes a single stream left (contiguous from 0) are kept when they can be vouched for.
                let on_disk = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
                let mut record = Record { size, validator, done: Vec::new() };
                if resumable && on_disk > 0 && on_disk < size && !record_path(part).exists() {
                    record.add(0, on_disk);
                }
                record
            }
        };
        let file = crate::disk::open_partial(part)?;
        // The record is on disk before the file is sized: whoever reads the partial file (a mirror streaming it as
        // it arrives) and finds no record is reading bytes written in order.
        let record_bytes = serde_json::to_vec(&record).expect("a record serialises");
        crate::disk::write_atomic(&record_path(part), &record_bytes, 0o644)?;
        file.set_len(size)?;
        let already = record.bytes();
        if already > 0 {
            tracing::info!(bytes = already, ranges = record.done.len(), "resuming the pieces on disk");
        }
        counters.bytes_done.fetch_add(already, Ordering::Relaxed);
        let missing = record.missing();
        let (tx, rx) = mpsc::channel::<(u64, Bytes)>(buffers.queue);
        let writer = spawn_writer(file, part.to_path_buf(), record, hasher, rx, counters.clone(), buffers.hold);
        Ok(PieceWriter { missing, on_disk: already, tx, writer })
    }

    /// What the writer left once every sender is gone: the record, and the hashes when the whole file is there.
    pub async fn finish(
        writer: tokio::task::JoinHandle<io::Result<(Record, Option<Digests>)>>,
    ) -> io::Result<(Record, Option<Digests>)> {
        writer.await.map_err(io::Error::other)?
    }
}

/// Where the record of a partial file is kept.
pub(crate) fn record_path(part: &Path) -> PathBuf {
    let mut name = part.file_name().unwrap_or_default().to_os_string();
    name.push(crate::cache::layout::PIECES_SUFFIX);
    part.with_file_name(name)
}

fn load_record(part: &Path, size: u64, validator: Option<&str>) -> Option<Record> {
    let record: Record = serde_json::from_slice(&fs::read(record_path(part)).ok()?).ok()?;
    let on_disk = fs::metadata(part).ok()?.len();
    let sound = record.size == size
        && on_disk == size
        && record.validator.as_deref() == validator
        && record.done.iter().all(|(s, e)| s < e && *e <= size);
    sound.then_some(record)
}

/// One file to fetch in pieces.
pub(crate) struct PartedFetch {
    pub origin: Origin,
    pub part: PathBuf,
    pub size: u64,
    pub validator: Option<String>,
    /// Whether bytes on disk may be kept without a validator (a hash checks the whole file at the end).
    pub verified_at_end: bool,
    pub connections: Connections,
    pub stall_timeout: Duration,
    pub retry: RetryPolicy,
    pub limiter: Arc<RateLimiter>,
    pub counters: Arc<Counters>,
    pub cancel: CancellationToken,
}

/// What the connections share: the fetch, the pieces left, and the redirect target.
struct Shared {
    fetch: PartedFetch,
    pieces: Mutex<VecDeque<(u64, u64)>>,
    /// Where a hub file's redirect led (a signed link), reused by every piece until it is refused.
    target: Mutex<Option<Url>>,
    /// Held while the hub is asked where the file is, so that the other connections wait for its answer instead
    /// of asking too.
    resolving: tokio::sync::Mutex<()>,
    /// Bytes received by all connections, for the pool's growth.
    received: AtomicU64,
}

/// Why one request for a piece ended early.
enum Interrupt {
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    /// The signed link this request used had expired (another connection may be resolving the next one): not a
    /// failure of the piece, which asks again at once. A link refused as soon as it was resolved is a `Retry`.
    Expired,
    Fallback(String),
    Fatal(DownloadError),
}

impl PartedFetch {
    /// Fetches what is missing of the file and returns its hashes. On [`Stopped::Fallback`], the file holds only
    /// its contiguous prefix, ready for the single stream to resume.
    pub async fn run(self, hasher: Hasher) -> Result<Digests, Stopped> {
        let part = self.part.clone();
        let io_error = |what: &str, e| DownloadError::io(format!("{what} {}", part.display()), e);
        let resumable = self.verified_at_end || self.validator.is_some();
        let opened = PieceWriter::open(
            &part,
            self.size,
            self.validator.clone(),
            resumable,
            hasher,
            &self.counters,
            Buffers::HTTP,
        )
        .map_err(|e| io_error("opening", e))?;
        let pieces = opened.missing.iter().flat_map(|&(s, e)| cut(s, e, piece_size(self.size, self.connections.max)));
        let pieces: VecDeque<(u64, u64)> = pieces.collect();
        let (tx, writer) = (opened.tx, opened.writer);
        let counters = self.counters.clone();
        let shared = Arc::new(Shared {
            fetch: self,
            pieces: Mutex::new(pieces),
            target: Mutex::new(None),
            resolving: tokio::sync::Mutex::new(()),
            received: AtomicU64::new(0),
        });
        let result = fetch_all(&shared, tx).await;
        let (record, digests) = PieceWriter::finish(writer).await.map_err(|e| io_error("writing", e))?;
        match result {
            Ok(()) => {
                let _ = fs::remove_file(record_path(&part));
                // Every piece said done, yet the ranges would not cover the file: a bug, caught here.
                digests.ok_or_else(|| {
                    let short = format!("only {} of {} bytes are on disk", record.bytes(), record.size);
                    io_error("assembling", io::Error::other(short)).into()
                })
            }
            Err(Stopped::Fallback(reason)) => {
                // The single stream resumes from the contiguous bytes; the rest is dropped.
                let prefix = record.prefix();
                tracing::info!(reason, prefix, "the server does not serve ranges: one stream instead");
                counters.bytes_done.fetch_sub(record.bytes(), Ordering::Relaxed);
                abandon(&part);
                Err(Stopped::Fallback(reason))
            }
            Err(stopped) => Err(stopped),
        }
    }
}

/// Leaves a partial file as a single stream may resume it: only its contiguous prefix, and no record of pieces
/// (whose holes would otherwise pass for bytes).
pub(crate) fn abandon(part: &Path) {
    let record = record_path(part);
    let Ok(text) = fs::read(&record) else { return };
    let prefix = serde_json::from_slice::<Record>(&text).map(|r| r.prefix()).unwrap_or(0);
    if let Ok(file) = crate::disk::open_partial_to_cut(part) {
        let _ = file.set_len(prefix);
    }
    let _ = fs::remove_file(record);
}

/// Runs the connections until every piece is on disk, one fails for good, or the download is stopped. The pool
/// grows while the throughput grows.
async fn fetch_all(shared: &Arc<Shared>, tx: mpsc::Sender<(u64, Bytes)>) -> Result<(), Stopped> {
    let pieces = shared.pieces.lock().unwrap().len();
    if pieces == 0 {
        return Ok(());
    }
    let stop = shared.fetch.cancel.child_token();
    let max = shared.fetch.connections.max.max(1).min(pieces);
    let mut tasks = tokio::task::JoinSet::new();
    let open = |tasks: &mut tokio::task::JoinSet<Result<(), Stopped>>, n: usize| {
        for _ in 0..n {
            tasks.spawn(connection(shared.clone(), tx.clone(), stop.clone()).in_current_span());
        }
    };
    open(&mut tasks, shared.fetch.connections.start.clamp(1, max));
    let mut tick = tokio::time::interval(GROWTH_WINDOW);
    tick.tick().await;
    let (mut last_bytes, mut at) = (0u64, Instant::now());
    // The throughput before the last connections were added; growth stops once adding them did not pay.
    let mut before_adding: Option<f64> = None;
    let mut growing = true;
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(stopped))) => {
                    stop.cancel();
                    // A failure beats a fallback: the file cannot be had either way.
                    if outcome.is_ok() || matches!(stopped, Stopped::Failed(_)) {
                        outcome = Err(stopped);
                    }
                }
                Some(Err(join)) => {
                    stop.cancel();
                    outcome = Err(DownloadError::io("a connection", io::Error::other(join.to_string())).into());
                }
            },
            _ = tick.tick() => {
                let bytes = shared.received.load(Ordering::Relaxed);
                let rate = (bytes - last_bytes) as f64 / at.elapsed().as_secs_f64().max(1e-3);
                (last_bytes, at) = (bytes, Instant::now());
                let running = tasks.len();
                let left = shared.pieces.lock().unwrap().len();
                if before_adding.is_some_and(|before| rate < before * GROWTH) {
                    tracing::debug!(running, bytes_per_second = rate as u64, "more connections did not help");
                    growing = false;
                }
                if growing && running < max && left > 0 && outcome.is_ok() {
                    let add = (running / 2).max(2).min(max - running).min(left);
                    tracing::debug!(running, add, bytes_per_second = rate as u64, "adding connections");
                    open(&mut tasks, add);
                    before_adding = Some(rate);
                }
            }
        }
    }
    drop(tx);
    if shared.fetch.cancel.is_cancelled() {
        return Err(DownloadError::Cancelled.into());
    }
    outcome
}

/// One connection: takes pieces until none are left or the fetch stops.
async fn connection(
    shared: Arc<Shared>,
    tx: mpsc::Sender<(u64, Bytes)>,
    stop: CancellationToken,
) -> Result<(), Stopped> {
    loop {
        let Some((start, end)) = shared.pieces.lock().unwrap().pop_front() else { return Ok(()) };
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            result = piece(&shared, start, end, &tx) => result?,
        }
    }
}

/// Bytes `[start, end)`, retried and resumed within the piece until all of them arrived.
async fn piece(shared: &Shared, start: u64, end: u64, tx: &mpsc::Sender<(u64, Bytes)>) -> Result<(), Stopped> {
    let fetch = &shared.fetch;
    let mut at = start;
    let mut failures = crate::hub::retry::Failures::new(fetch.retry, start);
    loop {
        match attempt(shared, &mut at, end, tx).await {
            Ok(()) => return Ok(()),
            Err(Interrupt::Fallback(reason)) => return Err(Stopped::Fallback(reason)),
            Err(Interrupt::Fatal(e)) => return Err(Stopped::Failed(e)),
            Err(Interrupt::Expired) => {}
            Err(Interrupt::Retry { reason, wait }) => {
                let delay = failures.failed(at, wait).map_err(|attempts| {
                    tracing::warn!(attempt = attempts, start, end, reason, "giving up on a piece");
                    Stopped::Failed(DownloadError::Transfer {
                        repo: fetch.origin.label(),
                        path: fetch.part.display().to_string(),
                        reason: reason.clone(),
                        attempts,
                    })
                })?;
                tracing::info!(
                    attempt = failures.count(),
                    start,
                    at,
                    end,
                    reason,
                    ?delay,
                    "a piece was interrupted; trying again"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// One request for the bytes `[*at, end)`; `at` moves past every byte that arrived.
async fn attempt(shared: &Shared, at: &mut u64, end: u64, tx: &mpsc::Sender<(u64, Bytes)>) -> Result<(), Interrupt> {
    let fetch = &shared.fetch;
    // One connection at a time asks the hub where the file is; the others then go straight to the answer.
    let mut resolving = None;
    if fetch.origin.is_hub() && shared.target.lock().unwrap().is_none() {
        resolving = Some(shared.resolving.lock().await);
    }
    let target = shared.target.lock().unwrap().clone();
    let retry = |reason: String| Interrupt::Retry { reason, wait: None };
    let response = match fetch.origin.request_range(target.as_ref(), *at, end - 1, fetch.validator.as_deref()).await {
        Ok(r) => r,
        Err(e) if e.is_transient() => return Err(retry(e.to_string())),
        Err(e) => return Err(Interrupt::Fatal(e.into())),
    };
    let status = response.status();
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) && target.is_some() {
        // The signed link expired: resolve the file again (unless another connection already has).
        {
            let mut current = shared.target.lock().unwrap();
            if *current == target {
                *current = None;
            }
        }
        if resolving.is_none() {
            return Err(Interrupt::Expired);
        }
        return Err(Interrupt::Retry { reason: "the download link expired".into(), wait: Some(Duration::ZERO) });
    }
    match status {
        StatusCode::PARTIAL_CONTENT => {
            let range = ContentRange::of(response.headers());
            if range.and_then(|r| r.range) != Some((*at, end - 1)) || range.and_then(|r| r.total) != Some(fetch.size) {
                return Err(Interrupt::Fallback(format!(
                    "asked for bytes {}-{} of {}, the server sent {:?}",
                    *at,
                    end - 1,
                    fetch.size,
                    response.headers().get(reqwest::header::CONTENT_RANGE)
                )));
            }
        }
        StatusCode::OK => return Err(Interrupt::Fallback("the server answered a range with the whole file".into())),
        _ => {
            let err = fetch.origin.status_error(&response);
            return Err(if err.is_transient() {
                Interrupt::Retry { reason: err.to_string(), wait: retry_after(response.headers()) }
            } else {
                Interrupt::Fatal(err.into())
            });
        }
    }
    if target.is_none() && fetch.origin.is_hub() {
        // Where the hub sent us: the next pieces go straight there.
        *shared.target.lock().unwrap() = Some(response.url().clone());
    }
    drop(resolving);
    let mut response = response;
    loop {
        let Some(chunk) = next_chunk(&mut response, fetch.stall_timeout).await.map_err(retry)? else { break };
        let n = chunk.len() as u64;
        if *at + n > end {
            return Err(Interrupt::Fallback(format!("the server sent more than the {} bytes asked for", end - *at)));
        }
        if tx.send((*at, chunk)).await.is_err() {
            // The writer stopped; its error is reported by the caller.
            return Ok(());
        }
        *at += n;
        fetch.counters.bytes_done.fetch_add(n, Ordering::Relaxed);
        shared.received.fetch_add(n, Ordering::Relaxed);
        fetch.limiter.take(n).await;
    }
    if *at < end {
        return Err(retry(format!("the body ended {} bytes short of the piece", end - *at)));
    }
    Ok(())
}

/// Hashes bytes `[from, to)` of the file, read back (from the page cache); the writes are positional, so moving
/// the file's offset here disturbs none of them.
fn hash_range(mut file: &File, from: u64, to: u64, hasher: &mut Hasher) -> io::Result<()> {
    file.seek(io::SeekFrom::Start(from))?;
    let read = crate::disk::read_chunks(file.take(to - from), |chunk| {
        hasher.update(chunk);
        Ok(())
    })?;
    if read < to - from {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Puts the pieces' bytes in place and hashes the contiguous prefix as it grows; keeps the record of what is on
/// disk beside the file. Returns the record, and the hashes once the whole file is there.
fn spawn_writer(
    file: File,
    part: PathBuf,
    mut record: Record,
    mut hasher: Hasher,
    mut rx: mpsc::Receiver<(u64, Bytes)>,
    counters: Arc<Counters>,
    hold: usize,
) -> tokio::task::JoinHandle<io::Result<(Record, Option<Digests>)>> {
    tokio::task::spawn_blocking(move || {
        let saved_at = record_path(&part);
        // The record says which bytes are on disk: those bytes are made durable first, so that after a power cut
        // it never names ranges still holding the zeros of a sparse file (a URL without a checksum would keep them).
        let save = |record: &Record| {
            file.sync_data()?;
            crate::disk::write_atomic(&saved_at, &serde_json::to_vec(record).expect("a record serialises"), 0o644)
        };
        let mut hashed = record.prefix();
        if hashed > 0 {
            counters.verifying.fetch_add(1, Ordering::Relaxed);
            let rehashed = hash_range(&file, 0, hashed, &mut hasher);
            counters.verifying.fetch_sub(1, Ordering::Relaxed);
            rehashed?;
        }
        save(&record)?;
        let (mut saved, mut dirty) = (Instant::now(), false);
        // Chunks that landed past the hashed bytes, kept (shared, not copied) until the gap before them fills.
        let mut held = std::collections::BTreeMap::<u64, Bytes>::new();
        let mut held_bytes = 0;
        while let Some((offset, bytes)) = rx.blocking_recv() {
            file.write_all_at(&bytes, offset)?;
            crate::disk::start_writeback(&file, offset, bytes.len());
            let end = offset + bytes.len() as u64;
            record.add(offset, end);
            if offset == hashed {
                hasher.update(&bytes);
                hashed = end;
            } else if offset > hashed && held_bytes + bytes.len() <= hold {
                held_bytes += bytes.len();
                if let Some(replaced) = held.insert(offset, bytes) {
                    held_bytes -= replaced.len();
                }
            }
            let prefix = record.prefix();
            while prefix > hashed {
                // What is held from the hashed end on is hashed from memory...
                while let Some(chunk) = held.first_entry() {
                    let start = *chunk.key();
                    if start > hashed {
                        break;
                    }
                    let chunk = chunk.remove();
                    held_bytes -= chunk.len();
                    let chunk_end = start + chunk.len() as u64;
                    if chunk_end > hashed {
                        hasher.update(&chunk[(hashed - start) as usize..]);
                        hashed = chunk_end;
                    }
                }
                // ...and bytes on disk that were not held (past the limit) are read back from the page cache.
                let to = held.keys().next().map_or(prefix, |&start| start.min(prefix));
                if to > hashed {
                    hash_range(&file, hashed, to, &mut hasher)?;
                    hashed = to;
                }
            }
            dirty = true;
            if saved.elapsed() >= SAVE_EVERY {
                save(&record)?;
                (saved, dirty) = (Instant::now(), false);
            }
        }
        if dirty {
            save(&record)?;
        }
        if hashed < record.size {
            return Ok((record, None));
        }
        // Durable before anyone renames it into view.
        file.sync_all()?;
        Ok((record, Some(hasher.finish())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_in_any_order_are_hashed_once_whether_kept_in_memory_or_read_back() {
        use sha2::Digest as _;
        let content: Vec<u8> = (0..1_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
        let expected = crate::format::hex(&sha2::Sha256::digest(&content));
        // Chunks of 10,000 bytes, sent in an order that leaves gaps open for a while.
        let mut order: Vec<u64> = (0..100).collect();
        order.sort_by_key(|i| (i % 7, *i));
        for hold in [0, 64 << 10, 32 << 20] {
            let dir = tempfile::tempdir().unwrap();
            let part = dir.path().join("f.incomplete");
            let counters = Arc::new(Counters::default());
            let writer = PieceWriter::open(
                &part,
                content.len() as u64,
                None,
                true,
                Hasher::sha256(false),
                &counters,
                Buffers { queue: 4, hold },
            )
            .unwrap();
            assert_eq!(writer.missing, [(0, content.len() as u64)]);
            for &i in &order {
                let at = i as usize * 10_000;
                writer.tx.send((at as u64, Bytes::copy_from_slice(&content[at..at + 10_000]))).await.unwrap();
            }
            drop(writer.tx);
            let (record, digests) = PieceWriter::finish(writer.writer).await.unwrap();
            assert_eq!(record.done, [(0, content.len() as u64)], "hold {hold}");
            assert_eq!(digests.unwrap().0, expected, "hold {hold}");
            assert_eq!(fs::read(&part).unwrap(), content);
        }
    }

    #[test]
    fn ranges_merge_and_what_is_missing_is_cut_into_pieces() {
        let mut r = Record { size: 100, validator: None, done: Vec::new() };
        let pieces = |r: &Record, piece| r.missing().iter().flat_map(|&(s, e)| cut(s, e, piece)).collect::<Vec<_>>();
        assert_eq!(pieces(&r, 30), [(0, 30), (30, 60), (60, 90), (90, 100)]);
        r.add(10, 20);
        r.add(40, 50);
        r.add(20, 40);
        assert_eq!(r.done, [(10, 50)]);
        assert_eq!((r.bytes(), r.prefix()), (40, 0));
        assert_eq!(
            pieces(&r, 8),
            [(0, 8), (8, 10), (50, 58), (58, 66), (66, 74), (74, 82), (82, 90), (90, 98), (98, 100)]
        );
        r.add(0, 10);
        r.add(90, 100);
        assert_eq!((r.prefix(), r.done.clone()), (50, vec![(0, 50), (90, 100)]));
        assert_eq!(r.missing(), [(50, 90)]);
        r.add(50, 90);
        assert!(r.missing().is_empty());
        assert_eq!(r.prefix(), 100);
    }

    #[test]
    fn a_download_starts_with_about_eight_connections_however_many_files_it_has() {
        assert_eq!(Connections::shared(16, 1), Connections { start: 8, max: 16 });
        assert_eq!(Connections::shared(16, 4), Connections { start: 2, max: 16 });
        assert_eq!(Connections::shared(16, 3), Connections { start: 2, max: 16 });
        assert_eq!(Connections::shared(4, 1), Connections { start: 4, max: 4 });
        assert_eq!(Connections::shared(1, 1), Connections { start: 1, max: 1 });
    }

    #[test]
    fn pieces_are_between_one_and_thirty_two_mebibytes() {
        assert_eq!(piece_size(16 << 20, 16), 1 << 20);
        assert_eq!(piece_size(512 << 20, 16), 8 << 20);
        assert_eq!(piece_size(40 << 30, 16), 32 << 20);
    }

    #[test]
    fn a_record_is_trusted_only_for_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("x.incomplete");
        fs::write(&part, vec![0u8; 100]).unwrap();
        let record = Record { size: 100, validator: Some("\"v1\"".into()), done: vec![(0, 40)] };
        fs::write(record_path(&part), serde_json::to_vec(&record).unwrap()).unwrap();
        assert_eq!(load_record(&part, 100, Some("\"v1\"")), Some(record));
        assert_eq!(load_record(&part, 100, Some("\"v2\"")), None, "another version of the file");
        assert_eq!(load_record(&part, 120, Some("\"v1\"")), None, "another size");
        // A single stream taking over keeps the contiguous prefix only.
        abandon(&part);
        assert_eq!(fs::metadata(&part).unwrap().len(), 40);
        assert!(!record_path(&part).exists());
    }
}
