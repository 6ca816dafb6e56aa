//! The API's routes that are not operations of the core's table (those are `operations.rs`): the health check,
//! the live events, this server's settings, and imports of files on its disk, each guarded as only this face needs.

use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::Served;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mm_core::local::{ImportOptions, ImportOutcome};
use mm_core::settings::{SettingsPatch, SettingsView};
use mm_core::{ErrorCode, ErrorPayload};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

type S = State<Served>;

/// The server and its core.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `mm serve`'s version.
    pub version: String,
    /// The Hugging Face cache it serves.
    pub cache_dir: String,
}

#[utoipa::path(get, path = "/mm/v1/health", tag = "server", responses((status = 200, body = Health)))]
pub async fn health(State(s): S) -> Json<Health> {
    Json(Health { version: env!("CARGO_PKG_VERSION").into(), cache_dir: s.manager.cache_dir().display().to_string() })
}

// --- Other sources ---

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportAsk {
    /// Absolute paths of files or folders on the server.
    paths: Vec<String>,
    /// How to import them (default: the settings' copy choice, types guessed).
    #[serde(default)]
    options: Option<ImportOptions>,
}

/// Imports files or folders on the server's disk into its library; one outcome per path.
#[utoipa::path(post, path = "/mm/v1/imports", tag = "sources", request_body = ImportAsk,
    responses((status = 200, body = Vec<ImportOutcome>), (status = 400, body = ErrorPayload), (status = 404, body = ErrorPayload)))]
pub async fn import(State(s): S, Body(ask): Body<ImportAsk>) -> ApiResult<Json<Vec<ImportOutcome>>> {
    if ask.paths.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidInput, "no path to import"));
    }
    let paths = ask.paths.iter().map(|p| mm_core::paths::checked_input_path(p)).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(s.manager.import(paths, ask.options, |_| {}).await))
}

/// Stops the imports running now.
#[utoipa::path(post, path = "/mm/v1/imports/cancel", tag = "sources", responses((status = 204)))]
pub async fn cancel_imports(State(s): S) -> StatusCode {
    s.manager.cancel_imports();
    StatusCode::NO_CONTENT
}

// --- Events ---

/// Live events as Server-Sent Events: `download-progress`, `model-lifecycle`, `runtime-changed`, each with an id
/// `{run}-{n}`. Reconnect with `Last-Event-ID` within 2 minutes to get what was missed; an id that cannot be
/// replayed (too old, another run of the server) gets `reset`, and a client over 1,024 events behind gets
/// `dropped` and is disconnected: either means read the state again.
#[utoipa::path(get, path = "/mm/v1/events", tag = "server",
    params(("Last-Event-ID" = Option<String>, Header, description = "The id of the last event seen")),
    responses((status = 200, description = "A `text/event-stream` that lasts until the server stops",
        content_type = "text/event-stream", body = String)))]
pub async fn events(State(s): S, headers: axum::http::HeaderMap) -> impl axum::response::IntoResponse {
    s.events.stream(&headers)
}

// --- Settings ---

/// The settings; the token is never returned, only a hint of it.
#[utoipa::path(get, path = "/mm/v1/settings", tag = "settings", responses((status = 200, body = SettingsView)))]
pub async fn settings(State(s): S) -> Json<SettingsView> {
    Json(s.manager.settings_view())
}

/// Changes settings (the token can be set, never read back). Those that name a program, a folder or an address
/// (`cacheDir`, `libraryFolders`, `endpoint`, `llamaServer`) and `serveRequireToken` are refused (403): they are
/// changed on the machine only.
#[utoipa::path(patch, path = "/mm/v1/settings", tag = "settings", request_body = SettingsPatch,
    responses((status = 200, body = SettingsView), (status = 400, body = ErrorPayload), (status = 403, body = ErrorPayload)))]
pub async fn update_settings(State(s): S, Body(patch): Body<SettingsPatch>) -> ApiResult<Json<SettingsView>> {
    // What names a program, a folder or an address, and what guards this server, is the machine owner's to change,
    // on the machine: over the API it would run a client's program, send the hub token or the models anywhere.
    let refused = patch.machine_only();
    if !refused.is_empty() {
        let message = format!(
            "{} cannot be changed over the API: change it on the machine itself (`mm config set`, or the window)",
            refused.join(", ")
        );
        return Err(ApiError::new(ErrorCode::Permission, message));
    }
    Ok(Json(s.manager.update_settings(patch)?))
}

/// Anything else.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("{} is not an endpoint of this API (see /openapi.json)", uri.path()))
}
