//! Loading: models served by local runtimes, by name and on demand, within the memory this app measures.
//!
//! One **runtime host** per data folder owns every loaded model: a small process of this app's own program
//! (started by whichever face loads first, and ending when nothing is loaded) that the window, `mm` and
//! `mm serve` all talk to over a Unix socket (`{data}/runtime/host.sock`, one JSON line a request). So the app and
//! `mm` see and control the same loaded set, and `mm load` returns while the model keeps running, as `lms load`
//! does. Inside it:
//!
//! - a [`process`] per model: `llama-server` on a port of its own for a GGUF model, started with the context and
//!   GPU layers of [`plan`], or the Ollama server told to keep the model in memory (`keep_alive`); its state
//!   machine, and the leases of the requests it answers;
//! - a [`router`] from model id to process, which every request for a model joins;
//! - a [`scheduler`] that decides from memory which idle models make room for one more;
//! - each type's own endpoint ([`alias`]): a port of this machine (the same for that type across loads, kept in
//!   `{data}/runtime/ports.json`, its `http://127.0.0.1:PORT/v1` written into `active.json`) whose requests go to
//!   the model the type serves now.
//!
//! **Hot-swap.** Switching the active model of a loaded type loads the new model beside the old, then points the
//! type's endpoint at it; the old one stops once its last request is answered. A load that fails leaves the old
//! model serving, and says why.
//!
//! **Health.** The host polls each runtime (`/health` and its process, or Ollama's `/api/ps`): loading, ready,
//! unhealthy, draining, stopped. A runtime that dies is restarted with backoff, up to the `restartAttempts`
//! setting; idle models unload after `idleUnloadSeconds` or their request's `keep_alive`. It measures what each
//! runtime really takes ([`crate::compat::measured`]) and keeps it beside the estimate.

mod alias;
pub mod builds;
pub mod client;
pub mod host;
pub mod plan;
mod process;
mod router;
pub mod scheduler;
pub mod upstream;

pub use crate::compat::measured::{Measurement, MemoryUse};
pub use client::RuntimeClient;
pub use plan::LaunchPlan;

use crate::model::ModelType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use ts_rs::TS;

/// What serves a loaded model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    LlamaServer,
    Ollama,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeState {
    /// Started, not answering yet (or waiting for room).
    Loading,
    Ready,
    /// Its process is alive but it stopped answering, or it died and is being restarted.
    Unhealthy,
    /// Being unloaded: it takes no new request and stops once its last answer is sent.
    Draining,
    /// It died and will not be restarted (the attempts are spent), or its load failed.
    Stopped,
}

/// A model the host can serve: what it is and the file it runs from. Faces resolve a name to one from the
/// library, so that the host runs only what the library lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The id it is known by (`org/name`, `org/name:Q4_K_M`, `local/...`, `ollama/...`).
    pub id: String,
    /// The library's model it is (`org/name` for `org/name:Q4_K_M`): whose load settings it runs with.
    pub model: String,
    pub model_type: ModelType,
    /// The weight file (the first part of a split GGUF); for Ollama, the blob it reported.
    pub file: Option<String>,
    pub format: crate::model::ModelFormat,
    /// What runs it: said by where the library found it, never guessed from its id.
    pub runtime: RuntimeKind,
    /// The GGUF LoRA adapters linked to it (id, file), loaded with it unapplied (each request says their scales).
    #[serde(default)]
    pub adapters: Vec<(String, String)>,
    /// The adapter a request named (`BASE+ADAPTER`): applied for it alone.
    #[serde(default)]
    pub adapter: Option<String>,
}

impl Target {
    /// Whether a runtime started for this target serves `asked` too: the same file and role (the flags of
    /// [`plan::llama_server_args`]), and every adapter `asked` may apply loaded. A loaded model asked for otherwise
    /// is started again.
    fn serves(&self, asked: &Target) -> bool {
        (self.file.as_deref(), plan::role(self.model_type)) == (asked.file.as_deref(), plan::role(asked.model_type))
            && asked.adapters.iter().all(|a| self.adapters.contains(a))
    }
}

impl From<&crate::activation::ActiveEntry> for Target {
    fn from(entry: &crate::activation::ActiveEntry) -> Target {
        Target {
            id: entry.id.clone(),
            model: entry.id.clone(),
            model_type: entry.model_type,
            file: entry.primary_file.clone(),
            format: entry.format,
            // Activation keeps an Ollama model's mark under its prefix (`Activation::activate_any`).
            runtime: if entry.id.starts_with(crate::ollama::OLLAMA_PREFIX) {
                RuntimeKind::Ollama
            } else {
                RuntimeKind::LlamaServer
            },
            adapters: Vec::new(),
            adapter: None,
        }
    }
}

