//! `mm serve`: the app's third face, an HTTP API over the same core facade ([`mm_core::Manager`]) as the window
//! and `mm`. JSON in and out, the core's `{code, message}` errors under statuses a program can branch on, live
//! events as Server-Sent Events, and an OpenAPI 3.1 document generated from the Rust types ([`openapi`]).
//!
//! Safe by default: on loopback no token is needed unless one is given; any other address needs one, and then
//! every request must carry `Authorization: Bearer <token>`. No CORS. Bodies are capped, paths to read on the
//! server are checked, and the hub token is never returned.

mod error;
mod events;
mod extract;
mod machine_only;
mod mirror;
mod model_endpoint;
pub mod openapi;
mod operations;
mod routes;

pub use error::status_of;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use events::EventLog;
use mm_core::listen;
use mm_core::{ErrorCode, Manager};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Request bodies are JSON of a few fields: anything larger is refused (413).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler reaches.
#[derive(Clone)]
pub(crate) struct Served {
    pub manager: Manager,
    pub events: Arc<EventLog>,
    /// The SHA-256 of the token every request must carry, when the server has one.
    token: Option<Arc<[u8; 32]>>,
    /// The SHA-256 of the mirror's own token, which opens the Hub's read protocol and nothing else.
    mirror_token: Option<Arc<[u8; 32]>>,
    /// The Hub protocol is open to anyone on the network (restricted repos excepted: gated, private, unknown).
    open_mirror: bool,
    /// A file or repo the mirror has not got is fetched from the upstream hub.
    pull_through: bool,
    /// Blobs whose pull-through failed: a `Range` resume of one is refused (its client may hold wrong bytes), for
    /// as long as the server runs.
    failed_fills: Arc<FailedFills>,
    /// What the upstream said lately.
    recent: Arc<mirror::Recent>,
    /// See [`Access::cache_limit`].
    cache_limit: Option<u64>,
    /// See [`Access::public_url`].
    public_url: Option<Arc<str>>,
    /// Other machines whose models the endpoint serves.
    pub peers: Arc<model_endpoint::Peers>,
}

/// The blobs whose pull-through failed, newest last, at most [`FailedFills::MAX`] of them.
#[derive(Default)]
pub(crate) struct FailedFills(std::sync::Mutex<std::collections::VecDeque<String>>);

impl FailedFills {
    const MAX: usize = 4096;

    pub(crate) fn add(&self, blob: &str) {
        let mut blobs = self.0.lock().unwrap();
        if !blobs.iter().any(|b| b == blob) {
            if blobs.len() == Self::MAX {
                blobs.pop_front();
            }
            blobs.push_back(blob.to_string());
        }
    }

    pub(crate) fn contains(&self, blob: &str) -> bool {
        self.0.lock().unwrap().iter().any(|b| b == blob)
    }
}

/// Who may ask what of a server.
#[derive(Clone, Default)]
pub struct Access {
    /// Required on every request when set (on the Hub protocol too, unless `open_mirror`).
    pub token: Option<String>,
    /// Opens the Hub protocol only (what a laptop's `HF_TOKEN` holds), never the `/mm/v1` API.
    pub mirror_token: Option<String>,
    /// The Hub protocol needs no token, except for restricted repos (gated, private, or not known to be public).
    pub open_mirror: bool,
    /// What the mirror has not got is fetched from the upstream hub.
    pub pull_through: bool,
    /// The most the cache may take as the mirror fills it: a pull-through past it first removes the least recently
    /// used models nobody uses, on its own (as olah's `--cache-size-limit`).
    pub cache_limit: Option<u64>,
    /// The address clients reach the server by (behind a reverse proxy): the base of the links it sends.
    pub public_url: Option<String>,
    /// Machines whose models the endpoint serves as `NAME/ID` (`--peer NAME=URL`), besides Settings → Machines.
    pub peers: Vec<(String, String)>,
}

