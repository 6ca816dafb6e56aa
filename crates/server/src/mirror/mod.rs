//! The Hugging Face Hub's own read protocol, served from this machine's cache and library folders, so that
//! `huggingface_hub`, `transformers`, `hf download`, vLLM or another Model Manager on the next machine fetch from it
//! with `HF_ENDPOINT=http://this-machine:8765` and nothing else:
//!
//! - `GET /api/models/{repo}` and `/api/models/{repo}/revision/{rev}`: the repo info (`sha`, `siblings`; with
//!   `?blobs=true` their sizes, blob ids and `lfs.sha256`);
//! - `GET /api/models/{repo}/tree/{rev}[/{path}]`: the tree API, `recursive`, paginated with `Link`;
//! - `GET`/`HEAD /{repo}/resolve/{rev}/{path}`: the file, with `X-Repo-Commit`, `ETag`, `X-Linked-Etag`,
//!   `X-Linked-Size` and `Range`;
//! - `POST /api/models/{repo}/paths-info/{rev}`: the tree entries of the paths asked (form or JSON `paths`), what
//!   olah asks its upstream for every file;
//! - `GET /api/models/{repo}/refs`: branches, tags and pull requests ([`refs`]);
//! - `GET /api/models`: the model search, the upstream's, or this machine's own offline ([`search`]);
//! - `GET /api/whoami-v2`: who the mirror's token says the caller is.
//!
//! Every other path of the Hub's answers in the Hub's error shape (`{"error"}` and `X-Error-Code`), a write with
//! 405: this mirror is read-only.
//!
//! Revisions are branch or tag names (as in the cache's `refs/`), or commits. Errors carry the Hub's
//! `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo`), which clients turn into
//! their own exceptions. A file the server has not got is fetched from the upstream hub first (see [`fill`]).

use crate::Served;
use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use mm_core::cache::{CachedFile, CachedRevision};
use mm_core::library::ModelDetails;
use mm_core::model::LibraryModel;
use serde::Deserialize;
use serde_json::{json, Value};
use sha1::Digest as _;
use std::io::SeekFrom;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

mod fill;
mod refs;
mod search;
pub(crate) use fill::Recent;
pub(crate) use refs::refs;
pub(crate) use search::search;

/// The largest range of a file the mirror has not got that is forwarded from the upstream rather than pulled
/// through: a header's worth.
const FORWARD_AT_MOST: u64 = 16 << 20;
/// The longest revision or path a request may name (longer ones exist on no hub).
const MAX_NAME: usize = 1024;

/// Entries per page of the tree API, as the Hub pages it.
const TREE_PAGE: usize = 1000;

/// An answer in the Hub's error shape.
#[derive(Clone, Debug)]
pub(crate) struct HubError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl HubError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> HubError {
        HubError { status, code, message: message.into() }
    }

    fn repo(repo: &str) -> HubError {
        HubError::new(StatusCode::NOT_FOUND, "RepoNotFound", format!("Repository Not Found for url: {repo}"))
    }
}

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        response.headers_mut().insert("x-error-code", HeaderValue::from_static(self.code));
        if let Ok(message) = HeaderValue::from_str(&self.message) {
            response.headers_mut().insert("x-error-message", message);
        }
        response
    }
}

/// A revision of a repo, with its files: as this machine has it, or as the upstream hub lists it (its files then
/// land in the cache when fetched).
#[derive(Clone)]
pub(crate) struct Listing {
    repo: String,
    commit: String,
    files: Vec<CachedFile>,
    gated: bool,
    private: bool,
    /// Not known to be public (gated, private, or kept here without the hub's word on it): an open mirror still
    /// asks for the token.
    restricted: bool,
    tags: Vec<String>,
    pipeline_tag: Option<String>,
    library_name: Option<String>,
    card: Option<Value>,
    last_modified: Option<u64>,
    /// The snapshot folder of the commit (where the files are, or will be).
    snapshot: std::path::PathBuf,
}

