//! Repo metadata and file lists from the hub, and requests that carry the token only to the hub itself.

use super::config::HubConfig;
use super::error::HubError;
use super::retry::RetryPolicy;
use crate::cache::RepoId;
use crate::http::{next_link, read_capped, BodyError};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, LOCATION, RANGE, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;
use std::time::Duration;

/// A repo's branches, tags and pull requests (`refs/pr/N`), as the hub's `GET /api/models/{repo}/refs` lists
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRefs {
    #[serde(default)]
    pub branches: Vec<GitRef>,
    #[serde(default)]
    pub tags: Vec<GitRef>,
    #[serde(default)]
    pub converts: Vec<GitRef>,
    #[serde(default)]
    pub pull_requests: Vec<GitRef>,
}

/// One ref: `main`, `refs/heads/main`, and the commit it points at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRef {
    pub name: String,
    #[serde(rename = "ref")]
    pub full: String,
    pub target_commit: String,
}

/// One file of a commit, with what is needed to fetch and verify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub path: String,
    pub size: u64,
    /// The blob name in the cache: the sha256 of an LFS file, or the git blob sha1 of a small one.
    pub blob: String,
    /// True when `blob` is a sha256 (an LFS file); false when it is a git blob sha1.
    pub lfs: bool,
}

/// A revision resolved to its commit, with the commit's files.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    pub repo: RepoId,
    pub commit: String,
    pub files: Vec<RemoteFile>,
    pub gated: bool,
    /// Readable only with a token that may (what a mirror must not hand out).
    pub private: bool,
    pub pipeline_tag: Option<String>,
    pub tags: Vec<String>,
    pub library_name: Option<String>,
    pub card_data: Option<serde_json::Value>,
}

/// The hub, for one endpoint and token.
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    config: HubConfig,
    endpoint: Url,
    retry: RetryPolicy,
}

const USER_AGENT: &str = concat!("model-manager/", env!("CARGO_PKG_VERSION"));
const MAX_REDIRECTS: usize = 5;
/// The most a metadata answer (repo info, one page of a file list or of a search) may hold: a repo of 100,000
/// files lists in about 15 MB.
pub const MAX_METADATA_BYTES: usize = 64 << 20;
/// The most files one revision's listing may name.
const MAX_FILES: usize = 1_000_000;

impl HubClient {
    pub fn new(config: HubConfig) -> Result<HubClient, HubError> {
        HubClient::with_retry(config, RetryPolicy::default())
    }

    pub fn with_retry(config: HubConfig, retry: RetryPolicy) -> Result<HubClient, HubError> {
        let endpoint = Url::parse(&config.endpoint).map_err(|e| HubError::Protocol {
            what: format!("the endpoint \"{}\"", config.endpoint),
            reason: e.to_string(),
        })?;
        let http = config
            .proxies
            .apply(reqwest::Client::builder())
            .user_agent(USER_AGENT)
            // Redirects are followed by hand, so that the token never leaves the endpoint's origin.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            // A server that accepts the connection and then goes silent fails the request (and it is retried).
            .read_timeout(config.timeout)
            // Bytes as stored: a range or a length means the same thing to both sides.
            .default_headers(HeaderMap::from_iter([(ACCEPT_ENCODING, HeaderValue::from_static("identity"))]))
            .build()
            .map_err(|e| HubError::Network { url: config.endpoint.clone(), reason: e.to_string() })?;
        Ok(HubClient { http, config, endpoint, retry })
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The same client without the token: what a mirror asks the hub for a caller the owner's token is not for.
    pub fn without_token(&self) -> HubClient {
        HubClient { config: HubConfig { token: None, ..self.config.clone() }, ..self.clone() }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// `{endpoint}/{segments...}`, each segment percent-encoded (a `/` inside one becomes `%2F`).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut path = url.path_segments_mut().expect("an http endpoint has a path");
            path.pop_if_empty();
            for segment in segments {
                path.push(segment);
            }
        }
        url
    }

