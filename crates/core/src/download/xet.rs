//! A hub file stored in Xet, fetched from the Xet CAS with the `hf-xet` engine (the one `huggingface_hub` uses).
//! The hub's resolve answer names the file (`X-Xet-Hash`) and where a read token is had (`Link: <…>;
//! rel="xet-auth"`); the token is asked for with the hub token, which goes to the hub's origin only, and the CAS
//! sees only its own token, refreshed by the engine before it expires. The engine's chunks land in whatever order
//! they complete, into the same writer as HTTP's pieces ([`super::parts::PieceWriter`]: hashed as the contiguous
//! bytes grow, what is on disk recorded beside them, synced at the end); a cut or a kill resumes the ranges not on
//! disk with ranged reconstructions, and HTTP's pieces resume from the same record. When Xet fails, stalls or
//! disagrees with the listing, the caller falls back to HTTP from the bytes already on disk, and says so; when it
//! is slow for a large file ([`XetStop::Slow`]), HTTP in pieces takes over likewise.

use super::hasher::{Digests, Hasher};
use super::parts::{Buffers, PieceWriter};
use super::progress::{Counters, RateLimiter};
use super::DownloadError;
use crate::hub::HubClient;
use bytes::Bytes;
use reqwest::header::{HeaderMap, LINK};
use reqwest::Url;
use serde::Deserialize;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Turns Xet off, as it does for `huggingface_hub`.
pub const DISABLE_ENV: &str = "HF_HUB_DISABLE_XET";

/// Whether the environment turns Xet off (`HF_HUB_DISABLE_XET=1`, `true`, `yes`, `on`).
pub fn disabled_by_env() -> bool {
    std::env::var(DISABLE_ENV)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// Where a Xet-backed file is: its Xet id, and the endpoint of its read token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XetFile {
    pub hash: String,
    pub token_url: Url,
}

/// Reads a resolve answer (the `302`, not followed): `Some` for a Xet-backed file.
pub(crate) fn locate(headers: &HeaderMap, resolve_url: &Url) -> Option<XetFile> {
    let hash = headers.get("x-xet-hash")?.to_str().ok()?.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let linked =
        headers.get_all(LINK).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(|link| {
            let (target, params) = link.split_once(';')?;
            params.contains("rel=\"xet-auth\"").then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
        });
    // Older hubs name the route in a header of its own.
    let route = linked.or_else(|| headers.get("x-xet-refresh-route")?.to_str().ok())?;
    let token_url = resolve_url.join(route).ok().filter(|u| matches!(u.scheme(), "http" | "https"))?;
    Some(XetFile { hash, token_url })
}

/// The hub's answer for a read token.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadToken {
    access_token: String,
    /// Unix seconds.
    exp: u64,
    cas_url: String,
}

