//! One file from the hub into the cache: bytes stream into `blobs/{hash}.incomplete` while a blocking thread
//! writes and hashes them in one pass; a cut, a stall or a transient status resumes with `Range` from what is on
//! disk; at the end the size and hash are checked, and only then is the blob renamed into place and linked from
//! `snapshots/{commit}/{path}`. A mismatch deletes the bytes.

use super::plan::Plan;
use super::progress::Counters;
use super::DownloadError;
use crate::cache::{lock, write};
use crate::hub::client::retry_after;
use crate::hub::{HubClient, HubError, RemoteFile};
use bytes::Bytes;
use sha1::Digest as _;
use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) struct FileTransfer {
    pub hub: HubClient,
    pub plan: Arc<Plan>,
    pub cache_dir: PathBuf,
    pub file: RemoteFile,
    pub stall_timeout: Duration,
    pub verify_hashes: bool,
    pub limiter: Arc<super::progress::RateLimiter>,
    pub counters: Arc<Counters>,
    pub cancel: CancellationToken,
}

/// The two hashes the hub names blobs by.
enum Hasher {
    Sha256(sha2::Sha256),
    /// git's blob id: sha1 over `blob {size}\0` and the content.
    GitSha1(sha1::Sha1, u64),
}

impl Hasher {
    fn new(file: &RemoteFile) -> Hasher {
        if file.lfs {
            Hasher::Sha256(sha2::Sha256::new())
        } else {
            let mut h = sha1::Sha1::new();
            h.update(format!("blob {}\0", file.size).as_bytes());
            Hasher::GitSha1(h, file.size)
        }
    }

    fn algorithm(lfs: bool) -> &'static str {
        if lfs {
            "sha256"
        } else {
            "git-sha1"
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::GitSha1(h, _) => h.update(data),
        }
    }

    fn reset(&mut self) {
        *self = match self {
            Hasher::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
            Hasher::GitSha1(_, size) => {
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {size}\0").as_bytes());
                Hasher::GitSha1(h, *size)
            }
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => crate::format::hex(&h.finalize()),
            Hasher::GitSha1(h, _) => crate::format::hex(&h.finalize()),
        }
    }
}

enum Chunk {
    Data(Bytes),
    /// The server ignored the range and starts over: drop what is on disk.
    Restart,
}

/// Writes and hashes on a blocking thread. It first re-hashes the `resume_from` bytes already on disk.
fn spawn_writer(
    path: PathBuf,
    resume_from: u64,
    mut hasher: Hasher,
    mut rx: mpsc::Receiver<Chunk>,
    counters: Arc<Counters>,
) -> tokio::task::JoinHandle<io::Result<(u64, String)>> {
    tokio::task::spawn_blocking(move || {
        let mut file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)?;
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
        Ok((len, hasher.finish()))
    })
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

impl FileTransfer {
    fn what(&self) -> String {
        format!("{} of {}", self.file.path, self.plan.repo)
    }

