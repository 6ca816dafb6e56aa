//! Every operation a machine offers, declared once: [`operations!`] holds one row per operation (its name, HTTP
//! method and path, what travels in the path, the query and the body, the progress it reports, its answer and its
//! errors), and each face expands the rows into what it needs:
//!
//! - here, the [`Operations`] trait that [`crate::Manager`] (this machine) and [`crate::remote::Remote`] (another
//!   machine's `mm serve`) implement, and [`OPERATIONS`], the list a test walks;
//! - in `remote.rs`, the `Remote` client, one HTTP call per row;
//! - in `machine.rs`, [`crate::machine::Machine`]'s dispatch to the machine driven;
//! - in `mm serve`, the axum route, handler and OpenAPI entry of each row;
//! - in the window, the one command that runs a row by name.
//!
//! Adding an operation is its row here, its method in `manager/operations.rs`, and its call in the UI.
//!
//! A row, as every expander matches it:
//!
//! ```text
//! /// What it does (the OpenAPI summary and description).
//! name get "/mm/v1/things/{id}" "tag"
//!     path[id: String] query[q: Query] body[b: Body] progress[Progress, "event-name"]
//!     answer[Answer] ok[200] errors[404];
//! ```
//!
//! `query`, `body` and `progress` may be empty; `ok` is the success status (a `202` answer whose `joined` is true
//! is answered `200`, when `200` is listed after it); `errors` lists the statuses besides `400` and `401`, which
//! every operation may answer.