impl Listing {
    /// A revision kept here. Only the files that are links into the repo's own blobs are listed: a snapshot entry
    /// that is a plain file has no hash to serve it by, and a link elsewhere is never a file of the repo.
    fn cached(details: &ModelDetails, revision: &CachedRevision, kept: &Kept) -> Listing {
        let m = &details.model;
        Listing {
            repo: m.id.clone(),
            commit: revision.commit.clone(),
            files: revision.files.iter().filter(|f| f.blob.is_some()).cloned().collect(),
            gated: m.gated,
            private: kept.private,
            restricted: kept.restricted,
            tags: m.tags.clone(),
            pipeline_tag: m.pipeline_tag.clone(),
            library_name: m.library_name.clone(),
            card: details.card.clone(),
            last_modified: revision.last_modified,
            snapshot: std::path::Path::new(&m.path).join("snapshots").join(&revision.commit),
        }
    }

    /// The repo folder's `blobs/`, where every file served from this machine is read.
    fn blobs(&self) -> std::path::PathBuf {
        self.snapshot.parent().and_then(|s| s.parent()).map(|r| r.join("blobs")).unwrap_or_default()
    }
}

/// Whether `revision` (a branch, a tag, `refs/pr/N`, or a commit or its prefix of 7 or more) names `r`.
fn names(r: &CachedRevision, revision: &str) -> bool {
    let as_ref = revision.strip_prefix("refs/heads/").or(revision.strip_prefix("refs/tags/")).unwrap_or(revision);
    let pr = revision.strip_prefix("refs/");
    r.refs.iter().any(|name| name == as_ref || Some(name.as_str()) == pr)
        || r.commit == revision
        || (revision.len() >= 7 && revision.chars().all(|c| c.is_ascii_hexdigit()) && r.commit.starts_with(revision))
}

/// Whether the request carries the server's token or the mirror's own.
pub(crate) fn has_token(s: &Served, headers: &HeaderMap) -> bool {
    [&s.token, &s.mirror_token].into_iter().flatten().any(|expected| crate::bearer_matches(expected, headers))
}

/// Whether what the upstream is asked for this request may carry the owner's hub token: only for a caller holding
/// this server's token or the mirror's (or on a server that needs none, this machine's own programs). A caller of
/// an open mirror without one gets what the hub tells anybody.
fn owners_token_for(s: &Served, headers: &HeaderMap) -> bool {
    s.token.is_none() || has_token(s, headers)
}

/// The absolute URL of `path?query` on this server: under `--public-url` when given, else as the client addressed
/// it (its `Host`; `https` behind a proxy that says so). What a `Link: rel="next"` must be, since `huggingface_hub`
/// follows it as given, with its token.
fn own_url(s: &Served, headers: &HeaderMap, path: &str, query: &str) -> String {
    if let Some(base) = &s.public_url {
        return format!("{base}{path}?{query}");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)));
    let https = headers.get("x-forwarded-proto").and_then(|p| p.to_str().ok()) == Some("https");
    let base = host.map(|h| format!("{}://{h}", if https { "https" } else { "http" })).unwrap_or_default();
    format!("{base}{path}?{query}")
}

/// The caller may read a repo under the server's token policy for the Hub protocol: with a token, only its
/// bearers (the server's token or the mirror's) may, unless the server is an open LAN mirror; then only repos not
/// known to be public (`restricted`) still need it.
/// A caller refused learns nothing of what this machine holds: a closed mirror gives every repo the same 401, held
/// or not; an open one answers a gated repo as the Hub does (the hub says publicly that it is gated), and any other
/// restricted one (private, or with no word from the hub) as a repo that does not exist.
fn allowed(s: &Served, headers: &HeaderMap, restricted: bool, gated: bool, repo: &str) -> Result<(), HubError> {
    if s.token.is_none() || (s.open_mirror && !restricted) || has_token(s, headers) {
        return Ok(());
    }
    if !s.open_mirror {
        return Err(HubError::new(StatusCode::UNAUTHORIZED, "RepoNotFound", NEEDS_TOKEN));
    }
    if gated {
        return Err(HubError::new(StatusCode::UNAUTHORIZED, "GatedRepo", NEEDS_TOKEN));
    }
    Err(HubError::repo(repo))
}

const NEEDS_TOKEN: &str =
    "this mirror needs its token: set HF_TOKEN to the mirror token `mm serve` printed (or its own token)";

/// The caller may use what is not a repo's (the search) under the server's token policy: with a token, only its
/// bearers, unless the server is an open LAN mirror.
fn allowed_beyond_repos(s: &Served, headers: &HeaderMap) -> Result<(), HubError> {
    if s.token.is_none() || s.open_mirror || has_token(s, headers) {
        return Ok(());
    }
    Err(HubError::new(StatusCode::UNAUTHORIZED, "TokenRequired", NEEDS_TOKEN))
}

