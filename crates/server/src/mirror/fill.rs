//! Pull-through: what the mirror has not got is asked of the upstream hub (the one the server downloads from,
//! or `--upstream`). A repo or revision is listed as upstream lists it; a file is fetched once through the normal
//! download path (verified, placed atomically in the cache) and then served. Clients asking for the same file at
//! once join one download; a client that goes away does not stop it for the others. Offline, or with
//! `--no-upstream`, the answer is the Hub's own "not found".

use super::{HubError, Listing};
use crate::Served;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use mm_core::cache::CachedFile;
use mm_core::download::{DownloadRequest, DownloadState};
use mm_core::hub::HubError as Upstream;

/// What the upstream said was not there, for a short while: a client asking again and again for a file or
/// revision that does not exist (a probe, a retry loop) does not make this mirror ask the hub again each time, with
/// its owner's token.
#[derive(Default)]
pub(crate) struct Misses(std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, HubError)>>);

impl Misses {
    const FOR: std::time::Duration = std::time::Duration::from_secs(30);
    const MAX: usize = 4096;

    pub(crate) fn get(&self, key: &str) -> Option<HubError> {
        let misses = self.0.lock().unwrap();
        misses.get(key).filter(|(at, _)| at.elapsed() < Self::FOR).map(|(_, e)| e.clone())
    }

    pub(crate) fn put(&self, key: String, error: &HubError) {
        if error.status != StatusCode::NOT_FOUND {
            return;
        }
        let mut misses = self.0.lock().unwrap();
        if misses.len() >= Self::MAX {
            misses.retain(|_, (at, _)| at.elapsed() < Self::FOR);
            if misses.len() >= Self::MAX {
                misses.clear();
            }
        }
        misses.insert(key, (std::time::Instant::now(), error.clone()));
    }
}

/// A failure to reach the upstream: a failing gateway (502), or, when this machine is told not to use the network
/// (`HF_HUB_OFFLINE`), a service that is not there (503) rather than a broken one.
fn upstream_failed(s: &Served, message: String) -> HubError {
    if s.manager.hub_offline() {
        let message = format!("this mirror is offline (HF_HUB_OFFLINE): it serves only what it has ({message})");
        return HubError::new(StatusCode::SERVICE_UNAVAILABLE, "Offline", message);
    }
    HubError::new(StatusCode::BAD_GATEWAY, "UpstreamError", message)
}

/// The upstream's error, as the Hub would have answered it.
fn hub_error(s: &Served, repo: &str, revision: &str, err: Upstream) -> HubError {
    match err {
        Upstream::RepoNotFound { .. } | Upstream::Offline { .. } => HubError::repo(repo),
        Upstream::RevisionNotFound { .. } => {
            HubError::new(StatusCode::NOT_FOUND, "RevisionNotFound", format!("Invalid rev id: {revision}"))
        }
        Upstream::FileNotFound { path, .. } => {
            HubError::new(StatusCode::NOT_FOUND, "EntryNotFound", format!("{path} does not exist on {revision}"))
        }
        Upstream::TokenRequired { .. } | Upstream::AccessDenied { .. } | Upstream::TokenInvalid { .. } => {
            HubError::new(StatusCode::FORBIDDEN, "GatedRepo", format!("the upstream hub refused {repo}: {err}"))
        }
        other => upstream_failed(s, other.to_string()),
    }
}

/// Refuses to reach the upstream for a request a browser marks as a web page's (an `<img>` of a resolve URL,
/// a link from another site) unless it carries a token: a page must not make this machine download anything.
fn upstream_allowed(s: &Served, headers: &HeaderMap, what: &str) -> Result<(), HubError> {
    if mm_core::listen::from_another_site(headers) && !super::has_token(s, headers) {
        let message = format!(
            "{what} is not on this mirror, and a request a web page made does not fetch it from the upstream hub"
        );
        return Err(HubError::new(StatusCode::FORBIDDEN, "CrossSiteRefused", message));
    }
    Ok(())
}

