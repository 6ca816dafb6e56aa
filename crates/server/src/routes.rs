//! The API's operations, one handler each, every one a call of the core's facade: what the window and `mm` do,
//! over HTTP. Model and repo ids contain `/`: they travel as one percent-encoded path segment (`acme%2Fmodel`).

use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};
use crate::Served;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mm_core::activation::ActiveEntry;
use mm_core::compat::local::ModelFit;
use mm_core::compat::{CompatReport, HardwareInfo};
use mm_core::discover::{RepoDetails, SearchPage, SearchQuery, StarterCatalog};
use mm_core::download::{DownloadPreview, DownloadProgress, DownloadRequest};
use mm_core::library::delete::DeleteReport;
use mm_core::library::storage::{CleanReport, StorageReport};
use mm_core::library::verify::VerifyReport;
use mm_core::library::{LibraryModel, LibraryQuery, ModelDetails};
use mm_core::local::{ImportOptions, ImportOutcome};
use mm_core::model::ModelType;
use mm_core::ollama::OllamaStatus;
use mm_core::runtime::LoadedModel;
use mm_core::settings::{SettingsPatch, SettingsView};
use mm_core::{ErrorCode, ErrorPayload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

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

// --- Models ---

/// Every model (the cache, library folders, imports, URL downloads, Ollama), filtered and sorted.
#[utoipa::path(get, path = "/mm/v1/models", tag = "models", params(LibraryQuery),
    responses((status = 200, body = Vec<LibraryModel>), (status = 400, body = ErrorPayload)))]
pub async fn models(State(s): S, Query(query): Query<LibraryQuery>) -> ApiResult<Json<Vec<LibraryModel>>> {
    Ok(Json(s.manager.models(query).await?))
}

/// One model: revisions, files and hashes, card.
#[utoipa::path(get, path = "/mm/v1/models/{id}", tag = "models",
    params(("id" = String, Path, description = "The model id, percent-encoded (acme%2Fmodel)")),
    responses((status = 200, body = ModelDetails), (status = 404, body = ErrorPayload)))]
pub async fn model(State(s): S, Path(id): Path<String>) -> ApiResult<Json<ModelDetails>> {
    Ok(Json(s.manager.model(&id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Only this revision (a branch, tag or commit); blobs other revisions use are kept.
    revision: Option<String>,
    /// Say what would be freed, and delete nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Deletes a model or one revision of it.
#[utoipa::path(delete, path = "/mm/v1/models/{id}", tag = "models",
    params(("id" = String, Path, description = "The model id, percent-encoded"), DeleteParams),
    responses((status = 200, body = DeleteReport), (status = 400, body = ErrorPayload), (status = 404, body = ErrorPayload),
        (status = 409, body = ErrorPayload)))]
pub async fn delete_model(
    State(s): S,
    Path(id): Path<String>,
    Query(params): Query<DeleteParams>,
) -> ApiResult<Json<DeleteReport>> {
    Ok(Json(s.manager.delete(&id, params.revision.as_deref(), params.dry_run).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeChange {
    /// The type to remember; `null` goes back to the inferred one.
    model_type: Option<ModelType>,
}

/// Remembers the type the user chose for a model.
#[utoipa::path(put, path = "/mm/v1/models/{id}/type", tag = "models", request_body = TypeChange,
    params(("id" = String, Path, description = "The model id, percent-encoded")),
    responses((status = 204), (status = 400, body = ErrorPayload)))]
pub async fn set_type(State(s): S, Path(id): Path<String>, Body(change): Body<TypeChange>) -> ApiResult<StatusCode> {
    s.manager.set_type(&id, change.model_type.map(ModelType::as_str))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct VerifyAsk {
    /// The revision to check (default: the main one).
    revision: Option<String>,
    /// Download the corrupt or missing files again, and check once more.
    repair: bool,
}

/// Re-hashes a model's files against their hashes.
#[utoipa::path(post, path = "/mm/v1/models/{id}/verify", tag = "models", request_body = VerifyAsk,
    params(("id" = String, Path, description = "The model id, percent-encoded")),
    responses((status = 200, body = VerifyReport), (status = 404, body = ErrorPayload)))]
pub async fn verify(State(s): S, Path(id): Path<String>, Body(ask): Body<VerifyAsk>) -> ApiResult<Json<VerifyReport>> {
    Ok(Json(s.manager.verify_and_repair(&id, ask.revision.as_deref(), ask.repair, |_| {}).await?))
}

// --- Downloads ---

/// A download queued, or joined.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub id: u64,
    /// The same download was already queued or running: this is that one.
    pub joined: bool,
    pub download: DownloadProgress,
}

/// What downloading would fetch: files, sizes, what is cached already, free space.
#[utoipa::path(post, path = "/mm/v1/downloads/preview", tag = "downloads", request_body = DownloadRequest,
    responses((status = 200, body = DownloadPreview), (status = 400, body = ErrorPayload),
        (status = 403, body = ErrorPayload), (status = 404, body = ErrorPayload), (status = 502, body = ErrorPayload)))]
