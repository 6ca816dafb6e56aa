//! Pull-through: what the mirror has not got is asked of the upstream hub (the one the server downloads from,
//! or `--upstream`). A repo or revision is listed as upstream lists it; a file is fetched once through the normal
//! download path (verified, placed atomically in the cache) and then served. Clients asking for the same file at
//! once join one download; a client that goes away does not stop it for the others. Offline, or with
//! `--no-upstream`, the answer is the Hub's own "not found".

use super::{HubError, Listing};
use crate::Served;
use axum::http::StatusCode;
use mm_core::cache::CachedFile;
use mm_core::download::DownloadRequest;
use mm_core::hub::HubError as Upstream;

/// The upstream's error, as the Hub would have answered it.
fn hub_error(repo: &str, revision: &str, err: Upstream) -> HubError {
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
        other => HubError::new(StatusCode::BAD_GATEWAY, "UpstreamError", other.to_string()),
    }
}

/// `repo` at `revision` as the upstream lists it.
pub(crate) async fn listing(s: &Served, repo: &str, revision: &str) -> Result<Listing, HubError> {
    if !s.pull_through {
        return Err(HubError::repo(repo));
    }
    let info = s.manager.hub_listing(repo, revision).await.map_err(|e| hub_error(repo, revision, e))?;
    let folder = info.repo.folder_name(mm_core::cache::RepoKind::Model);
    Ok(Listing {
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

/// Fetches one file of `listing` into the cache, or joins the fetch already under way.
pub(crate) async fn file(s: &Served, listing: &Listing, path: &str) -> Result<(), HubError> {
    let missing = |why: String| HubError::new(StatusCode::NOT_FOUND, "EntryNotFound", why);
    if !s.pull_through {
        return Err(missing(format!("{path} of {} is not on this mirror", listing.repo)));
    }
    let request = DownloadRequest {
        repo: listing.repo.clone(),
        revision: Some(listing.commit.clone()),
        files: vec![path.to_string()],
        ..DownloadRequest::default()
    };
    let upstream = |e: mm_core::ErrorPayload| match e.code {
        mm_core::ErrorCode::NotFound => missing(e.message),
        _ => HubError::new(StatusCode::BAD_GATEWAY, "UpstreamError", e.message),
    };
    let id = s.manager.start(request).map_err(upstream)?;
    tracing::info!(repo = %listing.repo, path, download = id, "pulling through from the upstream hub");
    s.manager.wait(id).await.map_err(upstream)?;
    Ok(())
}
