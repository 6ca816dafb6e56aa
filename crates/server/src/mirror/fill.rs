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

/// What the upstream said, for a short while: what is not there (30 s), so a client asking again and again for a
/// file or revision that does not exist (a probe, a retry loop) does not make this mirror ask the hub each time
/// with its owner's token; and the listing of a commit (5 min; a commit never changes), so asking for one missing
/// path after another asks once.
#[derive(Default)]
pub(crate) struct Recent {
    misses: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, HubError)>>,
    commits: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Listing)>>,
}

impl Recent {
    const MISSES_FOR: std::time::Duration = std::time::Duration::from_secs(30);
    const COMMITS_FOR: std::time::Duration = std::time::Duration::from_secs(300);
    const MAX_MISSES: usize = 4096;
    const MAX_COMMITS: usize = 64;

    pub(crate) fn miss(&self, key: &str) -> Option<HubError> {
        let misses = self.misses.lock().unwrap();
        misses.get(key).filter(|(at, _)| at.elapsed() < Self::MISSES_FOR).map(|(_, e)| e.clone())
    }

    /// Remembers `error` for `key` when it says "not found" (a failure to ask is asked again).
    pub(crate) fn put_miss(&self, key: String, error: &HubError) {
        if error.status == StatusCode::NOT_FOUND {
            bounded_insert(&mut self.misses.lock().unwrap(), key, error.clone(), Self::MAX_MISSES, Self::MISSES_FOR);
        }
    }

    fn commit(&self, key: &str) -> Option<Listing> {
        let commits = self.commits.lock().unwrap();
        commits.get(key).filter(|(at, _)| at.elapsed() < Self::COMMITS_FOR).map(|(_, l)| l.clone())
    }

    fn put_commit(&self, key: String, listing: &Listing) {
        bounded_insert(&mut self.commits.lock().unwrap(), key, listing.clone(), Self::MAX_COMMITS, Self::COMMITS_FOR);
    }
}