/// One loaded model, as `mm ps` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadedModel {
    pub model_type: ModelType,
    pub id: String,
    pub runtime: RuntimeKind,
    pub state: RuntimeState,
    /// The type's own endpoint, when this model is the one it serves: `http://127.0.0.1:PORT/v1` (every model is
    /// served by name on `mm serve`'s `/v1` too).
    pub endpoint: Option<String>,
    /// The runtime's process (llama-server).
    pub pid: Option<u32>,
    /// The command line it was started with.
    pub command: Option<String>,
    /// The context and GPU layers it runs with, and the estimate for them.
    pub plan: Option<LaunchPlan>,
    pub estimate_bytes: u64,
    /// The most it was seen to take (the peak since it was loaded).
    pub measured: Option<MemoryUse>,
    /// What the scheduler counts it as taking: the estimate, or once measured, its peak and a margin.
    pub need_bytes: u64,
    /// Requests answered.
    pub requests: u64,
    /// Requests being answered now: a busy model is never unloaded for another.
    pub busy: u32,
    /// Never unloaded for another model (the `pinned` list of the settings; `mm load --pin`).
    pub pinned: bool,
    /// When it unloads if no request comes (unix seconds; none: it stays).
    pub expires_at: Option<u64>,
    pub restarts: u32,
    /// Unix seconds.
    pub loaded_at: u64,
    pub last_used: u64,
    /// Who loaded it: "app" (stopped when the app quits), "mm", "serve".
    pub owner: String,
    /// Why it is unhealthy or stopped.
    pub error: Option<String>,
}

/// A change to the loaded set: a model's state now, or none when it was unloaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeChange {
    pub id: String,
    pub loaded: Option<LoadedModel>,
}

/// Loading a type with no active model: said by the face before it starts a host, and by the host.
pub fn nothing_active(model_type: ModelType) -> crate::ErrorPayload {
    crate::ErrorPayload::new(
        crate::ErrorCode::NotFound,
        format!("no {model_type} model is active: activate one first (mm activate MODEL)"),
    )
}

/// Where the host keeps its socket, ports, measurements and runtime logs.
pub fn runtime_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("runtime")
}

fn socket_path(data_dir: &Path) -> PathBuf {
    runtime_dir(data_dir).join("host.sock")
}

/// A request to the host (one JSON line).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum HostRequest {
    /// Load the active model of a type on the type's endpoint (swap when another is loaded); answered once it is
    /// ready. `owner_pid`: the app or `mm serve` that asked; its models are unloaded when it ends, however it ends.
    Load {
        model_type: ModelType,
        context: Option<u64>,
        owner: String,
        owner_pid: Option<u32>,
    },
    /// Hold a model for one request, loading it when it is not: answered `Acquired` once it is ready, and held
    /// until this connection closes (the answer was sent, or its client went away).
    Acquire {
        target: Target,
        /// Ollama's `keep_alive` in seconds, applied when the hold ends.
        keep_alive: Option<i64>,
        owner: String,
        owner_pid: Option<u32>,
    },
    /// The request a hold was for is answered: the model is let go, and the connection serves the next request.
    Release,
    /// Unload one model (by id), one type (its endpoint closed), or everything (of one owner, when named).
    Unload {
        model_type: Option<ModelType>,
        id: Option<String>,
        owner: Option<String>,
    },
    Status,
    /// The active models changed: swap or unload the loaded types whose active model is no longer the loaded one.
    Sync,
    /// Every change, one line each, until the connection closes.
    Watch,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum HostReply {
    Loaded(Box<LoadedModel>),
    Acquired(Box<Acquired>),
    Unloaded(Vec<LoadedModel>),
    Status(Vec<LoadedModel>),
    Synced,
}

/// A model held for one request: where its runtime answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acquired {
    /// `http://127.0.0.1:PORT` of the runtime.
    pub base: String,
    /// For Ollama: the model's name there.
    pub ollama_name: Option<String>,
    /// The runtime's key, which each request to it carries.
    pub api_key: Option<String>,
    /// How long the request waited for the model to load (0 when it was loaded).
    pub waited_ms: u64,
    /// The adapters the runtime runs with (their ids, in the order it loaded them): each request says their
    /// scales.
    #[serde(default)]
    pub adapters: Vec<String>,
    pub loaded: LoadedModel,
}