async fn read_token(hub: &HubClient, url: &Url) -> Result<ReadToken, String> {
    let response = hub.get(url.clone(), None).await.map_err(|e| format!("no Xet read token: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("the hub refused a Xet read token ({})", response.status()));
    }
    let body = crate::http::read_capped(response, 64 << 10).await.map_err(|e| format!("no Xet read token: {e}"))?;
    let token: ReadToken =
        serde_json::from_slice(&body).map_err(|e| format!("the Xet read token does not parse: {e}"))?;
    match Url::parse(&token.cas_url) {
        Ok(cas) if matches!(cas.scheme(), "http" | "https") => Ok(token),
        _ => Err(format!("the Xet read token names no CAS URL: {:?}", token.cas_url)),
    }
}

/// Why the Xet fetch did not finish the file.
pub(crate) enum XetStop {
    /// Xet did not work for this file: HTTP takes over from the bytes on disk.
    Fallback(String),
    /// What the CAS rebuilt is not the file the hub lists (another length): its bytes are dropped, and HTTP takes
    /// over from where this attempt began.
    Disagrees(String),
    /// The CAS is slow for this file, as a far CDN that holds each connection back is, and the engine, in bounded
    /// memory, has few xorbs in flight: HTTP in pieces (which adds connections while they pay) takes over from the
    /// bytes on disk.
    Slow(String),
    /// The download cannot go on at all (cancelled, the disk).
    Failed(DownloadError),
}

/// How long a large file is streamed over Xet before its speed is judged, the speed below which the rest goes over
/// HTTP in pieces, and how much must be left for that to be worth it. The engine has about 8 fetches in flight (its
/// 64 MB buffer in [`RANGE`]s): under 48 MB/s, each connection is held under 6 MB/s, as a far CDN holds them, and
/// HTTP's pieces (16 connections) give twice as much. Unthrottled, the engine gives hundreds of MB/s.
const JUDGED_AFTER: Duration = Duration::from_secs(3);
const SLOW: u64 = 48_000_000;
const WORTH_SWITCHING: u64 = 64 << 20;

/// The Xet engine one download's files share, started when the first of them is found in Xet: its buffers bound
/// the memory of all of them together, and its connections and caches serve each in turn.
pub(crate) struct Engine {
    /// The engine's own cache and staging folder.
    cache_dir: PathBuf,
    /// Fetches from the CAS at once to start with (the engine adapts from there), as many as an HTTP download of a
    /// large file starts with at most.
    connections: usize,
    session: tokio::sync::OnceCell<xet::xet_session::XetSession>,
    /// The files streaming at once. Each holds a term queued for its writer and one being written beside the
    /// engine's shared buffer, and the engine already streams several ranges of each: more files add memory, not
    /// speed. Two let one file's end (its last hashing, its sync) overlap the next one's start.
    files: tokio::sync::Semaphore,
}

/// How many of a download's files stream from the Xet engine at once (see [`Engine::files`]).
const FILES_AT_ONCE: usize = 2;

impl Engine {
    pub fn new(cache_dir: PathBuf, connections: usize) -> Arc<Engine> {
        Arc::new(Engine {
            cache_dir,
            connections,
            session: tokio::sync::OnceCell::new(),
            files: tokio::sync::Semaphore::new(FILES_AT_ONCE),
        })
    }

    async fn session(&self) -> Result<xet::xet_session::XetSession, String> {
        self.session.get_or_try_init(|| async { self.start() }).await.cloned()
    }

    fn start(&self) -> Result<xet::xet_session::XetSession, String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        let mut config = xet::xet_session::XetConfig::new();
        // Memory stays bounded: the engine's own defaults buffer a sixteenth of the RAM and prefetch a gigabyte, for
        // each session. A fetch from the CAS is a range of one xorb (up to 64 MiB) held in the buffer until written.
        for (key, value) in [
            ("reconstruction.download_buffer_size", "32mb"),
            ("reconstruction.download_buffer_perfile_size", "32mb"),
            ("reconstruction.download_buffer_limit", "64mb"),
            ("reconstruction.min_prefetch_buffer", "16mb"),
        ] {
            if !set_in_env(key) {
                config = config.with_config(key, value).map_err(|e| text(&e))?;
            }
        }
        // The engine starts with 4 fetches and adds more only as its round-trip estimates allow: a far CAS that holds
        // each connection back needs many at once from the start.
        if !set_in_env("client.ac_initial_download_concurrency") {
            config = config
                .with_config("client.ac_initial_download_concurrency", self.connections.max(1))
                .map_err(|e| text(&e))?;
        }
        config.telemetry.enabled = false;
        // A CAS that fails is left for HTTP soon, rather than after the engine's minutes of retries.
        config.client.retry_max_attempts = 3;
        config.client.retry_base_delay = Duration::from_millis(500);
        xet::xet_session::XetSessionBuilder::new_with_config(config)
            .with_cache_dir(&self.cache_dir)
            .with_tokio_handle(tokio::runtime::Handle::current())
            .build()
            .map_err(|e| text(&e))
    }
}

/// Whether the engine's own environment variable for `key` (`HF_XET_GROUP_NAME`, read by the engine itself) is set:
/// then it wins over this app's choice, as it does for `huggingface_hub`.
fn set_in_env(key: &str) -> bool {
    std::env::var_os(format!("HF_XET_{}", key.replace('.', "_").to_ascii_uppercase())).is_some()
}