/// The API's routes over `manager` (under `/mm/v1`), and the Hub's read protocol (at the Hub's own paths). `stop`
/// ends the event streams.
pub fn router(manager: Manager, access: Access, stop: CancellationToken) -> Router {
    use routes::*;
    let events = EventLog::start(&manager, stop);
    let digest = |t: String| Arc::new(<[u8; 32]>::from(Sha256::digest(t.trim().as_bytes())));
    let token = access.token.map(digest);
    let served = Served {
        manager,
        events,
        token: token.clone(),
        mirror_token: access.mirror_token.map(digest),
        open_mirror: access.open_mirror,
        pull_through: access.pull_through,
        failed_fills: Arc::default(),
        recent: Arc::default(),
        cache_limit: access.cache_limit,
        public_url: access.public_url.map(Arc::from),
        peers: Arc::new(model_endpoint::Peers::new(access.peers)),
    };
    // The Hub's protocol checks its own token policy (an open mirror still guards gated models).
    // A write to one of its paths is refused in the Hub's shape: the mirror is read-only.
    let read_only =
        |method: axum::http::Method, uri: axum::http::Uri| async move { mirror::unserved(&method, uri.path()) };
    let hub = Router::new()
        .route("/api/models", get(mirror::search).fallback(read_only))
        .route("/api/whoami-v2", get(mirror::whoami).fallback(read_only))
        .route("/api/models/{org}/{name}", get(mirror::repo_info).fallback(read_only))
        .route("/api/models/{org}/{name}/refs", get(mirror::refs).fallback(read_only))
        .route("/api/models/{org}/{name}/revision/{revision}", get(mirror::revision_info).fallback(read_only))
        .route("/api/models/{org}/{name}/tree/{revision}", get(mirror::tree_root).fallback(read_only))
        // olah asks for the root with a trailing slash.
        .route("/api/models/{org}/{name}/tree/{revision}/", get(mirror::tree_root).fallback(read_only))
        .route("/api/models/{org}/{name}/tree/{revision}/{*path}", get(mirror::tree).fallback(read_only))
        .route("/api/models/{org}/{name}/paths-info/{revision}", post(mirror::paths_info).fallback(read_only))
        .route("/{org}/{name}/resolve/{revision}/{*path}", get(mirror::resolve).fallback(read_only))
        .with_state(served.clone());
    let api = operations::routes(Router::new())
        .route("/mm/v1/health", get(health))
        .route("/mm/v1/imports", post(import))
        .route("/mm/v1/imports/cancel", post(cancel_imports))
        .route("/mm/v1/settings", get(settings).patch(update_settings))
        .route("/mm/v1/events", get(routes::events))
        .route("/openapi.json", get(|| async { axum::Json(openapi::document()) }))
        .fallback(unrouted)
        .with_state(served.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    // The one model endpoint: larger bodies (prompts, images), the same token.
    let models = model_endpoint::routes(served).layer(DefaultBodyLimit::max(model_endpoint::MAX_BODY_BYTES));
    let api = match &token {
        Some(expected) => {
            let expected = expected.clone();
            api.merge(models).layer(axum::middleware::from_fn(move |request: Request, next: Next| {
                let expected = expected.clone();
                async move { authorize(&expected, request, next).await }
            }))
        }
        None => api.merge(models),
    };
    let all = hub.merge(api);
    match token {
        Some(_) => all,
        // Without a token, only programs of this machine: not a web page (it would send `Origin`), nor a name
        // that a page's domain could be rebound to.
        None => all.layer(axum::middleware::from_fn(local_only)),
    }
}

/// A path no route serves, answered in the shape its clients read: this API's own error under `/mm/`, the model
/// endpoint's wire format under its paths, and the Hub's everywhere else (a Hub client asking for something the
/// mirror does not serve).
async fn unrouted(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if let Some(wire) = model_endpoint::Wire::of(path) {
        return wire.error(StatusCode::NOT_FOUND, format!("{path} is not an endpoint of this server"));
    }
    if !answers_as_hub(path) {
        return routes::not_found(uri).await.into_response();
    }
    mirror::unserved(&method, path)
}

/// A path of the Hub's protocol, whose answer (served or not) is the mirror's, under the mirror's own token
/// policy: under `/api/` only the Hub's own prefixes (the Ollama API shares `/api/`, and a route of its added later
/// stays behind the token), and nothing of this API's or the OpenAI API's.
fn answers_as_hub(path: &str) -> bool {
    let under = |prefix: &str| path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
    if ["/mm", "/v1", "/openapi.json"].into_iter().any(under) {
        return false;
    }
    if path.starts_with("/api/") {
        return ["/api/models", "/api/datasets", "/api/spaces", "/api/repos", "/api/whoami-v2"].into_iter().any(under);
    }
    true
}

/// Refuses requests that a web page could make to a server without a token: any with an `Origin`, any a browser
/// marks as sent for another site (an `<img>` or a link: `Sec-Fetch-Site`, `Sec-Fetch-Mode: no-cors`), and any whose
/// `Host` is not this machine by a loopback name or address (DNS rebinding).
async fn local_only(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if listen::is_loopback_host(headers) && !headers.contains_key(header::ORIGIN) && !listen::from_another_site(headers)
    {
        return next.run(request).await;
    }
    let message = "a server without a token answers only programs of this machine, by a loopback address, not web pages: give `mm serve` a token (--token-file) to serve anything else";
    if let Some(wire) = model_endpoint::Wire::of(request.uri().path()) {
        return wire.error(StatusCode::FORBIDDEN, message);
    }
    (StatusCode::FORBIDDEN, axum::Json(mm_core::ErrorPayload::new(ErrorCode::Permission, message))).into_response()
}

/// Whether a request carries `Authorization: Bearer <token>` with the token whose SHA-256 is `expected`.
/// Compared as digests, every byte of them, so the time taken says nothing about how much of a guess was right.
pub(crate) fn bearer_matches(expected: &[u8; 32], headers: &axum::http::HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| -> [u8; 32] { Sha256::digest(t.trim().as_bytes()).into() });
    given.is_some_and(|given| given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0)
}

