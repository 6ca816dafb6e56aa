//! One file's bytes over HTTP into a partial file on disk, for hub files and direct URLs alike. The bytes stream
//! into a blocking writer that hashes them in the same pass (re-hashing what is already on disk when resuming)
//! and syncs the file at the end. A cut, a stall or a transient status resumes with `Range` from what is on disk.
//! Every answer is checked against what was asked: a `206` must start where we asked and end at the length we
//! know, a `416` means "complete" only when its `Content-Range` says the file is exactly what we have, a `200`
//! to a ranged request starts over, and no answer may be longer than the file. A resume of a file that may have
//! changed is asked with `If-Range` and its validator, kept beside the bytes, so a changed file starts over instead
//! of being spliced; without a validator or a checksum to catch a splice, it starts over anyway.

use super::hasher::{Digests, Hasher};
use super::origin::{next_chunk, Origin};
use super::progress::{Counters, RateLimiter};
use super::{parts, DownloadError};
use crate::http::ContentRange;
use crate::hub::client::retry_after;
use crate::hub::RetryPolicy;
use bytes::Bytes;
use reqwest::header::{HeaderMap, ETAG, LAST_MODIFIED};
use reqwest::StatusCode;
use std::fs;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) enum Chunk {
    Data(Bytes),
    /// The server starts over: drop what is on disk.
    Restart,
}

/// What a finished fetch wrote.
pub(crate) struct Fetched {
    pub len: u64,
    pub digest: String,
    pub md5: Option<String>,
    /// The last `Content-Disposition` the server sent (a URL download may be named by it).
    pub disposition: Option<String>,
}

/// One file to fetch into `part`.
pub(crate) struct RangedFetch {
    pub origin: Origin,
    pub part: PathBuf,
    /// The size the file must have, when it is known before the first request (a hub listing).
    pub size: Option<u64>,
    /// Where the file's validator (`ETag` or `Last-Modified`) is kept beside the bytes, for `If-Range` when
    /// resuming; `None` when the content cannot change under its name (a hub blob, named by its hash).
    pub validator_file: Option<PathBuf>,
    /// Whether bytes on disk may be resumed without a validator: true when the whole file is checked by a hash
    /// at the end, which catches a splice.
    pub verified_at_end: bool,
    pub hasher: Hasher,
    /// Names for messages: the repo or URL, and the file.
    pub repo: String,
    pub path: String,
    pub stall_timeout: Duration,
    pub retry: RetryPolicy,
    pub limiter: Arc<RateLimiter>,
    pub counters: Arc<Counters>,
    pub cancel: CancellationToken,
    /// Whether to report the size once learned as the download's total (a URL download is one file).
    pub report_total: bool,
    /// Connections a large file may use ([`super::parts`]); at most 1 for a single stream.
    pub connections: parts::Connections,
}

/// Why one attempt ended early.
enum Interrupt {
    /// Worth another attempt: a reset, a cut body, a stall, 429/5xx.
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    Fatal(DownloadError),
}

/// What one attempt learned and left.
struct Attempt {
    offset: u64,
    /// The file's length once any answer said it.
    total: Option<u64>,
    validator: Option<String>,
    disposition: Option<String>,
}

impl RangedFetch {
    fn size_mismatch(&self, actual: u64) -> DownloadError {
        DownloadError::SizeMismatch {
            repo: self.repo.clone(),
            path: self.path.clone(),
            expected: self.size.unwrap_or(0),
            actual,
        }
    }

