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
pub mod openapi;
mod routes;

pub use error::status_of;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use events::EventLog;
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
    events: Arc<EventLog>,
}

/// The API's routes over `manager`, with `token` (when set) required on every request. `stop` ends the event
/// streams.
pub fn router(manager: Manager, token: Option<String>, stop: CancellationToken) -> Router {
    use routes::*;
    let events = EventLog::start(&manager, stop);
    let served = Served { manager, events };
    let api = Router::new()
        .route("/api/health", get(health))
        .route("/api/models", get(models))
        .route("/api/models/{id}", get(model).delete(delete_model))
        .route("/api/models/{id}/type", put(set_type))
        .route("/api/models/{id}/verify", post(verify))
        .route("/api/downloads", get(downloads).post(start))
        .route("/api/downloads/preview", post(preview))
        .route("/api/downloads/{id}", get(download).delete(cancel))
        .route("/api/downloads/{id}/pause", post(pause))
        .route("/api/downloads/{id}/resume", post(resume))
        .route("/api/active", get(active))
        .route("/api/active/{type}", get(active_of).put(activate).delete(deactivate))
        .route("/api/compat", post(compat))
        .route("/api/fit", get(fit))
        .route("/api/system", get(system))
        .route("/api/storage", get(storage))
        .route("/api/storage/clean", post(clean))
        .route("/api/search", post(search))
        .route("/api/repos/{repo}", get(repo))
        .route("/api/catalog", get(catalog))
        .route("/api/imports", post(import))
        .route("/api/imports/cancel", post(cancel_imports))
        .route("/api/ollama", get(ollama))
        .route("/api/ollama/pull", post(ollama_pull))
        .route("/api/settings", get(settings).patch(update_settings))
        .route(
            "/api/events",
            get(|State(s): State<Served>, headers: axum::http::HeaderMap| async move { s.events.stream(&headers) }),
        )
        .route("/openapi.json", get(|| async { axum::Json(openapi::document()) }))
        .fallback(not_found)
        .with_state(served)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    match token {
        Some(token) => {
            let expected: Arc<[u8; 32]> = Arc::new(Sha256::digest(token.as_bytes()).into());
            api.layer(axum::middleware::from_fn(move |request: Request, next: Next| {
                let expected = expected.clone();
                async move { authorize(&expected, request, next).await }
            }))
        }
        None => api,
    }
}

/// Lets a request through only with `Authorization: Bearer <token>`. Compared as SHA-256 digests, every byte
/// of them, so the time taken says nothing about how much of a guess was right.
async fn authorize(expected: &[u8; 32], request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| -> [u8; 32] { Sha256::digest(t.trim().as_bytes()).into() });
    let matches = given.is_some_and(|given| given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0);
    if matches {
        return next.run(request).await;
    }
    let message = match given {
        None => "this server needs `Authorization: Bearer <token>` (the token `mm serve` printed or was given)",
        Some(_) => "the bearer token is not this server's",
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(mm_core::ErrorPayload { code: ErrorCode::Auth, message: message.into() }),
    )
        .into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// How `mm serve` runs.
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Required on every request when set; needed for any address but loopback.
    pub token: Option<String>,
}

/// Serves until `shutdown` resolves (SIGTERM, Ctrl-C): then it stops accepting, ends the event streams, lets
/// requests in flight finish, and pauses the downloads with their journal kept for the next start.
pub async fn serve(
    manager: Manager,
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if !options.listen.ip().is_loopback() && options.token.is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is reachable from other machines: serving it needs a token", options.listen),
        ));
    }
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let address = listener.local_addr()?;
    let stop = CancellationToken::new();
    let app = router(manager.clone(), options.token, stop.clone());
    tracing::info!(%address, "serving the API");
    ready(address);
    let stopping = stop.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("stopping: no new requests, event streams end, downloads pause");
            stopping.cancel();
        })
        .await?;
    manager.shutdown().await;
    Ok(())
}

/// A new random token: 32 bytes from the system's randomness, as hex.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