    /// The URL of a file at a commit: `{endpoint}/{repo}/resolve/{commit}/{path}`.
    pub fn resolve_url(&self, repo: &RepoId, revision: &str, path: &str) -> Url {
        let mut segments: Vec<&str> = repo.as_str().split('/').collect();
        segments.extend(["resolve", revision]);
        segments.extend(path.split('/'));
        self.url(&segments)
    }

    /// The page of a repo on the hub, for messages.
    pub fn repo_page(&self, repo: &RepoId) -> String {
        format!("{}/{}", self.config.endpoint, repo)
    }

    /// The `Authorization` value this client sends to `url`: the token, to the endpoint's own origin only.
    pub fn authorization_for(&self, url: &Url) -> Option<String> {
        let token = self.config.token.as_ref()?;
        self.same_origin(url).then(|| format!("Bearer {token}"))
    }

    /// The headers of the hub's own answer for `url`, without following its redirect (a `HEAD`): how a resolve
    /// says where a file is stored (`X-Xet-Hash`, its `Link`s, `X-Linked-Size`).
    pub async fn head(&self, url: Url) -> Result<reqwest::header::HeaderMap, HubError> {
        let response = self.send_once(self.http.head(url.clone()), &url).await?;
        tracing::debug!(url = %crate::logs::redact_url(url.as_str()), status = response.status().as_u16(), "hub HEAD");
        Ok(response.headers().clone())
    }

    /// One request to `url`, no redirect followed: none while offline, the token only to the endpoint's origin, a
    /// proxy's refusal said to be the proxy's.
    async fn send_once(&self, request: reqwest::RequestBuilder, url: &Url) -> Result<Response, HubError> {
        if self.config.offline {
            return Err(HubError::Offline { what: url.to_string() });
        }
        let request = match self.authorization_for(url) {
            Some(auth) => request.header(AUTHORIZATION, auth),
            None => request,
        };
        let response = crate::http::send_idempotent(request).await.map_err(|e| self.network_error(url, &e))?;
        match HubError::from_proxy_answer(&self.config.proxies, url, &response) {
            Some(refused) => Err(refused),
            None => Ok(response),
        }
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.endpoint.scheme()
            && url.host_str() == self.endpoint.host_str()
            && url.port_or_known_default() == self.endpoint.port_or_known_default()
    }

    /// A GET that follows redirects by hand, with the token on requests to the endpoint's origin only.
    /// `range_from` asks for the bytes from that offset on.
    pub async fn get(&self, url: Url, range_from: Option<u64>) -> Result<Response, HubError> {
        self.send(url, range_from.filter(|n| *n > 0).map(|from| format!("bytes={from}-"))).await
    }

    /// A GET with a `Range` header as given (`bytes=START-END`), following redirects, the token to the endpoint's
    /// origin only.
    pub async fn get_range(&self, url: Url, range: String) -> Result<Response, HubError> {
        self.send(url, Some(range)).await
    }