    /// Fetches every byte, resuming and retrying, and returns the length and hashes of what is on disk. The
    /// caller checks them against what the file must be, and places it.
    pub async fn run(mut self) -> Result<Fetched, DownloadError> {
        let part = self.part.clone();
        let what = || format!("{} of {}", self.path, self.repo);
        fs::create_dir_all(part.parent().unwrap())
            .map_err(|e| DownloadError::io(format!("creating {}", part.display()), e))?;
        if self.connections.max > 1 {
            if let Some(fetched) = self.run_in_pieces().await? {
                return Ok(fetched);
            }
        }
        // One stream: a record of pieces would make their holes pass for bytes.
        parts::abandon(&part);
        let mut state = Attempt { offset: 0, total: self.size, validator: self.load_validator(), disposition: None };
        let on_disk = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let resumable = self.verified_at_end || state.validator.is_some();
        state.offset = if on_disk > self.size.unwrap_or(u64::MAX) || !resumable { 0 } else { on_disk };
        self.counters.bytes_done.fetch_add(state.offset, Ordering::Relaxed);
        let hasher = std::mem::replace(&mut self.hasher, Hasher::sha256(false));
        let (tx, rx) = mpsc::channel(64);
        let writer = spawn_writer(part.clone(), state.offset, hasher, rx, self.counters.clone());
        // Every byte is already on disk (a kill after the last write): nothing to ask for.
        let whole = self.size.is_some_and(|size| size > 0 && state.offset == size);
        if state.offset > 0 {
            tracing::info!(offset = state.offset, "resuming from the bytes on disk");
        } else if on_disk > 0 {
            tracing::info!(on_disk, "starting over: the bytes on disk cannot be resumed");
        }
        let result = if whole {
            drop(tx);
            Ok(())
        } else {
            self.stream(tx, &mut state).await
        };
        let written =
            writer.await.map_err(|e| DownloadError::io(format!("writing {}", what()), io::Error::other(e)))?;
        // The writer's own failure (disk full, permission) is the real cause when both failed.
        let (len, (digest, md5)) = match (result, written) {
            (_, Err(e)) => return Err(DownloadError::io(format!("writing {}", what()), e)),
            (Err(e), Ok(_)) => return Err(e),
            (Ok(()), Ok(done)) => done,
        };
        Ok(Fetched { len, digest, md5, disposition: state.disposition })
    }

    /// The file over several connections ([`super::parts`]) when it is large and its server serves ranges;
    /// `None` leaves it to the single stream, from the contiguous bytes on disk.
    async fn run_in_pieces(&self) -> Result<Option<Fetched>, DownloadError> {
        let (size, validator, disposition) = match self.size {
            Some(size) => (size, None, None),
            None => match self.probe().await? {
                Some(probed) => probed,
                None => return Ok(None),
            },
        };
        if size < parts::MIN_SIZE {
            return Ok(None);
        }
        // A URL that changed since its bytes on disk were fetched starts over.
        let kept = self.load_validator();
        if kept.is_some() && kept != validator {
            let _ = fs::remove_file(&self.part);
            let _ = fs::remove_file(parts::record_path(&self.part));
        }
        if self.report_total {
            self.counters.bytes_total.store(size, Ordering::Relaxed);
        }
        // The disk must hold what is still to come (the file is sparse until its pieces land).
        use std::os::unix::fs::MetadataExt;
        let allocated = fs::metadata(&self.part).map(|m| m.blocks() * 512).unwrap_or(0);
        let free = crate::disk::free_space(&self.part).unwrap_or(u64::MAX);
        if size.saturating_sub(allocated) > free {
            return Err(DownloadError::InsufficientSpace {
                repo: self.repo.clone(),
                path: self.part.parent().unwrap().display().to_string(),
                needed: size - allocated,
                free,
            });
        }
        self.keep_validator(validator.as_deref());
        let fetch = parts::PartedFetch {
            origin: self.origin.clone(),
            part: self.part.clone(),
            size,
            validator,
            verified_at_end: self.verified_at_end,
            connections: self.connections,
            stall_timeout: self.stall_timeout,
            retry: self.retry,
            limiter: self.limiter.clone(),
            counters: self.counters.clone(),
            cancel: self.cancel.clone(),
        };
        match fetch.run(self.hasher.fresh()).await {
            Ok((digest, md5)) => Ok(Some(Fetched { len: size, digest, md5, disposition })),
            Err(parts::Stopped::Fallback(_)) => Ok(None),
            Err(parts::Stopped::Failed(e)) => Err(e),
        }
    }