pub async fn preview(State(s): S, Body(request): Body<DownloadRequest>) -> ApiResult<Json<DownloadPreview>> {
    Ok(Json(s.manager.preview(request).await?))
}

/// Starts a download: `202` with the new job; `200` with the job when the same download is already queued or
/// running. A repo or revision that does not exist is `404`, and one that does not fit on the disk `507`, before
/// anything is queued.
#[utoipa::path(post, path = "/mm/v1/downloads", tag = "downloads", request_body = DownloadRequest,
    responses((status = 202, body = Started), (status = 200, body = Started), (status = 400, body = ErrorPayload),
        (status = 403, body = ErrorPayload), (status = 404, body = ErrorPayload), (status = 502, body = ErrorPayload),
        (status = 507, body = ErrorPayload)))]
pub async fn start(State(s): S, Body(request): Body<DownloadRequest>) -> ApiResult<(StatusCode, Json<Started>)> {
    let (id, joined) = s.manager.queue(request).await?;
    let download = s.manager.download(id)?;
    let status = if joined { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(Started { id, joined, download })))
}

/// The downloads of this server's lifetime (and those it resumed), Ollama pulls included.
#[utoipa::path(get, path = "/mm/v1/downloads", tag = "downloads", responses((status = 200, body = Vec<DownloadProgress>)))]
pub async fn downloads(State(s): S) -> Json<Vec<DownloadProgress>> {
    Json(s.manager.downloads())
}

#[utoipa::path(get, path = "/mm/v1/downloads/{id}", tag = "downloads", params(("id" = u64, Path)),
    responses((status = 200, body = DownloadProgress), (status = 404, body = ErrorPayload)))]
pub async fn download(State(s): S, Path(id): Path<u64>) -> ApiResult<Json<DownloadProgress>> {
    Ok(Json(s.manager.download(id)?))
}

/// Pauses a download, keeping its partial files.
#[utoipa::path(post, path = "/mm/v1/downloads/{id}/pause", tag = "downloads", params(("id" = u64, Path)),
    responses((status = 200, body = DownloadProgress), (status = 400, body = ErrorPayload), (status = 404, body = ErrorPayload),
        (status = 409, body = ErrorPayload)))]
pub async fn pause(State(s): S, Path(id): Path<u64>) -> ApiResult<Json<DownloadProgress>> {
    s.manager.pause(id)?;
    Ok(Json(s.manager.download(id)?))
}

/// Puts a paused or failed download back in the queue; it resumes from the bytes on disk.
#[utoipa::path(post, path = "/mm/v1/downloads/{id}/resume", tag = "downloads", params(("id" = u64, Path)),
    responses((status = 200, body = DownloadProgress), (status = 404, body = ErrorPayload), (status = 409, body = ErrorPayload)))]
pub async fn resume(State(s): S, Path(id): Path<u64>) -> ApiResult<Json<DownloadProgress>> {
    s.manager.resume(id)?;
    Ok(Json(s.manager.download(id)?))
}

/// Cancels a download and deletes its partial files.
#[utoipa::path(delete, path = "/mm/v1/downloads/{id}", tag = "downloads", params(("id" = u64, Path)),
    responses((status = 200, body = DownloadProgress), (status = 404, body = ErrorPayload), (status = 409, body = ErrorPayload)))]
pub async fn cancel(State(s): S, Path(id): Path<u64>) -> ApiResult<Json<DownloadProgress>> {
    s.manager.cancel(id)?;
    Ok(Json(s.manager.download(id)?))
}

// --- Activation ---

/// The active model of each type.
#[utoipa::path(get, path = "/mm/v1/active", tag = "activation",
    responses((status = 200, body = BTreeMap<String, ActiveEntry>)))]
pub async fn active(State(s): S) -> Json<BTreeMap<ModelType, ActiveEntry>> {
    Json(s.manager.active())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activate {
    /// The model id.
    id: String,
    /// The revision (default: the main one).
    #[serde(default)]
    revision: Option<String>,
}

fn model_type(name: &str) -> ApiResult<ModelType> {
    name.parse::<ModelType>().map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))
}