/// What the hub's word recorded beside a repo kept here says of who may read it.
#[derive(Default)]
struct Kept {
    /// It may be gated or private: gated or private by the hub's word, or with no word from the hub on it (fetched
    /// by another tool, which records nothing, or recorded by a version that did not keep `private`).
    restricted: bool,
    /// The hub said it is gated.
    gated: bool,
    /// The hub said it is private.
    private: bool,
}

/// The hub's word on a repo kept here, its record read once.
fn kept(model: &LibraryModel) -> Kept {
    let record = mm_core::cache::layout::read_hub_info(std::path::Path::new(&model.path));
    let known_public = record.as_ref().is_some_and(|r| !r.gated && r.private == Some(false));
    let gated = model.gated || record.as_ref().is_some_and(|r| r.gated);
    Kept { restricted: gated || !known_public, gated, private: record.and_then(|r| r.private) == Some(true) }
}

/// A repo in the Hugging Face cache layout of this machine (the cache or a library folder), not a local file.
fn in_hub_layout(model: &LibraryModel) -> bool {
    use mm_core::library::ModelSource;
    matches!(model.source, ModelSource::HuggingFace | ModelSource::Folder)
        && std::path::Path::new(&model.path).join("snapshots").is_dir()
}

/// A repo's revision as this machine has it, else as the upstream hub lists it. Once the upstream is asked, a repo
/// kept here takes the upstream's restriction too.
async fn find(s: &Served, headers: &HeaderMap, repo: &str, revision: &str) -> Result<Listing, HubError> {
    if mm_core::hub::parse_repo_reference(repo).is_err() || revision.len() > MAX_NAME {
        return Err(HubError::repo(repo));
    }
    let local = s.manager.model(repo).await.ok().filter(|d| in_hub_layout(&d.model));
    let here = local.as_ref().map(|d| kept(&d.model)).unwrap_or_default();
    allowed(s, headers, here.restricted, here.gated, repo)?;
    if let Some(details) = &local {
        if let Some(r) = details.revisions.iter().find(|r| names(r, revision)) {
            let mut listing = Listing::cached(details, r, &here);
            // A revision kept here in part (a download of some of its files, or one cut short): the files it lacks
            // are the upstream's to list and to pull through, and the upstream's word on the repo applies. An
            // upstream that cannot be asked leaves what is here.
            if s.pull_through && !s.manager.hub_offline() {
                if let Ok(upstream) = fill::listing(s, headers, repo, &r.commit).await {
                    allowed(s, headers, listing.restricted || upstream.restricted, upstream.gated, repo)?;
                    let have: std::collections::HashSet<String> =
                        listing.files.iter().map(|f| f.path.clone()).collect();
                    listing.files.extend(upstream.files.into_iter().filter(|f| !have.contains(&f.path)));
                    listing.files.sort_by(|a, b| a.path.cmp(&b.path));
                }
            }
            return Ok(listing);
        }
    }
    let mut listing = fill::listing(s, headers, repo, revision).await.map_err(|e| match (&local, e.code) {
        // The repo is here, not that revision.
        (Some(_), "RepoNotFound") => {
            HubError::new(StatusCode::NOT_FOUND, "RevisionNotFound", format!("Invalid rev id: {revision}"))
        }
        _ => e,
    })?;
    listing.restricted |= here.restricted;
    // The upstream says the repo is gated or private: the token policy applies here too.
    allowed(s, headers, listing.restricted, here.gated || listing.gated, repo)?;
    Ok(listing)
}

/// A blob named by a sha256 is an LFS file; one named by a git sha1 is a regular one.
fn is_lfs(file: &CachedFile) -> bool {
    file.blob.as_ref().is_some_and(|b| b.len() == 64)
}

/// The git blob id of an LFS file: that of its pointer file.
fn pointer_oid(sha256: &str, size: u64) -> (String, u64) {
    let pointer = format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n");
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", pointer.len()).as_bytes());
    hasher.update(pointer.as_bytes());
    (mm_core::format::hex(&hasher.finalize()), pointer.len() as u64)
}