    /// A URL's length, validator and `Content-Disposition`, from a request for its first byte; `None` when the
    /// server does not serve ranges or does not say the length (the single stream then asks for everything).
    async fn probe(&self) -> Result<Option<(u64, Option<String>, Option<String>)>, DownloadError> {
        let response = match self.origin.request_range(None, 0, 0, None).await {
            Ok(response) => response,
            Err(e) if e.is_transient() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let headers = response.headers();
        let total = ContentRange::of(headers).filter(|r| r.range == Some((0, 0))).and_then(|r| r.total);
        if response.status() != StatusCode::PARTIAL_CONTENT || total.is_none() {
            return Ok(None);
        }
        let disposition =
            headers.get(reqwest::header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(total.map(|total| (total, validator_of(headers), disposition)))
    }

    fn load_validator(&self) -> Option<String> {
        let text = fs::read_to_string(self.validator_file.as_ref()?).ok()?;
        Some(text.trim().to_string()).filter(|v| !v.is_empty() && v.len() < 1024)
    }

    fn keep_validator(&self, validator: Option<&str>) {
        if let Some(file) = &self.validator_file {
            let _ = match validator {
                Some(v) => crate::disk::write_atomic(file, v.as_bytes(), 0o644),
                None => fs::remove_file(file).or(Ok(())),
            };
        }
    }

    /// Streams the body into the writer, resuming and retrying until every byte arrived.
    async fn stream(&self, tx: mpsc::Sender<Chunk>, state: &mut Attempt) -> Result<(), DownloadError> {
        let mut failures = crate::hub::retry::Failures::new(self.retry, state.offset);
        loop {
            let outcome = tokio::select! {
                _ = self.cancel.cancelled() => return Err(DownloadError::Cancelled),
                outcome = self.attempt(&tx, state) => outcome,
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(Interrupt::Fatal(e)) => return Err(e),
                Err(Interrupt::Retry { reason, wait }) => {
                    let delay = failures.failed(state.offset, wait).map_err(|attempts| {
                        tracing::warn!(attempt = attempts, reason, "giving up");
                        DownloadError::Transfer {
                            repo: self.repo.clone(),
                            path: self.path.clone(),
                            reason: reason.clone(),
                            attempts,
                        }
                    })?;
                    tracing::info!(
                        attempt = failures.count(),
                        offset = state.offset,
                        reason,
                        ?delay,
                        "interrupted; trying again"
                    );
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(DownloadError::Cancelled),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn attempt(&self, tx: &mpsc::Sender<Chunk>, state: &mut Attempt) -> Result<(), Interrupt> {
        let retry = |reason: String| Interrupt::Retry { reason, wait: None };
        // Bytes on disk that nothing can vouch for (no validator, no checksum at the end) are not resumed.
        if state.offset > 0 && state.validator.is_none() && !self.verified_at_end {
            self.restart(tx, state).await;
        }
        let asked = state.offset;
        let mut response = match self.origin.request(asked, state.validator.as_deref()).await {
            Ok(r) => r,
            Err(e) if e.is_transient() => return Err(retry(e.to_string())),
            Err(e) => return Err(Interrupt::Fatal(e.into())),
        };
        let status = response.status();
        let headers = response.headers();
        if let Some(d) = headers.get(reqwest::header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()) {
            state.disposition = Some(d.to_string());
        }
        let answer = match check_answer(status, headers, asked, self.size) {
            Ok(answer) => answer,
            Err(Refusal::Size(actual)) => {
                tracing::warn!(actual, expected = self.size, "refused: the server gives another length");
                return Err(Interrupt::Fatal(self.size_mismatch(actual)));
            }
            Err(Refusal::Status) => {
                let err = self.origin.status_error(&response);
                return Err(if err.is_transient() {
                    Interrupt::Retry { reason: err.to_string(), wait: retry_after(response.headers()) }
                } else {
                    Interrupt::Fatal(err.into())
                });
            }
        };
        let validator = validator_of(response.headers());
        let total = match answer {
            Answer::Complete => {
                if self.report_total {
                    self.counters.bytes_total.store(state.offset, Ordering::Relaxed);
                }
                return Ok(());
            }
            Answer::Mismatch(reason) => {
                tracing::warn!(asked, reason, "the answer does not fit the bytes on disk; starting over");
                self.restart(tx, state).await;
                state.total = self.size;
                return Err(retry(reason));
            }
            Answer::FromStart { total } => {
                if asked > 0 {
                    tracing::info!(asked, "the server sent the whole file instead of the rest; starting over");
                }
                self.restart(tx, state).await;
                state.total = self.size;
                self.keep_validator(validator.as_deref());
                state.validator = validator;
                total
            }
            Answer::Resumed { total } => {
                // The file changed since the bytes on disk were fetched (a server that ignores If-Range).
                if validator.is_some() && state.validator.is_some() && validator != state.validator {
                    self.restart(tx, state).await;
                    return Err(retry("the file changed on the server since the download began".into()));
                }
                total
            }
        };
        state.total = total.or(state.total);
        if let (true, Some(total)) = (self.report_total, state.total) {
            self.counters.bytes_total.store(total, Ordering::Relaxed);
        }
        // The disk must hold what is still to come; a file of unknown length may take what is free, less a margin.
        let free = crate::disk::free_space(&self.part).unwrap_or(u64::MAX);
        let no_room = |needed: u64| {
            Interrupt::Fatal(DownloadError::InsufficientSpace {
                repo: self.repo.clone(),
                path: self.part.parent().unwrap().display().to_string(),
                needed,
                free,
            })
        };
        let limit = match state.total {
            Some(total) if total.saturating_sub(state.offset) > free => {
                return Err(no_room(total - state.offset));
            }
            Some(total) => total,
            None => state.offset.saturating_add(free.saturating_sub(SPACE_MARGIN)),
        };
        // A body is known to be whole when its length was said, or its framing ends it (chunked, HTTP/2).
        let framed = response.version() >= reqwest::Version::HTTP_2
            || response.headers().get(reqwest::header::TRANSFER_ENCODING).is_some_and(|v| v == "chunked");
        loop {
            let Some(chunk) = next_chunk(&mut response, self.stall_timeout).await.map_err(retry)? else { break };
            let n = chunk.len() as u64;
            if state.offset + n > limit {
                return Err(match state.total {
                    Some(_) => Interrupt::Fatal(self.size_mismatch(state.offset + n)),
                    None => no_room(state.offset + n),
                });
            }
            if tx.send(Chunk::Data(chunk)).await.is_err() {
                // The writer stopped; its error is reported by the caller.
                return Ok(());
            }
            state.offset += n;
            self.counters.bytes_done.fetch_add(n, Ordering::Relaxed);
            self.limiter.take(n).await;
        }
        match state.total {
            Some(total) if state.offset < total => {
                Err(retry(format!("the body ended after {} of {total} bytes", state.offset)))
            }
            Some(_) => Ok(()),
            None if framed || self.verified_at_end => {
                if self.report_total {
                    self.counters.bytes_total.store(state.offset, Ordering::Relaxed);
                }
                Ok(())
            }
            None => Err(Interrupt::Fatal(DownloadError::Transfer {
                repo: self.repo.clone(),
                path: self.path.clone(),
                reason: format!(
                    "the server closed the connection after {} bytes without saying how long the file is, so a cut \
                     cannot be told from the end; give its sha256 to download it",
                    state.offset
                ),
                attempts: 1,
            })),
        }
    }

    /// Drops the bytes on disk and the progress they counted for.
    async fn restart(&self, tx: &mpsc::Sender<Chunk>, state: &mut Attempt) {
        if state.offset > 0 {
            let _ = tx.send(Chunk::Restart).await;
            self.counters.bytes_done.fetch_sub(state.offset, Ordering::Relaxed);
            state.offset = 0;
        }
    }
}

/// Left free on the disk by a download whose length is not known.
const SPACE_MARGIN: u64 = 64 << 20;

/// What an answer to a request for the bytes from `asked` on means.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The bytes from `asked` on follow.
    Resumed { total: Option<u64> },
    /// The whole file follows from byte 0 (what is on disk, if anything, is dropped).
    FromStart { total: Option<u64> },
    /// Nothing is left to fetch: the file is exactly the bytes on disk.
    Complete,
    /// The answer does not fit the bytes on disk (another start, another length): start over.
    Mismatch(String),
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The server says the file has this many bytes, which is not the size it must have.
    Size(u64),
    /// A status that is no answer to a range request.
    Status,
}

/// Reads an answer's status and headers against the request (`asked`) and the size the file must have.
fn check_answer(status: StatusCode, headers: &HeaderMap, asked: u64, size: Option<u64>) -> Result<Answer, Refusal> {
    let content_range = ContentRange::of(headers);
    let length = headers
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // The server's own idea of the file's length must be the listed one.
    let announced = match status {
        StatusCode::OK => length,
        StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE => content_range.and_then(|c| c.total),
        _ => None,
    };
    if let (Some(size), Some(announced)) = (size, announced) {
        if size != announced {
            return Err(Refusal::Size(announced));
        }
    }
    match status {
        StatusCode::OK => Ok(Answer::FromStart { total: length }),
        StatusCode::PARTIAL_CONTENT => {
            let Some(ContentRange { range: Some((start, end)), total }) = content_range else {
                return Ok(Answer::Mismatch("the server sent a part without a valid Content-Range".into()));
            };
            if start != asked {
                return Ok(Answer::Mismatch(format!("the server resumed at byte {start} instead of {asked}")));
            }
            if total.is_some_and(|t| end + 1 != t) {
                return Ok(Answer::Mismatch(format!("the server sent bytes {start}-{end}, not up to the end")));
            }
            if length.is_some_and(|n| n != end - start + 1) {
                return Ok(Answer::Mismatch("the server's Content-Length disagrees with its Content-Range".into()));
            }
            Ok(Answer::Resumed { total: total.or(size) })
        }
        StatusCode::RANGE_NOT_SATISFIABLE => match content_range.and_then(|c| c.total) {
            Some(total) if asked > 0 && total == asked => Ok(Answer::Complete),
            Some(total) => {
                Ok(Answer::Mismatch(format!("the server refused the range: the file has {total} bytes, not {asked}")))
            }
            None => Ok(Answer::Mismatch("the server refused the range without saying the file's length".into())),
        },
        _ => Err(Refusal::Status),
    }
}

/// A validator `If-Range` can use: a strong `ETag`, else `Last-Modified`.
fn validator_of(headers: &HeaderMap) -> Option<String> {
    let get = |name| headers.get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok());
    get(ETAG).filter(|e| !e.starts_with("W/")).or_else(|| get(LAST_MODIFIED)).map(str::to_owned)
}

/// Writes and hashes on a blocking thread. It first re-hashes the `resume_from` bytes already on disk, and syncs
/// the file when the stream ends.
pub(crate) fn spawn_writer(
    path: PathBuf,
    resume_from: u64,
    mut hasher: Hasher,
    mut rx: mpsc::Receiver<Chunk>,
    counters: Arc<Counters>,
) -> tokio::task::JoinHandle<io::Result<(u64, Digests)>> {
    tokio::task::spawn_blocking(move || {
        let mut file = crate::disk::open_partial(&path)?;
        let mut len = 0u64;
        if resume_from > 0 {
            counters.verifying.fetch_add(1, Ordering::Relaxed);
            len = crate::disk::read_chunks((&mut file).take(resume_from), |chunk| {
                hasher.update(chunk);
                Ok(())
            })?;
            counters.verifying.fetch_sub(1, Ordering::Relaxed);
        }
        file.set_len(len)?;
        file.seek(SeekFrom::Start(len))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        while let Some(chunk) = rx.blocking_recv() {
            match chunk {
                Chunk::Data(bytes) => {
                    out.write_all(&bytes)?;
                    hasher.update(&bytes);
                    len += bytes.len() as u64;
                }
                Chunk::Restart => {
                    out.flush()?;
                    out.get_mut().set_len(0)?;
                    out.get_mut().seek(SeekFrom::Start(0))?;
                    hasher.reset();
                    len = 0;
                }
            }
        }
        out.flush()?;
        // Durable before anyone renames it into view.
        out.get_ref().sync_all()?;
        Ok((len, hasher.finish()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::headers;

    #[test]
    fn answers_are_checked_against_what_was_asked() {
        let ok = StatusCode::OK;
        let part = StatusCode::PARTIAL_CONTENT;
        let refused = StatusCode::RANGE_NOT_SATISFIABLE;
        let cr = |v| headers(&[("content-range", v)]);
        assert_eq!(
            check_answer(ok, &headers(&[("content-length", "10")]), 0, Some(10)),
            Ok(Answer::FromStart { total: Some(10) })
        );
        assert_eq!(
            check_answer(ok, &headers(&[("content-length", "10")]), 4, None),
            Ok(Answer::FromStart { total: Some(10) })
        );
        assert_eq!(check_answer(ok, &headers(&[("content-length", "9")]), 0, Some(10)), Err(Refusal::Size(9)));
        assert_eq!(check_answer(part, &cr("bytes 4-9/10"), 4, Some(10)), Ok(Answer::Resumed { total: Some(10) }));
        assert_eq!(check_answer(part, &cr("bytes 4-9/10"), 4, None), Ok(Answer::Resumed { total: Some(10) }));
        // A part from another start is never appended.
        assert!(matches!(check_answer(part, &cr("bytes 0-9/10"), 4, None), Ok(Answer::Mismatch(_))));
        assert!(matches!(check_answer(part, &cr("bytes 4-6/10"), 4, None), Ok(Answer::Mismatch(_))));
        assert!(matches!(check_answer(part, &headers(&[]), 4, None), Ok(Answer::Mismatch(_))));
        assert_eq!(check_answer(part, &cr("bytes 4-11/12"), 4, Some(10)), Err(Refusal::Size(12)));
        // 416 is "complete" only when the server says the file is exactly what is on disk.
        assert_eq!(check_answer(refused, &cr("bytes */10"), 10, None), Ok(Answer::Complete));
        assert!(matches!(check_answer(refused, &cr("bytes */10"), 4, None), Ok(Answer::Mismatch(_))));
        assert!(matches!(check_answer(refused, &headers(&[]), 4, None), Ok(Answer::Mismatch(_))));
        assert_eq!(check_answer(StatusCode::NOT_FOUND, &headers(&[]), 0, None), Err(Refusal::Status));
    }

    #[test]
    fn only_strong_validators_are_used_for_if_range() {
        assert_eq!(validator_of(&headers(&[("etag", "\"abc\"")])).as_deref(), Some("\"abc\""));
        assert_eq!(validator_of(&headers(&[("etag", "W/\"abc\"")])), None);
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(validator_of(&headers(&[("etag", "W/\"abc\""), ("last-modified", date)])).as_deref(), Some(date));
    }
}