    /// Fetches the file unless its blob is already there, then links it into the snapshot.
    pub async fn run(self) -> Result<(), DownloadError> {
        let blob_path = self.plan.blob_path(&self.file);
        if !self.plan.is_present(&self.file) {
            let folder = self.plan.repo_dir.file_name().unwrap().to_string_lossy().to_string();
            let cancel = self.cancel.clone();
            let lock = lock::lock(&self.cache_dir, &folder, &self.file.blob, || cancel.is_cancelled())
                .await
                .map_err(|e| DownloadError::io(format!("locking {}", self.what()), e))?
                .ok_or(DownloadError::Cancelled)?;
            // Another process may have finished it while we waited.
            if !self.plan.is_present(&self.file) {
                self.fetch().await?;
            }
            drop(lock);
        }
        write::link_snapshot(&self.plan.repo_dir, &self.plan.commit, &self.file.path, &self.file.blob)
            .map_err(|e| DownloadError::io(format!("linking {}", self.what()), e))?;
        debug_assert!(blob_path.exists());
        self.counters.files_done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn fetch(&self) -> Result<(), DownloadError> {
        let incomplete = self.plan.incomplete_path(&self.file);
        fs::create_dir_all(incomplete.parent().unwrap())
            .map_err(|e| DownloadError::io(format!("creating {}", incomplete.display()), e))?;
        let mut offset = fs::metadata(&incomplete).map(|m| m.len()).unwrap_or(0);
        if offset > self.file.size {
            offset = 0;
        }
        self.counters.bytes_done.fetch_add(offset, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(64);
        let writer = spawn_writer(incomplete.clone(), offset, Hasher::new(&self.file), rx, self.counters.clone());

        let result = self.stream(tx, &mut offset).await;
        let written =
            writer.await.map_err(|e| DownloadError::io(format!("writing {}", self.what()), io::Error::other(e)))?;
        // The writer's own failure (disk full, permission) is the real cause when both failed.
        let (len, digest) = match (result, written) {
            (_, Err(e)) => return Err(DownloadError::io(format!("writing {}", self.what()), e)),
            (Err(e), Ok(_)) => return Err(e),
            (Ok(()), Ok(done)) => done,
        };
        let repo = self.plan.repo.to_string();
        if len != self.file.size {
            let _ = fs::remove_file(&incomplete);
            return Err(DownloadError::SizeMismatch {
                repo,
                path: self.file.path.clone(),
                expected: self.file.size,
                actual: len,
            });
        }
        if self.verify_hashes && digest != self.file.blob {
            let _ = fs::remove_file(&incomplete);
            return Err(DownloadError::ChecksumMismatch {
                repo,
                path: self.file.path.clone(),
                algorithm: Hasher::algorithm(self.file.lfs),
                expected: self.file.blob.clone(),
                actual: digest,
            });
        }
        fs::rename(&incomplete, self.plan.blob_path(&self.file))
            .map_err(|e| DownloadError::io(format!("placing {}", self.what()), e))
    }

    /// Streams the body into the writer, resuming and retrying until every byte arrived.
    async fn stream(&self, tx: mpsc::Sender<Chunk>, offset: &mut u64) -> Result<(), DownloadError> {
        let policy = self.hub.retry_policy();
        let url = self.hub.resolve_url(&self.plan.repo, &self.plan.commit, &self.file.path);
        let mut failures = 0u32;
        // The furthest any attempt got: only bytes past it are progress (a server that restarts and cuts at the
        // same place again makes none).
        let mut furthest = *offset;
        while *offset < self.file.size || self.file.size == 0 {
            let outcome = tokio::select! {
                _ = self.cancel.cancelled() => return Err(DownloadError::Cancelled),
                outcome = self.attempt(&url, &tx, offset) => outcome,
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(Interrupt::Fatal(e)) => return Err(e),
                Err(Interrupt::Retry { reason, wait }) => {
                    // Progress made means the connection is flaky, not dead: start counting again.
                    failures = if *offset > furthest { 1 } else { failures + 1 };
                    furthest = furthest.max(*offset);
                    if failures >= policy.attempts {
                        return Err(DownloadError::Transfer {
                            repo: self.plan.repo.to_string(),
                            path: self.file.path.clone(),
                            reason,
                            attempts: failures,
                        });
                    }
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(DownloadError::Cancelled),
                        _ = tokio::time::sleep(policy.delay(failures, wait)) => {}
                    }
                }
            }
        }
        Ok(())
    }

    async fn attempt(&self, url: &reqwest::Url, tx: &mpsc::Sender<Chunk>, offset: &mut u64) -> Result<(), Interrupt> {
        let retry = |reason: String| Interrupt::Retry { reason, wait: None };
        let mut response = match self.hub.get(url.clone(), Some(*offset)).await {
            Ok(r) => r,
            Err(e) if e.is_transient() => return Err(retry(e.to_string())),
            Err(e) => return Err(Interrupt::Fatal(e.into())),
        };
        let status = response.status().as_u16();
        // The server's own idea of the file's length must be the listed one.
        let announced = match status {
            200 => response.content_length(),
            206 | 416 => content_range_total(response.headers()),
            _ => None,
        };
        if let Some(actual) = announced.filter(|n| *n != self.file.size) {
            return Err(Interrupt::Fatal(DownloadError::SizeMismatch {
                repo: self.plan.repo.to_string(),
                path: self.file.path.clone(),
                expected: self.file.size,
                actual,
            }));
        }
        match status {
            206 => {
                let start = content_range_start(response.headers());
                if start != Some(*offset) {
                    self.restart(tx, offset).await;
                    return Err(retry(format!("the server resumed at {start:?} instead of {}", *offset)));
                }
            }
            200 if *offset > 0 => self.restart(tx, offset).await,
            200 => {}
            416 if *offset == self.file.size => return Ok(()),
            416 => {
                self.restart(tx, offset).await;
                return Err(retry("the server refused the range".into()));
            }
            _ => {
                let err =
                    self.hub.status_error(&response, &self.plan.repo, Some(&self.plan.commit), Some(&self.file.path));
                return Err(if err.is_transient() {
                    Interrupt::Retry { reason: err.to_string(), wait: retry_after(response.headers()) }
                } else {
                    Interrupt::Fatal(err.into())
                });
            }
        }
        loop {
            let chunk = match tokio::time::timeout(self.stall_timeout, response.chunk()).await {
                Err(_) => return Err(retry(format!("no bytes for {} s", self.stall_timeout.as_secs_f32()))),
                Ok(Err(e)) => return Err(retry(HubError::from_reqwest(url, &e).to_string())),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            let n = chunk.len() as u64;
            if *offset + n > self.file.size {
                return Err(Interrupt::Fatal(DownloadError::SizeMismatch {
                    repo: self.plan.repo.to_string(),
                    path: self.file.path.clone(),
                    expected: self.file.size,
                    actual: *offset + n,
                }));
            }
            if tx.send(Chunk::Data(chunk)).await.is_err() {
                // The writer stopped; its error is reported by the caller.
                return Ok(());
            }
            *offset += n;
            self.counters.bytes_done.fetch_add(n, Ordering::Relaxed);
            self.limiter.take(n).await;
        }
        if *offset < self.file.size {
            return Err(retry(format!("the body ended after {} of {} bytes", *offset, self.file.size)));
        }
        Ok(())
    }

    /// Drops the bytes on disk and the progress they counted for.
    async fn restart(&self, tx: &mpsc::Sender<Chunk>, offset: &mut u64) {
        if *offset > 0 {
            let _ = tx.send(Chunk::Restart).await;
            self.counters.bytes_done.fetch_sub(*offset, Ordering::Relaxed);
            *offset = 0;
        }
    }
}

/// The total of `Content-Range: bytes START-END/TOTAL` or `bytes */TOTAL`.
fn content_range_total(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    value.rsplit('/').next()?.trim().parse().ok()
}

/// The first byte of `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    value.trim().strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

/// Removes the `.incomplete` file of `file` if no one else is writing it.
pub(crate) fn discard_partial(plan: &Plan, cache_dir: &std::path::Path, file: &RemoteFile) -> u64 {
    let folder = plan.repo_dir.file_name().unwrap().to_string_lossy().to_string();
    let Ok(Some(_lock)) = lock::try_lock(cache_dir, &folder, &file.blob) else { return 0 };
    let path = plan.incomplete_path(file);
    let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if fs::remove_file(&path).is_ok() {
        len
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start_is_parsed() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("content-range", "bytes 100-199/200".parse().unwrap());
        assert_eq!(content_range_start(&h), Some(100));
        assert_eq!(content_range_total(&h), Some(200));
        h.insert("content-range", "bytes */200".parse().unwrap());
        assert_eq!(content_range_start(&h), None);
        assert_eq!(content_range_total(&h), Some(200));
    }

    #[test]
    fn git_sha1_of_a_blob_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let file = RemoteFile { path: "a".into(), size: 6, blob: String::new(), lfs: false };
        let mut h = Hasher::new(&file);
        h.update(b"hello\n");
        assert_eq!(h.finish(), "ce013625030ba8dba906f756967f9e9ca394464a");
    }
}