/// The active model of one type.
#[utoipa::path(get, path = "/mm/v1/active/{type}", tag = "activation", params(("type" = ModelType, Path)),
    responses((status = 200, body = ActiveEntry), (status = 404, body = ErrorPayload)))]
pub async fn active_of(State(s): S, Path(kind): Path<String>) -> ApiResult<Json<ActiveEntry>> {
    let kind = model_type(&kind)?;
    s.manager.active().remove(&kind).map(Json).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no {kind} model is active: activate one with PUT /mm/v1/active/{kind}"),
        )
    })
}

/// Makes a model the active one of a type, switching from the one before in one step.
#[utoipa::path(put, path = "/mm/v1/active/{type}", tag = "activation", request_body = Activate,
    params(("type" = ModelType, Path)),
    responses((status = 200, body = ActiveEntry), (status = 400, body = ErrorPayload), (status = 404, body = ErrorPayload)))]
pub async fn activate(
    State(s): S,
    Path(kind): Path<String>,
    Body(ask): Body<Activate>,
) -> ApiResult<Json<ActiveEntry>> {
    let kind = model_type(&kind)?;
    Ok(Json(s.manager.activate(&ask.id, Some(kind.as_str()), ask.revision.as_deref()).await?.0))
}

/// Makes a model the active one of its own type: the type this server's library gives it (the user's choice, else
/// the one inferred), resolved here rather than by the client.
#[utoipa::path(put, path = "/mm/v1/active", tag = "activation", request_body = Activate,
    responses((status = 200, body = ActiveEntry), (status = 400, body = ErrorPayload), (status = 404, body = ErrorPayload)))]
pub async fn activate_own(State(s): S, Body(ask): Body<Activate>) -> ApiResult<Json<ActiveEntry>> {
    Ok(Json(s.manager.activate(&ask.id, None, ask.revision.as_deref()).await?.0))
}

/// Clears the active model of a type.
#[utoipa::path(delete, path = "/mm/v1/active/{type}", tag = "activation", params(("type" = ModelType, Path)),
    responses((status = 204), (status = 400, body = ErrorPayload), (status = 404, body = ErrorPayload)))]
pub async fn deactivate(State(s): S, Path(kind): Path<String>) -> ApiResult<StatusCode> {
    s.manager.deactivate(model_type(&kind)?.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- Loading ---

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Load {
    /// A model type (its active model; default text-generation) or a model id (activated, then loaded).
    #[serde(default)]
    target: Option<String>,
    /// The context in tokens (default: the largest that fits the memory free now).
    #[serde(default)]
    #[schema(minimum = 1)]
    context: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unload {
    /// A model type or a loaded model's id (default: everything loaded).
    #[serde(default)]
    target: Option<String>,
}

/// The loaded models: state, endpoint, memory measured beside the estimate, requests.
#[utoipa::path(get, path = "/mm/v1/runtime", tag = "loading",
    responses((status = 200, body = Vec<LoadedModel>)))]
pub async fn loaded(State(s): S) -> Json<Vec<LoadedModel>> {
    Json(s.manager.loaded().await)
}

/// Serves a type's active model (or activates a model and serves it) on a local OpenAI-compatible endpoint;
/// answered once it is ready. What `mm serve` loads stops when it stops.
#[utoipa::path(post, path = "/mm/v1/runtime/load", tag = "loading", request_body = Load,
    responses((status = 200, body = LoadedModel), (status = 404, body = ErrorPayload), (status = 400, body = ErrorPayload)))]
pub async fn load(State(s): S, Body(ask): Body<Load>) -> ApiResult<Json<LoadedModel>> {
    Ok(Json(s.manager.load(ask.target.as_deref(), ask.context).await?))
}

/// Stops serving a type or model, or everything loaded; answers what was unloaded.
#[utoipa::path(post, path = "/mm/v1/runtime/unload", tag = "loading", request_body = Unload,
    responses((status = 200, body = Vec<LoadedModel>), (status = 404, body = ErrorPayload)))]
pub async fn unload(State(s): S, Body(ask): Body<Unload>) -> ApiResult<Json<Vec<LoadedModel>>> {
    Ok(Json(s.manager.unload(ask.target.as_deref()).await?))
}

// --- Compatibility and the machine ---

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatAsk {
    /// A hub repo (`org/name`), a library id, or an absolute path on the server.
    target: String,
    #[serde(default)]
    revision: Option<String>,
    /// The context length to size the KV cache for (default: the model's own, capped).
    #[serde(default)]
    context: Option<u64>,
}

/// Will a model run on the server's machine.
#[utoipa::path(post, path = "/mm/v1/compat", tag = "compat", request_body = CompatAsk,
    responses((status = 200, body = CompatReport), (status = 400, body = ErrorPayload), (status = 404, body = ErrorPayload),
        (status = 502, body = ErrorPayload)))]
