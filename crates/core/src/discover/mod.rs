//! Discover: finding models before they are downloaded. The hub's model search ([`search`]), a repo's details
//! without downloading it ([`details`], with the model card rendered safely by [`card`]), and the curated starter
//! catalog shipped with the app ([`catalog`]).
//!
//! [`Discover`] holds the hub client and a short-lived cache of answers, and cancels a search when a newer one
//! starts, so that typing never queues stale requests.

pub mod card;
pub mod catalog;
pub mod details;
pub mod search;

use crate::error::{Coded, ErrorCode};
use crate::hub::{HubClient, HubError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub use catalog::{CatalogEntry, StarterCatalog};
pub use details::{Quantisation, RepoDetails, RepoFile};
pub use search::{SearchHit, SearchPage, SearchQuery, SearchSort};

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("Discover needs the hub, and HF_HUB_OFFLINE is set: unset it to search; your library works offline")]
    Offline,
    #[error("the hub at {endpoint} cannot be reached ({reason}): check the network; your library works offline")]
    Unreachable { endpoint: String, reason: String },
    #[error("the hub's model search failed: {endpoint} answered {status}{}; try again in a moment",
        message.as_deref().map(|m| format!(" {m}")).unwrap_or_default())]
    SearchFailed { endpoint: String, status: u16, message: Option<String> },
    #[error("{0}")]
    InvalidQuery(String),
    #[error("a newer search replaced this one")]
    Cancelled,
    #[error(transparent)]
    Hub(HubError),
    #[error(transparent)]
    InvalidRepoId(#[from] crate::cache::layout::InvalidRepoId),
}

impl DiscoverError {
    fn from_hub(err: HubError, endpoint: &str) -> DiscoverError {
        match err {
            HubError::Offline { .. } => DiscoverError::Offline,
            HubError::Network { reason, .. } => DiscoverError::Unreachable { endpoint: endpoint.into(), reason },
            other => DiscoverError::Hub(other),
        }
    }
}

impl Coded for DiscoverError {
    fn code(&self) -> ErrorCode {
        match self {
            DiscoverError::Offline | DiscoverError::Unreachable { .. } | DiscoverError::SearchFailed { .. } => {
                ErrorCode::Network
            }
            DiscoverError::InvalidQuery(_) | DiscoverError::InvalidRepoId(_) => ErrorCode::InvalidInput,
            DiscoverError::Cancelled => ErrorCode::Cancelled,
            DiscoverError::Hub(e) => e.code(),
        }
    }
}

/// How long an answer is reused: long enough for going back and forth while browsing, short enough that
/// download counts and new repos show up.
pub const CACHE_TTL: Duration = Duration::from_secs(120);
const CACHE_ENTRIES: usize = 64;

/// Answers kept for [`CACHE_TTL`], keyed by what was asked.
struct TtlCache<T> {
    entries: HashMap<String, (Instant, T)>,
}

impl<T: Clone> TtlCache<T> {
    fn new() -> Self {
        TtlCache { entries: HashMap::new() }
    }