fn sibling(file: &CachedFile, blobs: bool) -> Value {
    if !blobs {
        return json!({ "rfilename": file.path });
    }
    let blob = file.blob.clone().unwrap_or_default();
    if is_lfs(file) {
        let (oid, pointer_size) = pointer_oid(&blob, file.size);
        json!({ "rfilename": file.path, "size": file.size, "blobId": oid,
                "lfs": { "sha256": blob, "size": file.size, "pointerSize": pointer_size } })
    } else {
        json!({ "rfilename": file.path, "size": file.size, "blobId": blob })
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct InfoQuery {
    #[serde(default)]
    blobs: Option<String>,
    /// The revision, as Dragonfly's `dfget hf://` asks for it (`/api/models/{repo}?revision=…`); the Hub's own
    /// clients use `/revision/{rev}`.
    #[serde(default)]
    revision: Option<String>,
}

fn info(listing: &Listing, blobs: bool) -> Value {
    json!({
        "_id": listing.repo,
        "id": listing.repo,
        "modelId": listing.repo,
        "author": listing.repo.split_once('/').map(|(a, _)| a),
        "sha": listing.commit,
        "lastModified": listing.last_modified.map(iso8601),
        "private": listing.private,
        "disabled": false,
        "gated": if listing.gated { Value::from("auto") } else { Value::Bool(false) },
        "tags": listing.tags,
        "pipeline_tag": listing.pipeline_tag,
        "library_name": listing.library_name,
        "cardData": listing.card,
        "siblings": listing.files.iter().map(|f| sibling(f, blobs)).collect::<Vec<_>>(),
    })
}

/// `2026-12-02T10:00:00.000Z` from Unix seconds.
fn iso8601(unix: u64) -> String {
    mm_core::format::utc(std::time::Duration::from_secs(unix), 3)
}

fn is_blobs(query: &InfoQuery) -> bool {
    query.blobs.as_deref().is_some_and(|b| b == "true" || b == "1")
}

/// The repo id from its path segments: `org/name`, or a legacy one-segment `name`.
fn repo_of(org: &str, name: &str) -> String {
    format!("{org}/{name}")
}

pub(crate) async fn repo_info(
    State(s): State<Served>,
    Path((org, name)): Path<(String, String)>,
    Query(query): Query<InfoQuery>,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    let revision = query.revision.as_deref().filter(|r| !r.is_empty()).unwrap_or("main");
    let listing = find(&s, &headers, &repo_of(&org, &name), revision).await?;
    Ok(axum::Json(info(&listing, is_blobs(&query))).into_response())
}

pub(crate) async fn revision_info(
    State(s): State<Served>,
    Path((org, name, revision)): Path<(String, String, String)>,
    Query(query): Query<InfoQuery>,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    let listing = find(&s, &headers, &repo_of(&org, &name), &revision).await?;
    Ok(axum::Json(info(&listing, is_blobs(&query))).into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct TreeQuery {
    #[serde(default)]
    recursive: Option<String>,
    #[serde(default)]
    cursor: Option<usize>,
}

/// `tree/{rev}` with no path: the root.
pub(crate) async fn tree_root(
    state: State<Served>,
    Path((org, name, revision)): Path<(String, String, String)>,
    query: Query<TreeQuery>,
    raw: RawQuery,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    tree(state, Path((org, name, revision, String::new())), query, raw, headers).await
}

pub(crate) async fn tree(
    State(s): State<Served>,
    Path((org, name, revision, path)): Path<(String, String, String, String)>,
    Query(query): Query<TreeQuery>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    let repo = repo_of(&org, &name);
    let listing = find(&s, &headers, &repo, &revision).await?;
    let recursive = query.recursive.as_deref().is_some_and(|r| r == "true" || r == "1");
    let prefix = path.trim_matches('/');
    let under = |p: &str| -> Option<String> {
        match prefix {
            "" => Some(p.to_string()),
            _ => p.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('/')).map(str::to_string),
        }
    };
    let mut entries: Vec<Value> = Vec::new();
    let mut folders = std::collections::BTreeSet::new();
    for file in &listing.files {
        let Some(rest) = under(&file.path) else { continue };
        // Every folder between the prefix and the file, once; and the file itself when it is listed.
        let parts: Vec<&str> = rest.split('/').collect();
        let depth = if recursive { parts.len() - 1 } else { (parts.len() - 1).min(1) };
        for i in 1..=depth {
            let folder =
                [prefix, &parts[..i].join("/")].iter().filter(|p| !p.is_empty()).copied().collect::<Vec<_>>().join("/");
            folders.insert(folder);
        }
        if recursive || parts.len() == 1 {
            entries.push(file_entry(file));
        }
    }
    if !prefix.is_empty() && entries.is_empty() && folders.is_empty() {
        return Err(HubError::new(
            StatusCode::NOT_FOUND,
            "EntryNotFound",
            format!("{prefix} does not exist on {revision}"),
        ));
    }
    let mut all: Vec<Value> = folders.into_iter().map(|f| folder_entry(&f)).collect();
    all.extend(entries);
    let start = query.cursor.unwrap_or(0).min(all.len());
    let end = (start + TREE_PAGE).min(all.len());
    let mut response = axum::Json(&all[start..end]).into_response();
    if end < all.len() {
        // The same URL with the next cursor.
        let query = with_cursor(raw.as_deref().unwrap_or(""), end);
        let encoded = |s: &str| percent_encode(s);
        let path = format!(
            "/api/models/{}/{}/tree/{}{}",
            encoded(&org),
            encoded(&name),
            encoded(&revision),
            if prefix.is_empty() {
                String::new()
            } else {
                format!("/{}", prefix.split('/').map(encoded).collect::<Vec<_>>().join("/"))
            }
        );
        let next = own_url(&s, &headers, &path, &query);
        if let Ok(link) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

/// A file as the tree API and paths-info list it: its git blob id (that of its LFS pointer, for an LFS file) and
/// the LFS sha256.
fn file_entry(file: &CachedFile) -> Value {
    let mut entry = json!({ "type": "file", "path": file.path, "size": file.size });
    let blob = file.blob.clone().unwrap_or_default();
    if is_lfs(file) {
        let (oid, pointer_size) = pointer_oid(&blob, file.size);
        entry["oid"] = oid.into();
        entry["lfs"] = json!({ "oid": blob, "size": file.size, "pointerSize": pointer_size });
    } else {
        entry["oid"] = blob.into();
    }
    entry
}

fn folder_entry(path: &str) -> Value {
    json!({ "type": "directory", "path": path, "oid": "", "size": 0 })
}

/// The most paths one paths-info request may ask about.
const MAX_PATHS: usize = 10_000;

/// The `paths` (and `expand`) of a paths-info request: a form (`paths=a&paths=b`, as `huggingface_hub` sends
/// it) or JSON (`{"paths": [...]}`).
fn asked_paths(headers: &HeaderMap, body: &[u8]) -> Result<Vec<String>, HubError> {
    let bad = |why: String| HubError::new(StatusCode::BAD_REQUEST, "BadRequest", why);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let paths: Vec<String> = if json {
        #[derive(Deserialize)]
        struct Asked {
            paths: Vec<String>,
        }
        serde_json::from_slice::<Asked>(body)
            .map_err(|e| bad(format!("the body is not {{\"paths\": [...]}}: {e}")))?
            .paths
    } else {
        form_urlencoded::parse(body)
            .filter(|(k, _)| k == "paths" || k == "paths[]")
            .map(|(_, v)| v.into_owned())
            .take(MAX_PATHS + 1)
            .collect()
    };
    if paths.len() > MAX_PATHS {
        return Err(bad(format!("more than {MAX_PATHS} paths asked at once")));
    }
    Ok(paths)
}

/// `POST /api/models/{repo}/paths-info/{rev}`: the entries of the paths asked that exist (files and folders), in
/// the order asked; the others are left out, as the Hub leaves them.
pub(crate) async fn paths_info(
    State(s): State<Served>,
    Path((org, name, revision)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, HubError> {
    // Who may ask first: a caller without the token gets its refusal before its body is read.
    let listing = find(&s, &headers, &repo_of(&org, &name), &revision).await?;
    let asked = asked_paths(&headers, &body)?;
    let files: std::collections::HashMap<&str, &CachedFile> =
        listing.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let folders: std::collections::HashSet<&str> =
        listing.files.iter().flat_map(|f| f.path.match_indices('/').map(|(i, _)| &f.path[..i])).collect();
    let mut seen = std::collections::HashSet::new();
    let entries: Vec<Value> = asked
        .iter()
        .map(|p| p.trim_matches('/'))
        .filter(|p| seen.insert(*p))
        .filter_map(|p| match files.get(p) {
            Some(file) => Some(file_entry(file)),
            None => folders.contains(p).then(|| folder_entry(p)),
        })
        .collect();
    Ok(axum::Json(entries).into_response())
}

/// `GET /api/whoami-v2`: who the token a caller holds makes it on this mirror, in the Hub's shape (`name`,
/// `orgs`, `auth.accessToken.role`). The owner's hub token is never asked about: it is not the caller's.
pub(crate) async fn whoami(State(s): State<Served>, headers: HeaderMap) -> Result<Response, HubError> {
    let holds = |t: &Option<std::sync::Arc<[u8; 32]>>| t.as_ref().is_some_and(|t| crate::bearer_matches(t, &headers));
    let (name, token, role) = if holds(&s.token) {
        ("model-manager", "this server's token (the mirror and the /mm/v1 API)", "write")
    } else if holds(&s.mirror_token) {
        ("model-manager-mirror", "this mirror's token (the Hub's read protocol only)", "read")
    } else if s.token.is_none() {
        ("model-manager-local", "none needed (this machine's own programs)", "write")
    } else {
        // As the Hub answers a token it does not know.
        return Err(HubError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidCredentials",
            "Invalid credentials in Authorization header",
        ));
    };
    Ok(axum::Json(json!({
        "type": "user",
        "id": name,
        "name": name,
        "fullname": "Model Manager mirror",
        "isPro": false,
        "orgs": [],
        "auth": { "type": "access_token", "accessToken": { "displayName": token, "role": role } },
    }))
    .into_response())
}

/// A path of the Hub's that this mirror does not serve, in the Hub's error shape so that clients raise their
/// usual exceptions: a dataset or a Space is a repo it has not got, a write is not allowed (it is read-only), and
/// anything else is not found.
pub(crate) fn unserved(method: &Method, path: &str) -> Response {
    let other_kind = ["/api/datasets/", "/api/spaces/", "/datasets/", "/spaces/"].iter().any(|p| path.starts_with(p));
    if other_kind {
        let message = format!("Repository Not Found for url: {path} (this mirror serves models only)");
        return HubError::new(StatusCode::NOT_FOUND, "RepoNotFound", message).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        let message = format!(
            "this mirror serves the Hub's read API only: {method} {path} is not served here (make changes on the hub itself)"
        );
        let mut response = HubError::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message).into_response();
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    HubError::new(StatusCode::NOT_FOUND, "NotFound", format!("{path} is not served by this mirror")).into_response()
}

/// `raw` (a query string) with its `cursor` set to `cursor`: the query of the next page.
fn with_cursor(raw: &str, cursor: usize) -> String {
    let mut query: Vec<String> =
        raw.split('&').filter(|p| !p.is_empty() && !p.starts_with("cursor=")).map(str::to_owned).collect();
    query.push(format!("cursor={cursor}"));
    query.join("&")
}

/// The key under which what the upstream said is kept: apart for what was said with the owner's token.
fn upstream_key(with_token: bool, key: String) -> String {
    if with_token {
        format!("owner:{key}")
    } else {
        key
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq)]
enum Asked {
    /// `start..end`, end exclusive.
    Part(u64, u64),
    /// Starts past the end: 416.
    Unsatisfiable,
    /// Several ranges, another unit or nonsense: ignored, the whole file is sent (RFC 9110).
    Whole,
}

fn byte_range(value: &str, size: u64) -> Asked {
    let Some(spec) = value.trim().strip_prefix("bytes=").filter(|s| !s.contains(',')) else { return Asked::Whole };
    let Some((first, last)) = spec.split_once('-') else { return Asked::Whole };
    let parsed = match (first.trim(), last.trim()) {
        ("", suffix) => suffix.parse::<u64>().ok().map(|n| (size.saturating_sub(n), size)),
        (a, "") => a.parse().ok().map(|a| (a, size)),
        (a, b) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if b >= a => Some((a, b.saturating_add(1).min(size))),
            _ => None,
        },
    };
    match parsed {
        None => Asked::Whole,
        Some((start, _)) if start >= size => Asked::Unsatisfiable,
        Some((start, end)) => Asked::Part(start, end),
    }
}

pub(crate) async fn resolve(
    State(s): State<Served>,
    Path((org, name, revision, path)): Path<(String, String, String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    let repo = repo_of(&org, &name);
    if path.len() > MAX_NAME {
        return Err(HubError::new(StatusCode::NOT_FOUND, "EntryNotFound", "no file has so long a path"));
    }
    let mut listing = find(&s, &headers, &repo, &revision).await?;
    // Serving it is using it (a repo held here): a storage limit removes what nobody used longest.
    s.manager.mirror_served(&repo, listing.snapshot.is_dir());
    let miss = format!("{repo}@{}/{path}", listing.commit);
    let entry_missing = || {
        HubError::new(StatusCode::NOT_FOUND, "EntryNotFound", format!("{path} does not exist on {revision} of {repo}"))
    };
    if !listing.files.iter().any(|f| f.path == path) && s.recent.miss(&miss).is_some() {
        return Err(entry_missing());
    }
    if !listing.files.iter().any(|f| f.path == path) && s.pull_through {
        // Part of a revision is here, not this file: the upstream's listing of the same commit may have it, under
        // the restriction of both (a gated file is not pulled through for a client without the token).
        match fill::listing(&s, &headers, &repo, &listing.commit).await {
            Ok(mut upstream) => {
                upstream.restricted |= listing.restricted;
                allowed(&s, &headers, upstream.restricted, listing.gated || upstream.gated, &repo)?;
                listing = upstream;
            }
            // The upstream refused or failed: that is the answer, not "no such file".
            Err(e) if e.status != StatusCode::NOT_FOUND => return Err(e),
            Err(_) => {}
        }
    }
    // Only a file the revision lists is opened: the client's path never reaches the file system unchecked.
    let Some(file) = listing.files.iter().find(|f| f.path == path) else {
        let error = entry_missing();
        s.recent.put_miss(miss, &error);
        return Err(error);
    };
    let blob = file.blob.clone().unwrap_or_default();
    let size = file.size;
    let mut response_headers = HeaderMap::new();
    let put = |h: &mut HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    put(&mut response_headers, "x-repo-commit", listing.commit.clone());
    put(&mut response_headers, "etag", format!("\"{blob}\""));
    if is_lfs(file) {
        put(&mut response_headers, "x-linked-etag", format!("\"{blob}\""));
        put(&mut response_headers, "x-linked-size", size.to_string());
    }
    put(&mut response_headers, "accept-ranges", "bytes".into());
    put(&mut response_headers, "content-type", "application/octet-stream".into());
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(|r| byte_range(r, size));
    let (status, start, end) = match asked.unwrap_or(Asked::Whole) {
        Asked::Part(start, end) => {
            put(&mut response_headers, "content-range", format!("bytes {start}-{}/{size}", end - 1));
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        Asked::Unsatisfiable => {
            put(&mut response_headers, "content-range", format!("bytes */{size}"));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response());
        }
        Asked::Whole => (StatusCode::OK, 0, size),
    };
    put(&mut response_headers, "content-length", (end - start).to_string());
    if method == Method::HEAD {
        return Ok((status, response_headers).into_response());
    }
    let blobs = listing.blobs();
    let placed = match open_blob(&blobs, &blob) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(%repo, %path, blobs = %blobs.display(), error = %e, "a blob not opened safely");
            let why = format!("{path} of {repo} is not served: its blob is not a regular file of the repo");
            return Err(HubError::new(StatusCode::NOT_FOUND, "EntryNotFound", why));
        }
    };
    // An earlier answer of this file failed after bytes were sent (its hash, or the upstream): a client resuming
    // it would splice those bytes with good ones, so it starts over instead, even once the good blob is here.
    if start > 0 && s.failed_fills.contains(&blob) {
        return Err(HubError::new(
            StatusCode::CONFLICT,
            "ResumeRefused",
            format!("an earlier answer of {path} of {repo} from this mirror failed, so the bytes a client kept from it may be wrong: download it again from the start"),
        ));
    }
    let Some(placed) = placed else {
        if status == StatusCode::PARTIAL_CONTENT && end - start <= FORWARD_AT_MOST && end - start < size {
            // A part of a file not here (a header read): forwarded from the upstream as asked, not stored. A larger
            // part, or a range that is the whole file (olah asks for its blocks so), is pulled through and stored
            // like a whole file: the mirror is no unmetered proxy.
            return Ok((status, response_headers, fill::forward(&s, &headers, &listing, file, start, end).await?)
                .into_response());
        }
        // Listed upstream, not here yet: fetched once, verified, stored, for every client asking; streamed to
        // this one as it arrives.
        return Ok(
            (status, response_headers, fill::follow(&s, &headers, &listing, file, start, end).await?).into_response()
        );
    };
    let mut opened = tokio::fs::File::from_std(placed);
    opened
        .seek(SeekFrom::Start(start))
        .await
        .map_err(|e| HubError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", format!("{path} of {repo}: {e}")))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(opened.take(end - start), 256 * 1024);
    Ok((status, response_headers, Body::from_stream(stream)).into_response())
}

/// Opens `blobs/{blob}` of a repo without following a link: see [`open_in`]. Only a hash names a blob.
pub(crate) fn open_blob(blobs: &std::path::Path, blob: &str) -> std::io::Result<std::fs::File> {
    let hashed = matches!(blob.len(), 40 | 64) && blob.bytes().all(|b| b.is_ascii_hexdigit());
    if !hashed {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{blob:?} is not a blob name")));
    }
    open_in(blobs, blob)
}

/// Opens the regular file `name` in the folder `dir` without following a link at either step (a folder or a file
/// that is a link planted in a shared cache could point anywhere): the folder with `O_NOFOLLOW | O_DIRECTORY`, the
/// file below it with `openat(O_NOFOLLOW | O_NONBLOCK)`, so a planted FIFO does not block the open either; only a
/// regular file is returned (on which `O_NONBLOCK` changes nothing).
pub(crate) fn open_in(dir: &std::path::Path, name: &str) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::fs::OpenOptionsExt;
    if name.contains('/') {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{name:?} is not a file name")));
    }
    let folder = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)?;
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: a valid folder descriptor and a NUL-terminated name; the descriptor returned is owned by the File.
    let fd = unsafe { libc::openat(folder.as_raw_fd(), name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_as_http_means_them() {
        assert_eq!(byte_range("bytes=0-9", 100), Asked::Part(0, 10));
        assert_eq!(byte_range("bytes=90-", 100), Asked::Part(90, 100));
        assert_eq!(byte_range("bytes=-10", 100), Asked::Part(90, 100));
        assert_eq!(byte_range("bytes=50-500", 100), Asked::Part(50, 100));
        assert_eq!(byte_range("bytes=100-", 100), Asked::Unsatisfiable);
        // Ignored, as RFC 9110 says: the whole file.
        assert_eq!(byte_range("bytes=5-2", 100), Asked::Whole);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Asked::Whole);
        assert_eq!(byte_range("items=0-1", 100), Asked::Whole);
    }

    #[test]
    fn an_lfs_pointer_has_gits_blob_id() {
        // `git lfs pointer --file` of an empty file, then `git hash-object` of the pointer.
        let (oid, size) = pointer_oid("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0);
        assert_eq!((oid.as_str(), size), ("fc8e42b32efb9a9bf3ae0234a18a948e499490f8", 126));
    }

    #[test]
    fn only_a_regular_file_below_a_real_folder_is_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = tmp.path().join("blobs");
        std::fs::create_dir(&blobs).unwrap();
        let (blob, secret) = ("a".repeat(64), tmp.path().join("secret"));
        std::fs::write(&secret, "key").unwrap();
        std::fs::write(blobs.join(&blob), "weights").unwrap();
        assert!(open_blob(&blobs, &blob).is_ok());
        assert!(open_blob(&blobs, "../secret").is_err(), "a name that is not a hash");
        std::os::unix::fs::symlink(&secret, blobs.join("b".repeat(64))).unwrap();
        assert!(open_blob(&blobs, &"b".repeat(64)).is_err(), "a link");
        let fifo = std::ffi::CString::new(blobs.join("c".repeat(64)).to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(open_blob(&blobs, &"c".repeat(64)).is_err(), "a FIFO, refused without blocking");
        let linked = tmp.path().join("linked-blobs");
        std::os::unix::fs::symlink(&blobs, &linked).unwrap();
        assert!(open_blob(&linked, &blob).is_err(), "a folder that is a link");
    }

    #[test]
    fn dates_are_iso_8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_796_170_000), "2026-12-02T00:06:40.000Z"); // `date -u -d @1796170000`
    }
}