use crate::discover::SearchQuery;
use crate::download::DownloadProgress;
use crate::model::ModelType;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The operation table: calls `$then!` with every row, after `[$extra]` (what the expander wants passed through).
#[macro_export]
macro_rules! operations {
    ($then:path $(, $($extra:tt)*)?) => {
        $then! {
            [$($($extra)*)?]

            // --- The library ---

            /// Every model (the cache, library folders, imports, URL downloads, Ollama), filtered and sorted.
            models get "/mm/v1/models" "models"
                path[] query[query: $crate::library::LibraryQuery] body[] progress[]
                answer[std::sync::Arc<Vec<$crate::model::LibraryModel>>] ok[200] errors[];

            /// One model: revisions, files and hashes, card.
            model get "/mm/v1/models/{id}" "models"
                path[
                    /// The model id, percent-encoded (acme%2Fmodel).
                    id: String
                ] query[] body[] progress[]
                answer[$crate::library::ModelDetails] ok[200] errors[404];

            /// Deletes a model or one revision of it.
            delete delete "/mm/v1/models/{id}" "models"
                path[
                    /// The model id, percent-encoded.
                    id: String
                ] query[options: $crate::operations::DeleteOptions] body[] progress[]
                answer[$crate::library::delete::DeleteReport] ok[200] errors[404, 409];

            /// Remembers the type the user chose for a model.
            set_type put "/mm/v1/models/{id}/type" "models"
                path[
                    /// The model id, percent-encoded.
                    id: String
                ] query[] body[change: $crate::operations::TypeChange] progress[]
                answer[()] ok[204] errors[404];

            /// Pins a model so nothing removes it to make room under the storage limit, or unpins it.
            pin_model put "/mm/v1/models/{id}/pin" "storage"
                path[
                    /// The model id, percent-encoded.
                    id: String
                ] query[] body[ask: $crate::operations::Pin] progress[]
                answer[()] ok[204] errors[404];

            /// Re-hashes a model's files against their hashes; with `repair`, downloads the corrupt or missing ones
            /// again and checks once more. The report is the one after.
            verify post "/mm/v1/models/{id}/verify" "models"
                path[
                    /// The model id, percent-encoded.
                    id: String
                ] query[] body[options: $crate::operations::VerifyOptions]
                progress[$crate::library::verify::VerifyProgress, "verify-progress"]
                answer[$crate::library::verify::VerifyReport] ok[200] errors[404];

            /// Links an adapter to the base it runs on (`base: null`: back to the one it names or fits); a GGUF
            /// adapter must fit the base's architecture and tensor shapes (409 says where it does not).
            link_adapter put "/mm/v1/models/{id}/base" "models"
                path[
                    /// The adapter's id, percent-encoded.
                    id: String
                ] query[] body[link: $crate::operations::AdapterLink] progress[]
                answer[$crate::model::LibraryModel] ok[200] errors[404, 409];

            /// A model's load settings: how it is run (what is unset the app chooses).
            load_settings get "/mm/v1/models/{id}/load-settings" "models"
                path[
                    /// The model id, percent-encoded.
                    id: String
                ] query[] body[] progress[]
                answer[$crate::settings::LoadSettings] ok[200] errors[404];

            /// Sets a model's load settings, all of them (what is left out is unset); answers them as kept. A
            /// loaded model is started again with them on its next request, once its answers are sent. Its
            /// `extraArgs` are changed on the machine only (`mm load-settings`, the window): a change of them here
            /// is refused (403).
            set_load_settings put "/mm/v1/models/{id}/load-settings" "models"
                path[
                    /// The model id, percent-encoded.
                    id: String
                ] query[] body[settings: $crate::settings::LoadSettings] progress[]
                answer[$crate::settings::LoadSettings] ok[200] errors[403, 404];

            // --- Downloads ---

            /// What downloading would fetch: files, sizes, what is cached already, free space.
            preview post "/mm/v1/downloads/preview" "downloads"
                path[] query[] body[request: $crate::download::DownloadRequest] progress[]
                answer[$crate::download::DownloadPreview] ok[200] errors[403, 404, 502];

            /// Starts a download: `202` with the new job; `200` with the job when the same download is already queued
            /// or running. A repo or revision that does not exist is `404`, and one that does not fit on the disk
            /// `507`, before anything is queued.
            start post "/mm/v1/downloads" "downloads"
                path[] query[] body[request: $crate::download::DownloadRequest] progress[]
                answer[$crate::operations::Started] ok[202, 200] errors[403, 404, 502, 507];

            /// The downloads of this machine's lifetime (and those it resumed), Ollama pulls included.
            downloads get "/mm/v1/downloads" "downloads"
                path[] query[] body[] progress[]
                answer[Vec<$crate::download::DownloadProgress>] ok[200] errors[];

            /// One download.
            download get "/mm/v1/downloads/{id}" "downloads"
                path[id: u64] query[] body[] progress[]
                answer[$crate::download::DownloadProgress] ok[200] errors[404];

            /// Pauses a download, keeping its partial files.
            pause post "/mm/v1/downloads/{id}/pause" "downloads"
                path[id: u64] query[] body[] progress[]
                answer[$crate::download::DownloadProgress] ok[200] errors[404, 409];

            /// Puts a paused or failed download back in the queue; it resumes from the bytes on disk.
            resume post "/mm/v1/downloads/{id}/resume" "downloads"
                path[id: u64] query[] body[] progress[]
                answer[$crate::download::DownloadProgress] ok[200] errors[404, 409];

            /// Cancels a download and deletes its partial files.
            cancel delete "/mm/v1/downloads/{id}" "downloads"
                path[id: u64] query[] body[] progress[]
                answer[$crate::download::DownloadProgress] ok[200] errors[404, 409];

            /// Stops every download of a repo on the machine, its own and any `mm download` there, and deletes the
            /// partial files they leave.
            cancel_repo post "/mm/v1/downloads/cancel" "downloads"
                path[] query[] body[ask: $crate::operations::CancelRepo] progress[]
                answer[$crate::operations::RepoCancelled] ok[200] errors[];

            // --- Activation ---

            /// The active model of each type.
            active get "/mm/v1/active" "activation"
                path[] query[] body[] progress[]
                answer[std::collections::BTreeMap<$crate::model::ModelType, $crate::activation::ActiveEntry>]
                ok[200] errors[];

            /// The active model of one type.
            active_of get "/mm/v1/active/{model_type}" "activation"
                path[model_type: $crate::model::ModelType] query[] body[] progress[]
                answer[$crate::activation::ActiveEntry] ok[200] errors[404];

            /// Makes a model the active one of its own type (the type the machine's library gives it: the user's
            /// choice, else the one inferred), or of `modelType`, switching from the one before in one step.
            activate put "/mm/v1/active" "activation"
                path[] query[] body[ask: $crate::operations::Activate] progress[]
                answer[$crate::activation::ActiveEntry] ok[200] errors[404, 409];

            /// Makes a model the active one of a type, switching from the one before in one step.
            activate_as put "/mm/v1/active/{model_type}" "activation"
                path[model_type: $crate::model::ModelType] query[] body[ask: $crate::operations::Activate] progress[]
                answer[$crate::activation::ActiveEntry] ok[200] errors[404, 409];

            /// Clears the active model of a type.
            deactivate delete "/mm/v1/active/{model_type}" "activation"
                path[model_type: $crate::model::ModelType] query[] body[] progress[]
                answer[()] ok[204] errors[404];

            // --- Loading ---

            /// The loaded models: state, endpoint, memory measured beside the estimate, requests.
            loaded get "/mm/v1/runtime" "loading"
                path[] query[] body[] progress[]
                answer[Vec<$crate::runtime::LoadedModel>] ok[200] errors[];

            /// Serves a type's active model (or activates a model and serves it) on a local OpenAI-compatible
            /// endpoint; answered once it is ready. What `mm serve` loads stops when it stops.
            load post "/mm/v1/runtime/load" "loading"
                path[] query[] body[ask: $crate::operations::Load] progress[]
                answer[$crate::runtime::LoadedModel] ok[200] errors[404, 409, 500];

            /// Stops serving a type or model, or everything loaded; answers what was unloaded.
            unload post "/mm/v1/runtime/unload" "loading"
                path[] query[] body[ask: $crate::operations::Unload] progress[]
                answer[Vec<$crate::runtime::LoadedModel>] ok[200] errors[404];

            /// Pins a model (never unloaded for another) or unpins it; kept in the settings the runtime reads.
            pin put "/mm/v1/runtime/pinned/{id}" "loading"
                path[
                    /// The model id, percent-encoded.
                    id: String
                ] query[] body[ask: $crate::operations::Pin] progress[]
                answer[()] ok[204] errors[404];

            // --- Runtimes ---

            /// The llama.cpp builds of the machine (the `llamaServer` setting's, the one on `PATH`, those the app
            /// got), each with its version and backend, and which one loads models.
            runtimes get "/mm/v1/runtimes" "runtimes"
                path[] query[] body[] progress[]
                answer[$crate::operations::Runtimes] ok[200] errors[];

            /// Gets llama.cpp from the release source (the `llamaCppReleases` setting): the archive for this OS, CPU
            /// and GPU, its sha256 checked against the release's digest, unpacked beside earlier builds and tried
            /// (`--version`, a tiny model) before it becomes the default; the default before is kept for a
            /// rollback. Offline or with no matching archive it fails with what to do, and keeps nothing. Over
            /// `mm serve`'s API only the latest release is got (a pinned one is refused, 403).
            get_runtime post "/mm/v1/runtimes" "runtimes"
                path[] query[] body[ask: $crate::operations::GetRuntime]
                progress[$crate::runtime::builds::GetProgress, "runtime-progress"]
                answer[$crate::runtime::builds::RuntimeBuild] ok[200] errors[403, 404, 500, 502];

            /// Makes a build the one that loads models, by its name in the list (`path`: the one on `PATH`);
            /// loaded models keep theirs until they are loaded again. The machine's own choice: refused over
            /// `mm serve`'s API (403).
            use_runtime put "/mm/v1/runtimes/default" "runtimes"
                path[] query[] body[ask: $crate::operations::UseRuntime] progress[]
                answer[$crate::operations::Runtimes] ok[200] errors[403, 404];

            /// Goes back to the build that loaded models before the last change (refused over `mm serve`'s API,
            /// 403).
            rollback_runtime post "/mm/v1/runtimes/rollback" "runtimes"
                path[] query[] body[] progress[]
                answer[$crate::operations::Runtimes] ok[200] errors[403, 404];

            /// Removes a build the app got, freeing its folder; the default is refused (use another first).
            remove_runtime delete "/mm/v1/runtimes/{name}" "runtimes"
                path[
                    /// The build's name (`b6000-cpu`).
                    name: String
                ] query[] body[] progress[]
                answer[$crate::operations::RuntimeRemoved] ok[200] errors[404, 409];

            // --- Compatibility and the machine ---

            /// Will a model run on the machine.
            compat post "/mm/v1/compat" "compat"
                path[] query[] body[ask: $crate::operations::CompatAsk] progress[]
                answer[$crate::compat::CompatReport] ok[200] errors[404, 502];

            /// The fit of every model of the library on the machine.
            fit get "/mm/v1/fit" "compat"
                path[] query[] body[] progress[]
                answer[std::collections::BTreeMap<String, $crate::compat::local::ModelFit>] ok[200] errors[];

            /// The machine: GPUs and VRAM, RAM, CPU, OS, free disk.
            system get "/mm/v1/system" "compat"
                path[] query[] body[] progress[]
                answer[$crate::compat::HardwareInfo] ok[200] errors[];

            // --- Storage ---

            /// Disk use per model, free space, and what can be reclaimed.
            storage get "/mm/v1/storage" "storage"
                path[] query[] body[] progress[]
                answer[$crate::library::storage::StorageReport] ok[200] errors[];

            /// Moves a model to another of the library's folders (the cache, or a library folder on another disk)
            /// and back: every blob copied, hashed and synced before the old copy goes, so a crash leaves one whole
            /// copy; it keeps its id, activation and load settings.
            move_model post "/mm/v1/models/{id}/move" "storage"
                path[
                    /// The model id, percent-encoded.
                    id: String
                ] query[] body[to: $crate::operations::MoveTo] progress[]
                answer[$crate::library::relocate::MoveReport] ok[200] errors[404, 409];

            /// The machine's figures: models by type, status and source, bytes per folder, downloads under way,
            /// what is loaded and the requests each answered, the files the Hub mirror served.
            stats get "/mm/v1/stats" "storage"
                path[] query[] body[] progress[]
                answer[$crate::manager::Statistics] ok[200] errors[];

            /// Deletes orphan blobs, partial downloads untouched for a day that no one is resuming, and revisions no
            /// branch or tag names (of repos where another has one; not an active one, nor one fetched within a
            /// day).
            clean post "/mm/v1/storage/clean" "storage"
                path[] query[] body[] progress[]
                answer[$crate::library::storage::CleanReport] ok[200] errors[];

            // --- Discover ---

            /// One page of the hub's search; a newer search on the same machine cancels this one.
            search post "/mm/v1/search" "discover"
                path[] query[] body[ask: $crate::operations::SearchAsk] progress[]
                answer[$crate::discover::SearchPage] ok[200] errors[409, 502];

            /// A hub repo's files, quantisations and card, without downloading it.
            repo get "/mm/v1/repos/{repo}" "discover"
                path[
                    /// The repo id, percent-encoded (acme%2Fmodel).
                    repo: String
                ] query[at: $crate::operations::Revision] body[] progress[]
                answer[$crate::discover::RepoDetails] ok[200] errors[404, 502];

            /// The starter catalog, marked with what is installed.
            catalog get "/mm/v1/catalog" "discover"
                path[] query[] body[] progress[]
                answer[$crate::discover::StarterCatalog] ok[200] errors[];

            // --- Ollama ---

            /// Whether the machine's Ollama answers.
            ollama get "/mm/v1/ollama" "sources"
                path[] query[] body[] progress[]
                answer[$crate::ollama::OllamaStatus] ok[200] errors[];

            /// Pulls a model into the machine's Ollama; it shows among the downloads.
            ollama_pull post "/mm/v1/ollama/pull" "sources"
                path[] query[] body[pull: $crate::operations::Pull] progress[]
                answer[$crate::operations::Started] ok[202] errors[];
        }
    };
}

