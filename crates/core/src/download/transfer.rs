//! One file from the hub into the cache, under the blob's lock: the bytes gather in `blobs/{hash}.incomplete`
//! through the ranged fetch every download shares ([`super::ranged`]); at the end the size and hash are checked,
//! and only then is the blob renamed into place (synced, with its folder) and linked from
//! `snapshots/{commit}/{path}`. A mismatch deletes the bytes.

use super::hasher::Hasher;
use super::origin::Origin;
use super::plan::Plan;
use super::progress::Counters;
use super::ranged::RangedFetch;
use super::xet::{self, XetFetch, XetFile, XetStop};
use super::DownloadError;
use crate::cache::{lock, write};
use crate::hub::{HubClient, RemoteFile};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) struct FileTransfer {
    pub hub: HubClient,
    pub plan: Arc<Plan>,
    pub cache_dir: PathBuf,
    pub file: RemoteFile,
    pub stall_timeout: Duration,
    /// Connections this file may use.
    pub connections: super::parts::Connections,
    /// Fetch it from the Xet CAS when the hub says it is there.
    pub use_xet: bool,
    /// The Xet engine of the download's files.
    pub xet: Arc<xet::Engine>,
    pub verify_hashes: bool,
    pub limiter: Arc<super::progress::RateLimiter>,
    pub counters: Arc<Counters>,
    pub cancel: CancellationToken,
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

    #[tracing::instrument(name = "file", skip_all, fields(path = %self.file.path, size = self.file.size))]
    async fn fetch(&self) -> Result<(), DownloadError> {
        let incomplete = self.plan.incomplete_path(&self.file);
        let (repo, path) = (self.plan.repo.to_string(), self.file.path.clone());
        let url = self.hub.resolve_url(&self.plan.repo, &self.plan.commit, &self.file.path);
        let hasher = || if self.file.lfs { Hasher::sha256(false) } else { Hasher::git_sha1(self.file.size) };
        let mut over_xet = None;
        if let Some(file) = self.xet_file(&url).await {
            tracing::debug!(transport = "xet", hash = %file.hash, "fetching");
            let fetch = XetFetch {
                hub: self.hub.clone(),
                file,
                part: incomplete.clone(),
                size: self.file.size,
                what: self.what(),
                engine: self.xet.clone(),
                leave_when_slow: self.connections.max > 1 && !self.limiter.is_set(),
                stall_timeout: self.stall_timeout,
                limiter: self.limiter.clone(),
                counters: self.counters.clone(),
                cancel: self.cancel.clone(),
            };
            match fetch.run(hasher()).await {
                Ok((digest, _)) => {
                    self.counters.note_transport("Xet");
                    over_xet = Some((self.file.size, digest));
                }
                Err(XetStop::Failed(e)) => return Err(e),
                Err(XetStop::Slow(reason)) => {
                    tracing::info!(reason, "Xet is slow for this file; the rest over HTTP in pieces");
                    self.counters.note_transport(format!("HTTP in pieces, as Xet was slow: {reason}"));
                }
                Err(XetStop::Fallback(reason) | XetStop::Disagrees(reason)) => {
                    tracing::warn!(reason, "Xet did not work for this file; over HTTP instead");
                    self.counters.note_transport(format!("HTTP, as Xet failed: {reason}"));
                }
            }
        }
        let (len, digest) = match over_xet {
            Some(done) => done,
            None => {
                tracing::debug!(transport = "http", connections = self.connections.max, "fetching");
                let fetched = RangedFetch {
                    origin: Origin::Hub {
                        hub: Box::new(self.hub.clone()),
                        url,
                        repo: self.plan.repo.clone(),
                        commit: self.plan.commit.clone(),
                        path: path.clone(),
                    },
                    part: incomplete.clone(),
                    size: Some(self.file.size),
                    // A blob is named by its hash: its content never changes under that name.
                    validator_file: None,
                    verified_at_end: true,
                    hasher: hasher(),
                    repo: repo.clone(),
                    path: path.clone(),
                    stall_timeout: self.stall_timeout,
                    retry: self.hub.retry_policy(),
                    limiter: self.limiter.clone(),
                    counters: self.counters.clone(),
                    cancel: self.cancel.clone(),
                    report_total: false,
                    connections: self.connections,
                }
                .run()
                .await?;
                self.counters.note_transport("HTTP");
                (fetched.len, fetched.digest)
            }
        };
        if len != self.file.size {
            let _ = fs::remove_file(super::parts::record_path(&incomplete));
            tracing::warn!(code = "checksum-mismatch", actual = len, "refused: the bytes have another length");
            let _ = fs::remove_file(&incomplete);
            return Err(DownloadError::SizeMismatch { repo, path, expected: self.file.size, actual: len });
        }
        if self.verify_hashes && digest != self.file.blob {
            tracing::warn!(code = "checksum-mismatch", expected = %self.file.blob, actual = %digest, "refused: wrong hash");
            let _ = fs::remove_file(&incomplete);
            return Err(DownloadError::ChecksumMismatch {
                repo,
                path,
                algorithm: if self.file.lfs { "sha256" } else { "git-sha1" },
                expected: self.file.blob.clone(),
                actual: digest,
            });
        }
        crate::disk::place(&incomplete, &self.plan.blob_path(&self.file))
            .map_err(|e| DownloadError::io(format!("placing {}", self.what()), e))?;
        tracing::debug!("verified and placed");
        Ok(())
    }

    /// Where the file is in Xet, when Xet is on (and no proxy set in the settings stands in its way) and the hub's
    /// resolve answer says the file is stored there, with the size the listing gave.
    async fn xet_file(&self, url: &reqwest::Url) -> Option<XetFile> {
        if !self.use_xet || !self.file.lfs {
            return None;
        }
        if self.hub.config().proxies.from_the_setting() {
            // The engine reads its proxy from the environment alone: through the proxy set in Settings, the file
            // comes over HTTP (the hub serves it too), never around the proxy.
            tracing::debug!("not over Xet: the proxy is set in the settings, which the Xet engine cannot be given");
            return None;
        }
        let headers = self.hub.head(url.clone()).await.ok()?;
        let file = xet::locate(&headers, url)?;
        let linked = headers.get("x-linked-size").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if linked.is_some_and(|size| size != self.file.size) {
            tracing::warn!(linked, listed = self.file.size, "the hub gives two sizes for the file; not over Xet");
            return None;
        }
        Some(file)
    }
}

/// The Xet engine's own cache and staging folder: `xet/` beside the hub cache, where `huggingface_hub` keeps its
/// own (`~/.cache/huggingface/xet` for the default cache).
pub(crate) fn xet_cache_dir(cache_dir: &std::path::Path) -> PathBuf {
    cache_dir.parent().unwrap_or(cache_dir).join("xet")
}

/// Removes the `.incomplete` file of `file` if no one else is writing it.
pub(crate) fn discard_partial(plan: &Plan, cache_dir: &std::path::Path, file: &RemoteFile) -> u64 {
    let folder = plan.repo_dir.file_name().unwrap().to_string_lossy().to_string();
    let Ok(Some(_lock)) = lock::try_lock(cache_dir, &folder, &file.blob) else { return 0 };
    let path = plan.incomplete_path(file);
    let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let _ = fs::remove_file(super::parts::record_path(&path));
    if fs::remove_file(&path).is_ok() {
        len
    } else {
        0
    }
}