    /// The one way this client sends a GET: redirects followed by hand, the token only to the endpoint's origin,
    /// an optional `Range` header on every hop.
    async fn send(&self, url: Url, range: Option<String>) -> Result<Response, HubError> {
        let mut url = url;
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.http.get(url.clone());
            if let Some(range) = &range {
                request = request.header(RANGE, range.as_str());
            }
            let response = self.send_once(request, &url).await?;
            tracing::debug!(url = %crate::logs::redact_url(url.as_str()), status = response.status().as_u16(), range, "hub GET");
            if response.status().is_redirection() {
                if let Some(next) = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()) {
                    url = url.join(next).map_err(|e| HubError::Protocol {
                        what: format!("the redirect from {}", crate::logs::redact_url(url.as_str())),
                        reason: e.to_string(),
                    })?;
                    continue;
                }
            }
            return Ok(response);
        }
        Err(HubError::Protocol {
            what: crate::logs::redact_url(url.as_str()),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Bytes `[start, end)` of a file, through a `Range` request (following the LFS redirect without the token).
    /// A server that ignores the range is read only as far as needed.
    pub async fn fetch_range(
        &self,
        repo: &RepoId,
        revision: &str,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, HubError> {
        let url = self.resolve_url(repo, revision, path);
        self.retrying(|| self.fetch_range_once(&url, repo, revision, path, start, end)).await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry policy's attempts are spent, waiting the
    /// policy's backoff between tries. Only transient errors (the network, 429, 5xx) are tried again.
    async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, HubError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, HubError>>,
    {
        self.retrying_at_most(self.retry.attempts, attempt).await
    }

    /// [`Self::retrying`] with at most `attempts` tries (someone waiting on the answer retries less).
    async fn retrying_at_most<T, F, Fut>(&self, attempts: u32, mut attempt: F) -> Result<T, HubError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, HubError>>,
    {
        let policy = RetryPolicy { attempts: attempts.min(self.retry.attempts), ..self.retry };
        // A request makes no progress to count: each failure is one more.
        let mut failures = super::retry::Failures::new(policy, 0);
        loop {
            match attempt().await {
                Err(e) if e.is_transient() => match failures.failed(0, None) {
                    Ok(delay) => {
                        tracing::warn!(attempt = failures.count(), error = %e, "hub request failed; trying again");
                        tokio::time::sleep(delay).await
                    }
                    Err(_) => return Err(e),
                },
                other => return other,
            }
        }
    }

    /// One ranged GET of `[start, end)`: the answer checked to be a success that starts where asked (a `206`
    /// saying so, or a `200` to be skipped forward).
    async fn open_range_once(
        &self,
        url: &Url,
        repo: &RepoId,
        revision: &str,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<RangeBody, HubError> {
        let response = self.send(url.clone(), Some(format!("bytes={start}-{}", end.saturating_sub(1)))).await?;
        if !response.status().is_success() {
            return Err(self.status_error(&response, repo, Some(revision), Some(path)));
        }
        let partial = response.status() == StatusCode::PARTIAL_CONTENT;
        if partial
            && crate::http::ContentRange::of(response.headers()).and_then(|c| c.range).map(|r| r.0) != Some(start)
        {
            return Err(HubError::Protocol {
                what: format!("{path} of {repo}"),
                reason: format!("the server did not send the range from byte {start} that was asked for"),
            });
        }
        let target = response.url().clone();
        Ok(RangeBody { response, target, skip: if partial { 0 } else { start }, left: end.saturating_sub(start) })
    }

    async fn fetch_range_once(
        &self,
        url: &Url,
        repo: &RepoId,
        revision: &str,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, HubError> {
        let mut body = self.open_range_once(url, repo, revision, path, start, end).await?;
        let mut out = Vec::with_capacity(((end - start) as usize).min(64 << 20));
        // A server that ignores the range is read only as far as needed, and one that ends short gives what it sent.
        while let Some(chunk) =
            body.response.chunk().await.map_err(|e| self.network_error(&body.target, &e)).transpose()
        {
            let Some(bytes) = body.take(chunk?) else { continue };
            out.extend_from_slice(&bytes);
            if body.left == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// The bytes `[start, end)` of a file as the hub sends them, for a reader who wants them now and unstored (a
    /// mirror's client reading a header): the answer is checked to start where asked, a `200` is skipped forward.
    pub async fn open_range(
        &self,
        repo: &RepoId,
        revision: &str,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<RangeBody, HubError> {
        let url = self.resolve_url(repo, revision, path);
        self.retrying(|| self.open_range_once(&url, repo, revision, path, start, end)).await
    }

    /// A whole small file (such as `config.json`), at most `limit` bytes.
    pub async fn fetch_small(
        &self,
        repo: &RepoId,
        revision: &str,
        path: &str,
        limit: u64,
    ) -> Result<Vec<u8>, HubError> {
        self.fetch_range(repo, revision, path, 0, limit).await
    }

    /// The commit `revision` points at, and its files with sizes and hashes.
    pub async fn repo_info(&self, repo: &RepoId, revision: &str) -> Result<RepoInfo, HubError> {
        let mut segments: Vec<&str> = vec!["api", "models"];
        segments.extend(repo.as_str().split('/'));
        segments.extend(["revision", revision]);
        let mut url = self.url(&segments);
        url.set_query(Some("blobs=true"));
        let body: InfoBody = self.get_json(url, repo, Some(revision)).await?;
        let what = || format!("{repo} at {revision}");
        let commit = body
            .sha
            .ok_or_else(|| HubError::Protocol { what: what(), reason: "no commit sha in the repo info".into() })?;
        // The commit names folders and files in the cache: anything but a commit id is refused here, once.
        if !crate::cache::layout::is_commit_hash(&commit) {
            return Err(HubError::Protocol {
                what: what(),
                reason: format!("the commit id {commit:?} is not 40 hexadecimal digits; refusing to use it"),
            });
        }
        let gated = matches!(body.gated, Some(serde_json::Value::String(_)) | Some(serde_json::Value::Bool(true)));
        let complete: Option<Vec<RemoteFile>> = body.siblings.iter().map(Sibling::remote_file).collect();
        let files = match complete {
            Some(files) => files,
            // A hub or mirror that omits sizes or hashes: the tree API has them.
            None => self.list_tree(repo, &commit).await?,
        };
        Ok(RepoInfo {
            repo: repo.clone(),
            commit,
            files,
            gated,
            private: body.private,
            pipeline_tag: body.pipeline_tag,
            tags: body.tags,
            library_name: body.library_name,
            card_data: body.card_data,
        })
    }

    /// The repo's refs, pull requests included. Only a ref whose target is a commit id is kept (a mirror serves
    /// them as folders and names).
    pub async fn refs(&self, repo: &RepoId) -> Result<GitRefs, HubError> {
        let mut segments: Vec<&str> = vec!["api", "models"];
        segments.extend(repo.as_str().split('/'));
        segments.push("refs");
        let mut url = self.url(&segments);
        url.set_query(Some("include_prs=1"));
        let mut refs: GitRefs = self.get_json(url, repo, None).await?;
        for list in [&mut refs.branches, &mut refs.tags, &mut refs.converts, &mut refs.pull_requests] {
            list.retain(|r| crate::cache::layout::is_commit_hash(&r.target_commit) && r.name.len() <= 1024);
        }
        Ok(refs)
    }

    /// Every file of `revision`, through the tree API, following its `Link: rel="next"` pages.
    pub async fn list_tree(&self, repo: &RepoId, revision: &str) -> Result<Vec<RemoteFile>, HubError> {
        let mut segments: Vec<&str> = vec!["api", "models"];
        segments.extend(repo.as_str().split('/'));
        segments.extend(["tree", revision]);
        let mut url = self.url(&segments);
        url.set_query(Some("recursive=true"));
        let mut files = Vec::new();
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 10_000 {
                return Err(HubError::Protocol {
                    what: format!("the file list of {repo}"),
                    reason: "too many pages".into(),
                });
            }
            let response = self.get_checked(url.clone(), repo, Some(revision), None).await?;
            next = match next_link(response.headers()).map(|l| url.join(&l)) {
                None => None,
                Some(Ok(next)) if self.same_origin(&next) => Some(next),
                Some(_) => {
                    return Err(HubError::Protocol {
                        what: format!("the file list of {repo}"),
                        reason: format!("its next page is not on {}", self.config.endpoint),
                    })
                }
            };
            let entries: Vec<TreeEntry> = self.read_json(response, &format!("the file list of {repo}")).await?;
            if files.len() + entries.len() > MAX_FILES {
                return Err(HubError::Protocol {
                    what: format!("the file list of {repo}"),
                    reason: format!("it names more than {MAX_FILES} files"),
                });
            }
            for entry in entries.into_iter().filter(|e| e.kind == "file") {
                let (blob, lfs) = match entry.lfs {
                    Some(lfs) => (lfs.oid, true),
                    None => (entry.oid, false),
                };
                files.push(RemoteFile { path: entry.path, size: entry.size, blob, lfs });
            }
        }
        Ok(files)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        repo: &RepoId,
        revision: Option<&str>,
    ) -> Result<T, HubError> {
        let what = format!("{repo}");
        let response = self.get_checked(url, repo, revision, None).await?;
        self.read_json(response, &what).await
    }

    /// A GET with retries on transient failures, whose non-success statuses become [`HubError`]s.
    pub async fn get_checked(
        &self,
        url: Url,
        repo: &RepoId,
        revision: Option<&str>,
        path: Option<&str>,
    ) -> Result<Response, HubError> {
        self.retrying(|| async {
            let response = self.get(url.clone(), None).await?;
            if response.status().is_success() {
                Ok(response)
            } else {
                Err(self.status_error(&response, repo, revision, path))
            }
        })
        .await
    }

    /// One page of the hub's model search (`GET {endpoint}/api/models?...`), or the page a previous answer's
    /// `next` names. Returns the raw entries and the next page's URL, which is never off the endpoint's origin.
    pub async fn list_models(
        &self,
        params: &[(&str, String)],
        next: Option<&str>,
    ) -> Result<(Vec<serde_json::Value>, Option<String>), HubError> {
        let url = match next {
            Some(next) => {
                let url = self.endpoint.join(next).map_err(|e| HubError::Protocol {
                    what: "the next page of results".into(),
                    reason: e.to_string(),
                })?;
                if !self.same_origin(&url) {
                    return Err(HubError::Protocol {
                        what: "the next page of results".into(),
                        reason: format!("{url} is not on {}", self.config.endpoint),
                    });
                }
                url
            }
            None => {
                let mut url = self.url(&["api", "models"]);
                url.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
                url
            }
        };
        // Someone is waiting on a search: one quick retry, then the error.
        let response = self
            .retrying_at_most(2, || async {
                let response = self.get(url.clone(), None).await?;
                if response.status().is_success() {
                    return Ok(response);
                }
                let status = response.status();
                let message = header(response.headers(), "x-error-message")
                    .or_else(|| status.canonical_reason().map(str::to_owned));
                Err(HubError::Status { url: url.to_string(), status: status.as_u16(), message })
            })
            .await?;
        let next = next_link(response.headers()).and_then(|l| url.join(&l).ok()).filter(|u| self.same_origin(u));
        let entries: Vec<serde_json::Value> = self.read_json(response, "the search results").await?;
        Ok((entries, next.map(String::from)))
    }

    /// The [`HubError`] a failed response stands for.
    pub fn status_error(
        &self,
        response: &Response,
        repo: &RepoId,
        revision: Option<&str>,
        path: Option<&str>,
    ) -> HubError {
        let status = response.status();
        let code = header(response.headers(), "x-error-code");
        let message = header(response.headers(), "x-error-message");
        let had_token = self.config.token.is_some();
        let repo_s = repo.to_string();
        let endpoint = self.config.endpoint.clone();
        match (status, code.as_deref()) {
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, Some("GatedRepo")) if had_token => {
                HubError::AccessDenied { repo: repo_s, endpoint }
            }
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, Some("GatedRepo")) => {
                HubError::TokenRequired { repo: repo_s }
            }
            (StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND, Some("RepoNotFound")) => {
                HubError::RepoNotFound { repo: repo_s, endpoint }
            }
            (StatusCode::UNAUTHORIZED, _) if had_token => HubError::TokenInvalid { repo: repo_s },
            (StatusCode::UNAUTHORIZED, _) => HubError::RepoNotFound { repo: repo_s, endpoint },
            (StatusCode::FORBIDDEN, _) => HubError::AccessDenied { repo: repo_s, endpoint },
            (StatusCode::NOT_FOUND, Some("RevisionNotFound")) => {
                HubError::RevisionNotFound { repo: repo_s, revision: revision.unwrap_or("main").into() }
            }
            (StatusCode::NOT_FOUND, Some("EntryNotFound")) | (StatusCode::NOT_FOUND, _) if path.is_some() => {
                HubError::FileNotFound {
                    repo: repo_s,
                    revision: revision.unwrap_or("main").into(),
                    path: path.unwrap().into(),
                }
            }
            (StatusCode::NOT_FOUND, _) => HubError::RepoNotFound { repo: repo_s, endpoint },
            // The answer may come from a signed redirect target: its signature stays out of messages and logs.
            _ => HubError::Status {
                url: crate::logs::redact_url(response.url().as_str()),
                status: status.as_u16(),
                message,
            },
        }
    }
}

/// The server's `Retry-After`, in seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

impl HubClient {
    /// A transport failure as a [`HubError::Network`]; a silent server is said to be silent.
    fn network_error(&self, url: &Url, err: &reqwest::Error) -> HubError {
        if err.is_timeout() {
            return HubError::Network {
                url: crate::logs::redact_url(url.as_str()),
                reason: format!(
                    "the server did not answer for {} s (HF_HUB_DOWNLOAD_TIMEOUT sets how long to wait)",
                    self.config.timeout.as_secs_f32()
                ),
            };
        }
        HubError::from_transport(&self.config.proxies, url, err)
    }

    /// A JSON answer of at most [`MAX_METADATA_BYTES`].
    async fn read_json<T: serde::de::DeserializeOwned>(&self, response: Response, what: &str) -> Result<T, HubError> {
        let url = response.url().clone();
        let bytes = read_capped(response, MAX_METADATA_BYTES).await.map_err(|e| match e {
            BodyError::Transport(e) => self.network_error(&url, &e),
            too_large => HubError::Protocol { what: what.to_string(), reason: too_large.to_string() },
        })?;
        serde_json::from_slice(&bytes).map_err(|e| HubError::Protocol { what: what.to_string(), reason: e.to_string() })
    }
}

#[derive(Deserialize)]
struct InfoBody {
    sha: Option<String>,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    siblings: Vec<Sibling>,
    gated: Option<serde_json::Value>,
    pipeline_tag: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    library_name: Option<String>,
    #[serde(rename = "cardData")]
    card_data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<SiblingLfs>,
}

#[derive(Deserialize)]
struct SiblingLfs {
    sha256: String,
    size: Option<u64>,
}

impl Sibling {
    fn remote_file(&self) -> Option<RemoteFile> {
        match &self.lfs {
            Some(lfs) => Some(RemoteFile {
                path: self.rfilename.clone(),
                size: lfs.size.or(self.size)?,
                blob: lfs.sha256.clone(),
                lfs: true,
            }),
            None => Some(RemoteFile {
                path: self.rfilename.clone(),
                size: self.size?,
                blob: self.blob_id.clone()?,
                lfs: false,
            }),
        }
    }
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: String,
    lfs: Option<TreeLfs>,
}

#[derive(Deserialize)]
struct TreeLfs {
    oid: String,
}

/// A range of a file being read from the hub ([`HubClient::open_range`]).
pub struct RangeBody {
    response: Response,
    /// Where the bytes come from (after redirects), for messages.
    target: Url,
    /// Bytes still to drop (a server that sent the whole file).
    skip: u64,
    /// Bytes still to hand out.
    left: u64,
}

impl RangeBody {
    /// What of `chunk` belongs to the range: none while skipping forward, at most what is left.
    fn take(&mut self, mut chunk: bytes::Bytes) -> Option<bytes::Bytes> {
        if self.skip > 0 {
            let n = self.skip.min(chunk.len() as u64) as usize;
            chunk = chunk.slice(n..);
            self.skip -= n as u64;
        }
        let n = self.left.min(chunk.len() as u64) as usize;
        self.left -= n as u64;
        (n > 0).then(|| chunk.slice(..n))
    }

    /// The next bytes of the range; an error when the hub ends short or the connection fails, `None` at its end.
    pub async fn chunk(&mut self) -> Option<std::io::Result<bytes::Bytes>> {
        while self.left > 0 {
            match self.response.chunk().await {
                Err(e) => return Some(Err(std::io::Error::other(format!("the upstream hub failed mid-answer: {e}")))),
                Ok(None) => {
                    let why = format!("the upstream hub ended the answer {} bytes short", self.left);
                    return Some(Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, why)));
                }
                Ok(Some(chunk)) => {
                    if let Some(bytes) = self.take(chunk) {
                        return Some(Ok(bytes));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_revisions_and_paths_per_segment() {
        let client = HubClient::new(HubConfig {
            endpoint: "http://hub:8/".into(),
            token: None,
            offline: false,
            ..HubConfig::default()
        })
        .unwrap();
        let repo = RepoId::parse("acme/m").unwrap();
        assert_eq!(
            client.resolve_url(&repo, "refs/pr/1", "a b/c#d.bin").as_str(),
            "http://hub:8/acme/m/resolve/refs%2Fpr%2F1/a%20b/c%23d.bin"
        );
    }
}