/// One Xet-backed file into `part`.
pub(crate) struct XetFetch {
    pub hub: HubClient,
    pub file: XetFile,
    pub part: PathBuf,
    pub size: u64,
    /// Names for messages.
    pub what: String,
    /// The engine the download's files share.
    pub engine: Arc<Engine>,
    /// Whether a slow CAS hands the rest to HTTP in pieces ([`XetStop::Slow`]): when pieces are allowed and no
    /// bandwidth limit is set.
    pub leave_when_slow: bool,
    pub stall_timeout: Duration,
    pub limiter: Arc<RateLimiter>,
    pub counters: Arc<Counters>,
    pub cancel: CancellationToken,
}

impl XetFetch {
    /// Fetches the bytes not on disk yet and returns the file's hashes.
    pub async fn run(&self, hasher: Hasher) -> Result<Digests, XetStop> {
        let io_error = |what: &str, e| XetStop::Failed(DownloadError::io(format!("{what} {}", self.what), e));
        let folder = self.part.parent().unwrap_or(&self.part);
        fs::create_dir_all(folder).map_err(|e| io_error("creating the folder of", e))?;
        let _streaming = tokio::select! {
            _ = self.cancel.cancelled() => return Err(XetStop::Failed(DownloadError::Cancelled)),
            permit = self.engine.files.acquire() => permit.expect("the semaphore is never closed"),
        };
        let token = read_token(&self.hub, &self.file.token_url).await.map_err(XetStop::Fallback)?;
        let group = self.group(token).await.map_err(XetStop::Fallback)?;
        // The engine's chunks land in whatever order they complete, into the same writer as HTTP's pieces (which
        // hashes the contiguous bytes as they grow); a blob is named by its hash, so what is on disk is kept.
        let opened = PieceWriter::open(&self.part, self.size, None, true, hasher, &self.counters, Buffers::XET)
            .map_err(|e| io_error("opening", e))?;
        // What this file counted as done (the download's counters are shared by its files).
        let mut counted = opened.on_disk;
        if opened.on_disk > 0 {
            tracing::info!(missing = ?opened.missing, "fetching the bytes not on disk over Xet");
        }
        let streamed = self.stream(&group, &opened.missing, &opened.tx, &mut counted).await;
        drop(opened.tx);
        let written = PieceWriter::finish(opened.writer).await;
        let result = match (streamed, written) {
            (_, Err(e)) => Err(io_error("writing", e)),
            (Err(stop), Ok(_)) => Err(stop),
            (Ok(()), Ok((_, Some(digests)))) => Ok(digests),
            (Ok(()), Ok((record, None))) => {
                Err(XetStop::Disagrees(format!("Xet left {} of {} bytes on disk", record.bytes(), self.size)))
            }
        };
        match result {
            Ok(digests) => {
                let _ = fs::remove_file(super::parts::record_path(&self.part));
                Ok(digests)
            }
            Err(XetStop::Disagrees(reason)) => {
                // What this CAS rebuilt cannot be trusted: HTTP starts the file over.
                let _ = fs::remove_file(super::parts::record_path(&self.part));
                let _ = fs::remove_file(&self.part);
                self.counters.bytes_done.fetch_sub(counted, Ordering::Relaxed);
                Err(XetStop::Fallback(reason))
            }
            Err(stop @ (XetStop::Fallback(_) | XetStop::Slow(_))) => {
                // HTTP counts again from what is on disk (its record stays: its pieces resume from it).
                self.counters.bytes_done.fetch_sub(counted, Ordering::Relaxed);
                Err(stop)
            }
            other => other,
        }
    }