/// `repo` at `revision` as the upstream lists it.
pub(crate) async fn listing(s: &Served, headers: &HeaderMap, repo: &str, revision: &str) -> Result<Listing, HubError> {
    if !s.pull_through {
        return Err(HubError::repo(repo));
    }
    upstream_allowed(s, headers, repo)?;
    let key = format!("{repo}@{revision}");
    if let Some(miss) = s.misses.get(&key) {
        return Err(miss);
    }
    let info = s.manager.hub_listing(repo, revision).await.map_err(|e| {
        let error = hub_error(s, repo, revision, e);
        s.misses.put(key, &error);
        error
    })?;
    // What the upstream lists becomes paths served from this machine: a path out of the snapshot or a blob name
    // that is not a hash is refused, whole.
    let unsafe_file = |f: &mm_core::hub::RemoteFile| {
        mm_core::cache::write::check_repo_path(&f.path).is_err()
            || !mm_core::cache::layout::is_blob_name(&f.blob, f.lfs)
    };
    if let Some(bad) = info.files.iter().find(|f| unsafe_file(f)) {
        let message = format!("the upstream hub listed {:?} ({}) for {repo}: refused", bad.path, bad.blob);
        return Err(HubError::new(StatusCode::BAD_GATEWAY, "UpstreamError", message));
    }
    let folder = info.repo.folder_name(mm_core::cache::RepoKind::Model);
    Ok(Listing {
        restricted: info.gated || info.private,
        private: info.private,
        repo: info.repo.to_string(),
        snapshot: s.manager.cache_dir().join(folder).join("snapshots").join(&info.commit),
        commit: info.commit,
        files: info.files.into_iter().map(|f| CachedFile { path: f.path, size: f.size, blob: Some(f.blob) }).collect(),
        gated: info.gated,
        tags: info.tags,
        pipeline_tag: info.pipeline_tag,
        library_name: info.library_name,
        card: info.card_data,
        last_modified: None,
    })
}