/// An operation as its row names it: what the test that walks the OpenAPI document checks against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub name: &'static str,
    /// Lower case, as OpenAPI writes it: `get`, `post`, `put`, `delete`.
    pub method: &'static str,
    pub path: &'static str,
}

macro_rules! declare {
    ([] $(
        $(#[$meta:meta])*
        $name:ident $method:ident $path:literal $tag:literal
        path[$( $(#[$pmeta:meta])* $p:ident: $pt:ty ),*]
        query[$($q:ident: $qt:ty)?]
        body[$($b:ident: $bt:ty)?]
        progress[$($prt:ty, $event:literal)?]
        answer[$answer:ty] ok[$($ok:literal),+] errors[$($err:literal),*];
    )*) => {
        /// The operations of a machine, this one or another: each means the same on both, with the same types and
        /// the same errors. Progress, where an operation reports it, goes to `on_progress` (on this machine; another
        /// machine reports only how it ended).
        pub trait Operations {
            $(
                $(#[$meta])*
                fn $name(
                    &self,
                    $($p: $pt,)*
                    $($q: $qt,)?
                    $($b: $bt,)?
                    $(on_progress: impl FnMut($prt) + Send + 'static,)?
                ) -> impl std::future::Future<Output = Result<$answer, $crate::ErrorPayload>> + Send;
            )*
        }

        /// Every row of the table.
        pub const OPERATIONS: &[Operation] =
            &[$(Operation { name: stringify!($name), method: stringify!($method), path: $path }),*];
    };
}

operations!(declare);

/// Fills a row's path template (`/mm/v1/models/{id}`) with its parameters, each one percent-encoded path segment
/// (model ids hold `/`). `.` and `..` are refused: a URL reads them as steps up the path, encoded or not.
pub fn fill_path(template: &str, params: &[(&str, String)]) -> Result<String, crate::ErrorPayload> {
    let mut path = template.to_string();
    for (name, value) in params {
        if value == "." || value == ".." || value.is_empty() {
            let message = format!("`{value}` is not a {name}: give the whole name, as the machine lists it");
            return Err(crate::ErrorPayload::new(crate::ErrorCode::InvalidInput, message));
        }
        let segment = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string();
        path = path.replace(&format!("{{{name}}}"), &segment);
    }
    Ok(path)
}

// --- What operations take and answer, beside the core's own types ---

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", default)]
#[into_params(parameter_in = Query)]
pub struct DeleteOptions {
    /// Only this revision (a branch, tag or commit); blobs other revisions use are kept.
    pub revision: Option<String>,
    /// Say what would be freed, and delete nothing.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    /// Pinned: never unloaded for another model (until unpinned or unloaded).
    pub pinned: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoveTo {
    /// One of the library's folders: the cache, or a library folder (as the settings name it).
    pub folder: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdapterLink {
    /// The base's id; `null` goes back to the base the adapter names or fits.
    pub base: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeChange {
    /// The type to remember; `null` goes back to the inferred one.
    pub model_type: Option<ModelType>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct VerifyOptions {
    /// The revision to check (default: the main one).
    pub revision: Option<String>,
    /// Download the corrupt or missing files again, and check once more.
    pub repair: bool,
}

/// A download queued, or joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub id: u64,
    /// The same download was already queued or running: this is that one.
    pub joined: bool,
    pub download: DownloadProgress,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelRepo {
    /// `org/name`, or a hub URL of it.
    pub repo: String,
}

/// What cancelling every download of a repo did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoCancelled {
    pub repo: String,
    /// The `mm download` processes stopped.
    pub stopped: Vec<u32>,
    /// The downloads of the machine itself that were cancelled.
    pub cancelled: Vec<u64>,
    /// The partial files deleted.
    pub bytes_freed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activate {
    /// The model id.
    pub id: String,
    /// The revision (default: the main one).
    #[serde(default)]
    pub revision: Option<String>,
    /// The type it serves (default: its own). A type in the path wins over this one.
    #[serde(default)]
    pub model_type: Option<ModelType>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Load {
    /// A model type (its active model; default text-generation) or a model id (activated, then loaded).
    pub target: Option<String>,
    /// The context in tokens (default: the largest that fits the memory free now).
    #[schema(minimum = 1)]
    pub context: Option<u64>,
    /// Never unloaded for another model until it is unloaded.
    #[serde(default)]
    pub pin: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Unload {
    /// A model type or a loaded model's id (default: everything loaded).
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatAsk {
    /// A hub repo (`org/name`), a library id, or an absolute path on the machine.
    pub target: String,
    #[serde(default)]
    pub revision: Option<String>,
    /// The context length to size the KV cache for (default: the model's own, capped).
    #[serde(default)]
    pub context: Option<u64>,
    /// Load settings to size it for, as a form holds them before they are kept (default: the model's own).
    #[serde(default)]
    pub load_settings: Option<crate::settings::LoadSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchAsk {
    pub query: SearchQuery,
    /// The `next` of the previous page.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", default)]
#[into_params(parameter_in = Query)]
pub struct Revision {
    /// A branch, tag or commit (default: main).
    pub revision: Option<String>,
}

/// The llama.cpp builds of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Runtimes {
    pub builds: Vec<crate::runtime::builds::RuntimeBuild>,
    /// The `llama-server` that loads models (none: there is none here).
    pub default: Option<String>,
    /// What a rollback goes back to (`path`: the one on `PATH`).
    pub previous: Option<String>,
    /// Where Get llama.cpp looks.
    pub releases: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct GetRuntime {
    /// A release tag (`b6000`); default the latest.
    pub release: Option<String>,
    /// `cpu`, `cuda`, `vulkan`, `rocm` or `metal`; default chosen from the GPUs, the CPU build as the fallback.
    pub backend: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UseRuntime {
    /// A build's name as the list gives it (`b6000-cpu`, or `path` for the one on `PATH`).
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeRemoved {
    pub name: String,
    pub bytes_freed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct Pull {
    /// The model, e.g. `llama3.2:1b`.
    pub name: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_row_has_its_own_method_and_path_and_its_own_name() {
        let mut seen = std::collections::HashSet::new();
        for op in super::OPERATIONS {
            assert!(seen.insert((op.method, op.path)), "two rows for {} {}", op.method, op.path);
            assert!(op.path.starts_with("/mm/v1/"), "{op:?}");
        }
        let names: std::collections::HashSet<_> = super::OPERATIONS.iter().map(|o| o.name).collect();
        assert_eq!(names.len(), super::OPERATIONS.len());
    }

    #[test]
    fn path_parameters_travel_as_one_segment() {
        let path = super::fill_path("/mm/v1/models/{id}/type", &[("id", "acme/m v2".into())]);
        assert_eq!(path.unwrap(), "/mm/v1/models/acme%2Fm%20v2/type");
        for climbing in [".", "..", ""] {
            let err = super::fill_path("/mm/v1/models/{id}/verify", &[("id", climbing.into())]).unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::InvalidInput);
        }
    }
}