/// Inserts into a map of at most `max` entries, dropping the expired ones first, then all, when it is full.
fn bounded_insert<T>(
    map: &mut std::collections::HashMap<String, (std::time::Instant, T)>,
    key: String,
    value: T,
    max: usize,
    ttl: std::time::Duration,
) {
    if map.len() >= max {
        map.retain(|_, (at, _)| at.elapsed() < ttl);
        if map.len() >= max {
            map.clear();
        }
    }
    map.insert(key, (std::time::Instant::now(), value));
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
pub(crate) fn hub_error(s: &Served, repo: &str, revision: &str, err: Upstream) -> HubError {
    match err {
        Upstream::RepoNotFound { .. } | Upstream::Offline { .. } => HubError::repo(repo),
        Upstream::RevisionNotFound { .. } => {
            HubError::new(StatusCode::NOT_FOUND, "RevisionNotFound", format!("Invalid rev id: {revision}"))
        }
        Upstream::FileNotFound { path, .. } => {
            HubError::new(StatusCode::NOT_FOUND, "EntryNotFound", format!("{path} does not exist on {revision}"))
        }
        // Asked without a token (this caller holds none of this server's): the caller needs one, as the Hub says.
        Upstream::TokenRequired { .. } => {
            HubError::new(StatusCode::UNAUTHORIZED, "GatedRepo", format!("the upstream hub refused {repo}: {err}"))
        }
        Upstream::AccessDenied { .. } | Upstream::TokenInvalid { .. } => {
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

/// Whether a file of `listing` that is not here may be fetched from the upstream for this request: the mirror
/// pulls through, and the request is no web page's.
fn may_fetch(s: &Served, headers: &HeaderMap, listing: &Listing, file: &CachedFile) -> Result<(), HubError> {
    let what = format!("{} of {}", file.path, listing.repo);
    if !s.pull_through {
        return Err(HubError::new(StatusCode::NOT_FOUND, "EntryNotFound", format!("{what} is not on this mirror")));
    }
    upstream_allowed(s, headers, &what)
}

/// Whether the upstream may be asked about `repo` for this request: the mirror pulls through (else the repo is not
/// found), and the request is no web page's.
pub(crate) fn may_ask_upstream(s: &Served, headers: &HeaderMap, repo: &str) -> Result<(), HubError> {
    if !s.pull_through {
        return Err(HubError::repo(repo));
    }
    upstream_allowed(s, headers, repo)
}

/// `repo` at `revision` as the upstream lists it.
pub(crate) async fn listing(s: &Served, headers: &HeaderMap, repo: &str, revision: &str) -> Result<Listing, HubError> {
    may_ask_upstream(s, headers, repo)?;
    // Asked as this caller may ask it: the owner's token only for a holder of this server's tokens, so the hub
    // itself says what anybody else may see. What was said with the token is kept apart from what was said without.
    let with_token = super::owners_token_for(s, headers);
    let key = super::upstream_key(with_token, format!("{repo}@{revision}"));
    if let Some(miss) = s.recent.miss(&key) {
        return Err(miss);
    }
    let is_commit = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(listing) = s.recent.commit(&key).filter(|_| is_commit) {
        return Ok(listing);
    }
    let info = s.manager.hub_listing(repo, revision, with_token).await.map_err(|e| {
        let error = hub_error(s, repo, revision, e);
        s.recent.put_miss(key.clone(), &error);
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
    let listing = Listing {
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
    };
    if is_commit {
        s.recent.put_commit(key, &listing);
    }
    Ok(listing)
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
    may_fetch(s, headers, listing, file)?;
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
    if let Some(limit) = s.cache_limit {
        // Room first, under the mirror's own limit: the least recently used models nobody uses go, on their own.
        s.manager
            .make_room_within(&listing.repo, file.size, limit)
            .await
            .map_err(|e| HubError::new(StatusCode::INSUFFICIENT_STORAGE, "InsufficientStorage", e.message))?;
    }
    let id = s.manager.enqueue(request).map_err(refused)?;
    tracing::info!(repo = %listing.repo, path = %file.path, download = id, "pulling through from the upstream hub");
    // Downloads land in this machine's cache, whatever folder the listing came from.
    let repo = mm_core::cache::RepoId::parse(&listing.repo).map_err(|_| HubError::repo(&listing.repo))?;
    let blobs = s.manager.cache_dir().join(repo.folder_name(mm_core::cache::RepoKind::Model)).join("blobs");
    let blob = file.blob.clone().unwrap_or_default();
    let at = Landing {
        pieces: blobs.join(format!("{blob}.incomplete{}", mm_core::cache::layout::PIECES_SUFFIX)),
        partial: format!("{blob}.incomplete"),
        blobs,
        blob: blob.clone(),
    };
    // The first bytes, or why there will be none. Nothing was sent yet: a failure here taints no resume.
    loop {
        let state = s.manager.download(id).map_err(refused)?;
        if at.placed().is_some() || at.open_partial().is_some_and(|f| f.metadata().is_ok_and(|m| m.len() > start)) {
            break;
        }
        match state.state {
            DownloadState::Failed | DownloadState::Cancelled => {
                return Err(refused(state.error.unwrap_or(mm_core::ErrorPayload::new(
                    mm_core::ErrorCode::Network,
                    format!("the upstream fetch of {} stopped", file.path),
                ))));
            }
            DownloadState::Completed => break,
            _ => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let (manager, failed) = (s.manager.clone(), s.failed_fills.clone());
    tokio::spawn(async move {
        let mut pos = start;
        if let Err(err) = copy_as_it_lands(&manager, id, &at, &mut pos, end, &tx).await {
            // The answer ends in an error (the connection is cut short of its length), never a clean close; and
            // when the client got bytes of it, which may be wrong, a resume of it is refused.
            if pos > start {
                failed.add(&blob);
            }
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
    may_fetch(s, headers, listing, file)?;
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

/// Where a blob being fetched is on disk: its folder, its name, the name of its partial file, and the record of a
/// download in pieces. Both files are opened without following a link (see [`super::open_in`]): a link planted
/// in a shared cache in their place is never read.
struct Landing {
    blobs: std::path::PathBuf,
    blob: String,
    partial: String,
    pieces: std::path::PathBuf,
}

impl Landing {
    fn placed(&self) -> Option<std::fs::File> {
        super::open_in(&self.blobs, &self.blob).ok()
    }

    fn open_partial(&self) -> Option<std::fs::File> {
        super::open_in(&self.blobs, &self.partial).ok()
    }
}

/// Sends `start..end` of the blob to `tx`: from its partial file while download `id` writes it in order, the rest
/// from the placed blob once verified. Ends, without stopping the download, when the client has gone.
/// `pos` is where the answer is: past `start` once bytes were sent.
async fn copy_as_it_lands(
    manager: &mm_core::Manager,
    id: u64,
    at: &Landing,
    pos: &mut u64,
    end: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut following: Option<tokio::fs::File> = None;
    let mut buffer = vec![0u8; 256 * 1024];
    while *pos < end && !tx.is_closed() {
        if let Some(placed) = at.placed() {
            // Verified and placed: the rest from the blob itself.
            let mut file = tokio::fs::File::from_std(placed);
            file.seek(std::io::SeekFrom::Start(*pos)).await?;
            let mut rest = file.take(end - *pos);
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
            DownloadState::Completed if at.placed().is_none() => {
                return Err(std::io::Error::other("the fetched file was not placed in the cache"));
            }
            _ => {}
        }
        if following.is_none() && !at.pieces.exists() {
            following = at.open_partial().map(tokio::fs::File::from_std);
        }
        // In order on disk: what is there up to the last byte, which waits for the verified file.
        let mut sent = false;
        if let Some(file) = following.as_mut() {
            let available = file.metadata().await?.len().min(end.saturating_sub(1));
            if available > *pos && !at.pieces.exists() {
                file.seek(std::io::SeekFrom::Start(*pos)).await?;
                let want = (available - *pos).min(buffer.len() as u64) as usize;
                let n = file.read(&mut buffer[..want]).await?;
                // A record that appeared meanwhile means pieces, maybe not yet written: these bytes are dropped.
                if n > 0 && !at.pieces.exists() {
                    *pos += n as u64;
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