/// The bytes `start..end` of a file of `listing` that is not here yet, as they arrive: its download is started
/// (or joined) into this machine's cache, and the body follows the partial file while the download writes it in
/// order. The answer waits for the first bytes (or the download's failure, answered as the Hub would), so a refused
/// file is never a 200. The last bytes are held back until the download has verified the file and placed it, so a
/// client never receives a whole file that failed its hash; a download in pieces (not written in order) is
/// followed once placed.
pub(crate) async fn follow(
    s: &Served,
    headers: &HeaderMap,
    listing: &Listing,
    file: &CachedFile,
    start: u64,
    end: u64,
) -> Result<Body, HubError> {
    let missing = |why: String| HubError::new(StatusCode::NOT_FOUND, "EntryNotFound", why);
    if !s.pull_through {
        return Err(missing(format!("{} of {} is not on this mirror", file.path, listing.repo)));
    }
    upstream_allowed(s, headers, &format!("{} of {}", file.path, listing.repo))?;
    let request = DownloadRequest {
        repo: listing.repo.clone(),
        revision: Some(listing.commit.clone()),
        files: vec![file.path.clone()],
        ..DownloadRequest::default()
    };
    let refused = |e: mm_core::ErrorPayload| match e.code {
        mm_core::ErrorCode::NotFound => missing(e.message),
        mm_core::ErrorCode::Auth => HubError::new(StatusCode::FORBIDDEN, "GatedRepo", e.message),
        _ => upstream_failed(s, e.message),
    };
    let id = s.manager.start(request).map_err(refused)?;
    tracing::info!(repo = %listing.repo, path = %file.path, download = id, "pulling through from the upstream hub");
    // Downloads land in this machine's cache, whatever folder the listing came from.
    let repo = mm_core::cache::RepoId::parse(&listing.repo).map_err(|_| HubError::repo(&listing.repo))?;
    let blobs = s.manager.cache_dir().join(repo.folder_name(mm_core::cache::RepoKind::Model)).join("blobs");
    let blob = file.blob.clone().unwrap_or_default();
    let at = Landing {
        placed: blobs.join(&blob),
        partial: blobs.join(format!("{blob}.incomplete")),
        pieces: blobs.join(format!("{blob}.incomplete{}", mm_core::cache::layout::PIECES_SUFFIX)),
    };
    // The first bytes, or why there will be none.
    loop {
        let state = s.manager.download(id).map_err(refused)?;
        if at.placed.is_file() || std::fs::metadata(&at.partial).is_ok_and(|m| m.len() > start) {
            break;
        }
        match state.state {
            DownloadState::Failed | DownloadState::Cancelled => {
                s.failed_fills.add(&blob);
                return Err(refused(state.error.unwrap_or(mm_core::ErrorPayload {
                    code: mm_core::ErrorCode::Network,
                    message: format!("the upstream fetch of {} stopped", file.path),
                })));
            }
            DownloadState::Completed => break,
            _ => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let (manager, failed) = (s.manager.clone(), s.failed_fills.clone());
    tokio::spawn(async move {
        if let Err(err) = copy_as_it_lands(&manager, id, &at, start, end, &tx).await {
            // The client has bytes of an answer that will not be completed: a resume of it is refused, and the
            // answer ends in an error (the connection is cut short of its length), never a clean close.
            failed.add(&blob);
            tracing::warn!(download = id, error = %err, "a pulled-through answer failed mid-way");
            let _ = tx.send(Err(err)).await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(Body::from_stream(body))
}

/// The bytes `start..end` of a file of `listing` that is not here, forwarded from the upstream as they come and
/// not stored: a part of a file is what a header reader asks for, and it must not make the mirror fetch the whole.
pub(crate) async fn forward(
    s: &Served,
    headers: &HeaderMap,
    listing: &Listing,
    file: &CachedFile,
    start: u64,
    end: u64,
) -> Result<Body, HubError> {
    if !s.pull_through {
        let why = format!("{} of {} is not on this mirror", file.path, listing.repo);
        return Err(HubError::new(StatusCode::NOT_FOUND, "EntryNotFound", why));
    }
    upstream_allowed(s, headers, &format!("{} of {}", file.path, listing.repo))?;
    let part = s
        .manager
        .hub_range(&listing.repo, &listing.commit, &file.path, start, end)
        .await
        .map_err(|e| hub_error(s, &listing.repo, &listing.commit, e))?;
    tracing::info!(repo = %listing.repo, path = %file.path, start, end, "forwarding a range from the upstream hub");
    let body =
        futures_util::stream::unfold(part, |mut part| async move { part.chunk().await.map(|item| (item, part)) });
    Ok(Body::from_stream(body))
}

/// Where a blob being fetched is on disk: placed, partial, and the record of a download in pieces.
struct Landing {
    placed: std::path::PathBuf,
    partial: std::path::PathBuf,
    pieces: std::path::PathBuf,
}

/// Sends `start..end` of the blob to `tx`: from its partial file while download `id` writes it in order, the rest
/// from the placed blob once verified. Ends, without stopping the download, when the client has gone.
async fn copy_as_it_lands(
    manager: &mm_core::Manager,
    id: u64,
    at: &Landing,
    start: u64,
    end: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut pos = start;
    let mut following: Option<tokio::fs::File> = None;
    let mut buffer = vec![0u8; 256 * 1024];
    while pos < end && !tx.is_closed() {
        if at.placed.is_file() {
            // Verified and placed: the rest from the blob itself.
            let mut file = tokio::fs::File::open(&at.placed).await?;
            file.seek(std::io::SeekFrom::Start(pos)).await?;
            let mut rest = file.take(end - pos);
            loop {
                let n = rest.read(&mut buffer).await?;
                if n == 0 || tx.send(Ok(Bytes::copy_from_slice(&buffer[..n]))).await.is_err() {
                    return Ok(());
                }
            }
        }
        let download = manager.download(id).map_err(|e| std::io::Error::other(e.message))?;
        match download.state {
            DownloadState::Failed | DownloadState::Cancelled => {
                let why = download.error.map(|e| e.message).unwrap_or_default();
                return Err(std::io::Error::other(format!("the upstream fetch failed: {why}")));
            }
            // Ended, and still not placed: it will not be.
            DownloadState::Completed if !at.placed.is_file() => {
                return Err(std::io::Error::other("the fetched file was not placed in the cache"));
            }
            _ => {}
        }
        if following.is_none() && !at.pieces.exists() {
            following = tokio::fs::File::open(&at.partial).await.ok();
        }
        // In order on disk: what is there up to the last byte, which waits for the verified file.
        let mut sent = false;
        if let Some(file) = following.as_mut() {
            let available = file.metadata().await?.len().min(end.saturating_sub(1));
            if available > pos && !at.pieces.exists() {
                file.seek(std::io::SeekFrom::Start(pos)).await?;
                let want = (available - pos).min(buffer.len() as u64) as usize;
                let n = file.read(&mut buffer[..want]).await?;
                // A record that appeared meanwhile means pieces, maybe not yet written: these bytes are dropped.
                if n > 0 && !at.pieces.exists() {
                    pos += n as u64;
                    sent = true;
                    if tx.send(Ok(Bytes::copy_from_slice(&buffer[..n]))).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        if !sent {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
    Ok(())
}