    fn get(&mut self, key: &str) -> Option<T> {
        match self.entries.get(key) {
            Some((at, value)) if at.elapsed() < CACHE_TTL => Some(value.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: String, value: T) {
        if self.entries.len() >= CACHE_ENTRIES {
            let oldest = self.entries.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (Instant::now(), value));
    }
}

/// The hub's search and repo details for the app and the CLI, with a short cache and stale searches cancelled.
pub struct Discover {
    hub: Mutex<HubClient>,
    cache_dir: PathBuf,
    searches: Mutex<TtlCache<SearchPage>>,
    details: Mutex<TtlCache<RepoDetails>>,
    /// Cancels the search in flight when a newer one starts.
    latest: Mutex<CancellationToken>,
}

impl Discover {
    pub fn new(hub: HubClient, cache_dir: PathBuf) -> Discover {
        Discover {
            hub: Mutex::new(hub),
            cache_dir,
            searches: Mutex::new(TtlCache::new()),
            details: Mutex::new(TtlCache::new()),
            latest: Mutex::new(CancellationToken::new()),
        }
    }

    /// A new endpoint or token: what was cached came from the old one, so it goes.
    pub fn set_hub(&self, hub: HubClient) {
        *self.hub.lock().unwrap() = hub;
        self.searches.lock().unwrap().entries.clear();
        self.details.lock().unwrap().entries.clear();
    }

    pub fn hub(&self) -> HubClient {
        self.hub.lock().unwrap().clone()
    }

    pub fn offline(&self) -> bool {
        self.hub.lock().unwrap().config().offline
    }

    /// One page of search results (the first, or the one `next` names), from the cache when asked recently.
    /// Starting a search cancels the one before it, which then fails with [`DiscoverError::Cancelled`].
    pub async fn search(&self, query: &SearchQuery, next: Option<&str>) -> Result<SearchPage, DiscoverError> {
        let token = {
            let mut latest = self.latest.lock().unwrap();
            latest.cancel();
            *latest = CancellationToken::new();
            latest.clone()
        };
        let hub = self.hub();
        let params = query.params()?;
        // A cursor is a page of the hub's model list, as a previous answer gave it.
        let listing = |n: &str| {
            reqwest::Url::parse(&hub.config().endpoint)
                .and_then(|e| e.join(n))
                .is_ok_and(|u| u.path().ends_with("/api/models"))
        };
        if let Some(next) = next.filter(|n| !listing(n)) {
            return Err(DiscoverError::InvalidQuery(format!(
                "\"{next}\" is not the `next` of a page of search results"
            )));
        }
        let key = format!("{}|{params:?}|{next:?}", hub.config().endpoint);
        if let Some(page) = self.searches.lock().unwrap().get(&key) {
            return Ok(self.mark_installed(page));
        }
        let endpoint = hub.config().endpoint.clone();
        let page = tokio::select! {
            _ = token.cancelled() => return Err(DiscoverError::Cancelled),
            answer = hub.list_models(&params, next) => match answer {
                Ok((entries, next)) => SearchPage::from_entries(entries, next),
                Err(HubError::Status { status, message, .. }) => {
                    return Err(DiscoverError::SearchFailed { endpoint, status, message })
                }
                Err(e) => return Err(DiscoverError::from_hub(e, &endpoint)),
            },
        };
        self.searches.lock().unwrap().put(key, page.clone());
        Ok(self.mark_installed(page))
    }

    /// What a repo offers, without downloading it: files, GGUF quantisations, the model card.
    pub async fn details(&self, repo: &str, revision: Option<&str>) -> Result<RepoDetails, DiscoverError> {
        let hub = self.hub();
        let (repo, url_revision) = crate::hub::parse_repo_reference(repo).map_err(DiscoverError::InvalidRepoId)?;
        let revision = revision.map(str::to_owned).or(url_revision).unwrap_or_else(|| "main".into());
        let key = format!("{}|{repo}|{revision}", hub.config().endpoint);
        let cached = self.details.lock().unwrap().get(&key);
        let details = match cached {
            Some(d) => d,
            None => {
                let d = details::fetch(&hub, &repo, &revision)
                    .await
                    .map_err(|e| DiscoverError::from_hub(e, &hub.config().endpoint))?;
                self.details.lock().unwrap().put(key, d.clone());
                d
            }
        };
        Ok(details.with_local_state(&self.cache_dir))
    }

    fn mark_installed(&self, mut page: SearchPage) -> SearchPage {
        for hit in &mut page.models {
            hit.installed = installed(&self.cache_dir, &hit.id, &[]);
        }
        page
    }
}

/// Whether the cache holds `repo` with all of `files` in one snapshot (any complete snapshot when `files` is
/// empty).
pub fn installed(cache_dir: &std::path::Path, repo: &str, files: &[String]) -> bool {
    let Ok(id) = crate::cache::RepoId::parse(repo) else { return false };
    let snapshots = id.folder(cache_dir, crate::cache::RepoKind::Model).join("snapshots");
    if !snapshots.is_dir() {
        return false;
    }
    if files.is_empty() {
        return crate::cache::scan::scan_repo_blocking(cache_dir, crate::cache::RepoKind::Model, &id)
            .is_some_and(|r| r.revisions.iter().any(|rev| rev.status == crate::cache::CacheStatus::Complete));
    }
    let Ok(entries) = std::fs::read_dir(&snapshots) else { return false };
    entries
        .flatten()
        .any(|snapshot| files.iter().all(|f| std::fs::metadata(snapshot.path().join(f)).is_ok_and(|m| m.is_file())))
}