pub async fn compat(State(s): S, Body(ask): Body<CompatAsk>) -> ApiResult<Json<CompatReport>> {
    Ok(Json(s.manager.compat(&ask.target, ask.revision.as_deref(), ask.context).await?))
}

/// The fit of every model of the library on the server's machine.
#[utoipa::path(get, path = "/mm/v1/fit", tag = "compat", responses((status = 200, body = BTreeMap<String, ModelFit>)))]
pub async fn fit(State(s): S) -> ApiResult<Json<BTreeMap<String, ModelFit>>> {
    Ok(Json(s.manager.fit().await?))
}

/// The server's machine: GPUs and VRAM, RAM, CPU, OS, free disk.
#[utoipa::path(get, path = "/mm/v1/system", tag = "compat", responses((status = 200, body = HardwareInfo)))]
pub async fn system(State(s): S) -> ApiResult<Json<HardwareInfo>> {
    Ok(Json(s.manager.system().await?))
}

// --- Storage ---

/// Disk use per model, free space, and what can be reclaimed.
#[utoipa::path(get, path = "/mm/v1/storage", tag = "storage", responses((status = 200, body = StorageReport)))]
pub async fn storage(State(s): S) -> ApiResult<Json<StorageReport>> {
    Ok(Json(s.manager.storage().await?))
}

/// Deletes orphan blobs and partial downloads no one is resuming.
#[utoipa::path(post, path = "/mm/v1/storage/clean", tag = "storage", responses((status = 200, body = CleanReport)))]
pub async fn clean(State(s): S) -> ApiResult<Json<CleanReport>> {
    Ok(Json(s.manager.clean().await?))
}

// --- Discover ---

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchAsk {
    query: SearchQuery,
    /// The `next` of the previous page.
    next: Option<String>,
}

/// One page of the hub's search.
#[utoipa::path(post, path = "/mm/v1/search", tag = "discover", request_body = SearchAsk,
    responses((status = 200, body = SearchPage), (status = 400, body = ErrorPayload), (status = 502, body = ErrorPayload)))]
pub async fn search(State(s): S, Body(ask): Body<SearchAsk>) -> ApiResult<Json<SearchPage>> {
    Ok(Json(s.manager.search(&ask.query, ask.next.as_deref()).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevisionParam {
    /// A branch, tag or commit (default: main).
    revision: Option<String>,
}

/// A hub repo's files, quantisations and card, without downloading it.
#[utoipa::path(get, path = "/mm/v1/repos/{repo}", tag = "discover",
    params(("repo" = String, Path, description = "The repo id, percent-encoded (acme%2Fmodel)"), RevisionParam),
    responses((status = 200, body = RepoDetails), (status = 400, body = ErrorPayload), (status = 404, body = ErrorPayload),
        (status = 502, body = ErrorPayload)))]
pub async fn repo(
    State(s): S,
    Path(repo): Path<String>,
    Query(params): Query<RevisionParam>,
) -> ApiResult<Json<RepoDetails>> {
    Ok(Json(s.manager.repo_details(&repo, params.revision.as_deref()).await?))
}

/// The starter catalog, marked with what is installed.
#[utoipa::path(get, path = "/mm/v1/catalog", tag = "discover", responses((status = 200, body = StarterCatalog)))]
pub async fn catalog(State(s): S) -> ApiResult<Json<StarterCatalog>> {
    Ok(Json(s.manager.catalog().await?))
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

/// Whether the server's Ollama answers.
#[utoipa::path(get, path = "/mm/v1/ollama", tag = "sources", responses((status = 200, body = OllamaStatus)))]
pub async fn ollama(State(s): S) -> Json<OllamaStatus> {
    Json(s.manager.ollama_status().await)
}

#[derive(Deserialize, ToSchema)]
pub struct Pull {
    /// The model, e.g. `llama3.2:1b`.
    name: String,
}

/// Pulls a model into the server's Ollama; it shows among the downloads.
#[utoipa::path(post, path = "/mm/v1/ollama/pull", tag = "sources", request_body = Pull,
    responses((status = 202, body = Started), (status = 400, body = ErrorPayload)))]
pub async fn ollama_pull(State(s): S, Body(pull): Body<Pull>) -> ApiResult<(StatusCode, Json<Started>)> {
    let id = s.manager.ollama_pull(&pull.name)?;
    let download = s.manager.download(id)?;
    Ok((StatusCode::ACCEPTED, Json(Started { id, joined: false, download })))
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