    /// A stream group of the download's engine, with this file's CAS and read token.
    async fn group(&self, token: ReadToken) -> Result<xet::xet_session::XetDownloadStreamGroup, String> {
        let session = self.engine.session().await?;
        // The engine refreshes the CAS token from the hub, with the hub token: only when that route is the hub's.
        let mut refresh = xet::xet_session::HeaderMap::new();
        if let Some(value) = self.hub.authorization_for(&self.file.token_url).and_then(|a| a.parse().ok()) {
            refresh.insert(reqwest::header::AUTHORIZATION, value);
        }
        session
            .new_download_stream_group()
            .map_err(|e| e.to_string())?
            .with_endpoint(&token.cas_url)
            .with_token_info(token.access_token, token.exp)
            .with_token_refresh_url(self.file.token_url.as_str(), refresh)
            .build()
            .await
            .map_err(|e| e.to_string())
    }

    /// Streams the `missing` ranges into the writer, in the order the engine has their bytes: asked of the engine
    /// in [`RANGE`]s, [`RANGES_AT_ONCE`] of them at a time, so that no term is larger than a range.
    async fn stream(
        &self,
        group: &xet::xet_session::XetDownloadStreamGroup,
        missing: &[(u64, u64)],
        tx: &mpsc::Sender<(u64, Bytes)>,
        counted: &mut u64,
    ) -> Result<(), XetStop> {
        let mut pending: std::collections::VecDeque<(u64, u64)> =
            missing.iter().flat_map(|&(start, end)| super::parts::cut(start, end, RANGE)).collect();
        let left: u64 = missing.iter().map(|(start, end)| end - start).sum();
        // The ranges' next chunks, taken from the engine only when polled: one at a time, once the writer has room.
        let mut running = futures_util::stream::FuturesUnordered::new();
        let mut received = 0;
        let judge_at = tokio::time::Instant::now() + JUDGED_AFTER;
        let mut judged = !self.leave_when_slow || left < WORTH_SWITCHING;
        loop {
            while running.len() < RANGES_AT_ONCE {
                let Some((start, end)) = pending.pop_front() else { break };
                let info = xet::xet_session::XetFileInfo::new(self.file.hash.clone(), self.size);
                let whole = start == 0 && end == self.size;
                let stream = group
                    .download_unordered_stream(info, (!whole).then_some(start..end))
                    .await
                    .map_err(|e| XetStop::Fallback(e.to_string()))?;
                running.push(RangeStream { stream, start, end, received: 0, ended: false }.next());
            }
            if running.is_empty() {
                return Ok(());
            }
            // A place in the writer's queue first, so that a term taken from the engine goes straight into it: what
            // waits is held by the engine's buffer, which bounds it.
            let place = tokio::select! {
                _ = self.cancel.cancelled() => return Err(XetStop::Failed(DownloadError::Cancelled)),
                place = tx.reserve() => place,
            };
            // The writer stopped; its error is the one the caller reports.
            let place = place.map_err(|_| XetStop::Fallback("the writer stopped".into()))?;
            let next = tokio::select! {
                _ = self.cancel.cancelled() => return Err(XetStop::Failed(DownloadError::Cancelled)),
                _ = tokio::time::sleep_until(judge_at), if !judged => {
                    judged = true;
                    let rate = received / JUDGED_AFTER.as_secs();
                    if rate < SLOW && left.saturating_sub(received) > WORTH_SWITCHING {
                        return Err(XetStop::Slow(format!(
                            "{:.1} MB/s from the Xet CAS in the first {} s",
                            rate as f64 / 1e6,
                            JUDGED_AFTER.as_secs()
                        )));
                    }
                    continue;
                }
                next = tokio::time::timeout(self.stall_timeout, futures_util::StreamExt::next(&mut running)) => next,
            };
            let (mut range, next) = match next {
                Err(_) => {
                    return Err(XetStop::Fallback(format!(
                        "no bytes from the Xet CAS for {} s",
                        self.stall_timeout.as_secs_f32()
                    )))
                }
                Ok(None) => return Ok(()),
                Ok(Some(next)) => next,
            };
            let (from_start, bytes) = match next {
                Err(e) => return Err(XetStop::Fallback(e.to_string())),
                Ok(None) => {
                    range.ended = true;
                    if range.received < range.end - range.start {
                        return Err(XetStop::Disagrees(format!(
                            "the Xet CAS stopped after {} of {} bytes",
                            range.start + range.received,
                            range.end
                        )));
                    }
                    continue;
                }
                Ok(Some(chunk)) => chunk,
            };
            // The engine counts from the start of the range asked for.
            let (offset, n) = (range.start + from_start, bytes.len() as u64);
            if offset + n > range.end {
                return Err(XetStop::Disagrees(format!(
                    "the Xet CAS sent bytes {offset}-{} outside the {}-{} asked for of the file's {}",
                    offset + n,
                    range.start,
                    range.end,
                    self.size
                )));
            }
            place.send((offset, bytes));
            range.received += n;
            received += n;
            *counted += n;
            self.counters.bytes_done.fetch_add(n, Ordering::Relaxed);
            running.push(range.next());
            self.limiter.take(n).await;
        }
    }
}