/// Lets an API request through only with the server's bearer token.
async fn authorize(expected: &[u8; 32], request: Request, next: Next) -> Response {
    // A Hub path no route serves reaches only the mirror's static "not served" (its token policy is its own).
    if bearer_matches(expected, request.headers()) || answers_as_hub(request.uri().path()) {
        return next.run(request).await;
    }
    let message = match request.headers().get(header::AUTHORIZATION) {
        None => "this server needs `Authorization: Bearer <token>` (the token `mm serve` printed or was given; an OpenAI client sends it as its API key)",
        Some(_) => "the bearer token is not this server's",
    };
    let mut response = match model_endpoint::Wire::of(request.uri().path()) {
        Some(wire) => wire.error(StatusCode::UNAUTHORIZED, message),
        None => {
            (StatusCode::UNAUTHORIZED, axum::Json(mm_core::ErrorPayload::new(ErrorCode::Auth, message))).into_response()
        }
    };
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// How `mm serve` runs.
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Who may ask what; a token is needed for any address but loopback.
    pub access: Access,
    /// The server is the process's only face: when it stops, the manager stops too (downloads paused, journal
    /// kept). The app's local server, one face of several, leaves it running.
    pub owns_manager: bool,
}

/// Serves until `shutdown` resolves (SIGTERM, Ctrl-C): then it stops accepting, ends the event streams, lets
/// requests in flight finish, and pauses the downloads with their journal kept for the next start.
pub async fn serve(
    manager: Manager,
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if !options.listen.ip().is_loopback() && options.access.token.is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is reachable from other machines: serving it needs a token", options.listen),
        ));
    }
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let address = listener.local_addr()?;
    // The library is listed from memory while it is what the disk holds.
    manager.keep_library_current();
    let stop = CancellationToken::new();
    let app = router(manager.clone(), options.access, stop.clone());
    tracing::info!(%address, "serving the API");
    ready(address);
    // Slow clients are cut off and connections capped (`mm_core::listen`), here as on every runtime endpoint.
    let serving = mm_core::listen::serve(
        listener,
        mm_core::listen::Limits::default(),
        stop.clone(),
        hyper_util::service::TowerToHyperService::new(app),
    );
    tokio::pin!(serving);
    let owns = options.owns_manager;
    tokio::select! {
        () = &mut serving => if owns { manager.shutdown().await },
        () = shutdown => {
            tracing::info!("stopping: no new requests, event streams end");
            stop.cancel();
            // Paused first (their journal kept), so that no answer waits on a download; then answers still
            // streaming (a large file to a slow client) get a few seconds to finish before they are cut.
            if owns {
                manager.shutdown().await;
            }
            serving.await;
        }
    }
    Ok(())
}

/// The token kept (0600) at `kept`, made the first time (then `true`): what `mm serve` and the app's local server
/// ask for on loopback when the `serveRequireToken` setting says so.
pub fn kept_token(kept: &std::path::Path) -> std::io::Result<(String, bool)> {
    if let Ok(token) = std::fs::read_to_string(kept) {
        if !token.trim().is_empty() {
            return Ok((token.trim().to_string(), false));
        }
    }
    let token = new_token().map_err(|e| std::io::Error::other(format!("no randomness for a token: {e}")))?;
    if let Some(folder) = kept.parent() {
        mm_core::paths::private_dir(folder)?;
    }
    mm_core::disk::write_atomic(kept, token.as_bytes(), 0o600)?;
    Ok((token, true))
}

/// A new random token: 32 bytes from the system's randomness, as hex.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(mm_core::format::hex(&bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_hubs_paths_answer_as_the_hub() {
        for hub in
            ["/api/models", "/api/models/a/b/refs", "/api/datasets/a/b", "/api/whoami-v2", "/a/b/resolve/main/x", "/"]
        {
            assert!(super::answers_as_hub(hub), "{hub}");
        }
        for ours in
            ["/mm", "/mm/v1/models", "/v1", "/v1/models", "/openapi.json", "/api/tags", "/api/pull", "/api/modelsx"]
        {
            assert!(!super::answers_as_hub(ours), "{ours}");
        }
    }
}