/// The size of the ranges a file is asked of the engine in. A term (what the engine fetches and hands over at once)
/// is the part of one xorb (up to 64 MiB) that a range covers: small ones are pipelined finely and held briefly, and
/// the allocator reuses their buffers. Each range is one reconstruction asked of the CAS (128 a GiB).
/// Measured on this machine, 2026-12-07, 1 GiB in 4 files: the engine's own ranges (64 MiB terms, every file at once)
/// peaked at 540-680 MB; 16 MiB ranges at 160-210 MB; 8 MiB ranges at 175-187 MB, and a 512 MiB file at 118-135 MB,
/// as fast or faster (4.0 s against 4.2 s, 2.1 s against 2.3 s, medians of 3).
const RANGE: u64 = 8 << 20;
/// Ranges streamed at once for a file: more than the engine's buffer holds (64 MB), so that the reconstructions
/// of the next ones are asked while those stream, hiding the CAS's round trips.
const RANGES_AT_ONCE: usize = 10;

/// One range of a file, streamed by the engine; cancelled when dropped before its end.
struct RangeStream {
    stream: xet::xet_session::XetUnorderedDownloadStream,
    start: u64,
    end: u64,
    received: u64,
    ended: bool,
}

type NextChunk = Result<Option<(u64, Bytes)>, xet::xet_session::SessionError>;

impl RangeStream {
    /// Waits for the range's next chunk, and gives the range back with it.
    async fn next(mut self) -> (RangeStream, NextChunk) {
        let next = self.stream.next().await;
        (self, next)
    }
}

impl Drop for RangeStream {
    fn drop(&mut self) {
        if !self.ended {
            self.stream.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::headers;

    #[test]
    fn a_resolve_answer_names_the_xet_file_and_its_token_route() {
        let resolve = Url::parse("https://hub.example/acme/m/resolve/main/w.gguf").unwrap();
        let hash = "a".repeat(64);
        let found = locate(
            &headers(&[
                ("x-xet-hash", &hash),
                (
                    "link",
                    "<https://hub.example/api/models/acme/m/xet-read-token/c0ffee>; rel=\"xet-auth\", <https://x>; rel=\"next\"",
                ),
            ]),
            &resolve,
        )
        .unwrap();
        assert_eq!(found.hash, hash);
        assert_eq!(found.token_url.as_str(), "https://hub.example/api/models/acme/m/xet-read-token/c0ffee");
        // The older header, relative to the hub.
        let older = locate(
            &headers(&[("x-xet-hash", &hash), ("x-xet-refresh-route", "/api/models/acme/m/xet-read-token/main")]),
            &resolve,
        )
        .unwrap();
        assert_eq!(older.token_url.as_str(), "https://hub.example/api/models/acme/m/xet-read-token/main");
        // No hash, a malformed hash, or no route: not Xet.
        assert_eq!(locate(&headers(&[]), &resolve), None);
        assert_eq!(locate(&headers(&[("x-xet-hash", "../etc"), ("x-xet-refresh-route", "/t")]), &resolve), None);
        assert_eq!(locate(&headers(&[("x-xet-hash", &hash)]), &resolve), None);
        assert_eq!(
            locate(&headers(&[("x-xet-hash", &hash), ("x-xet-refresh-route", "file:///etc/passwd")]), &resolve),
            None
        );
    }
}
