//! A loaded type's state, shared by the host (which loads, swaps and watches) and its endpoint (which passes
//! requests to the runtime serving now): the [`Slot`], and the [`Backend`] runtime behind it.

use super::plan::LaunchPlan;
use super::{LoadedModel, RuntimeState};
use crate::model::ModelType;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// One loaded type: its endpoint and the runtime behind it.
pub(super) struct Slot {
    pub(super) model_type: ModelType,
    pub(super) backend: watch::Sender<Option<Arc<Backend>>>,
    pub(super) view: Mutex<LoadedModel>,
    pub(super) requests: AtomicU64,
    pub(super) last_used: AtomicU64,
    /// The process whose end unloads it (the app that loaded it).
    pub(super) owner_pid: Mutex<Option<u32>>,
    pub(super) proxy: tokio::task::JoinHandle<()>,
}

impl Slot {
    pub(super) fn touch(&self) {
        self.last_used.store(crate::format::now_unix(), Ordering::Relaxed);
    }

    pub(super) fn served(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The runtime serving now; while the first one loads, waits for it up to `limit`.
    pub(super) async fn wait_for_backend(&self, limit: Duration) -> Option<Arc<Backend>> {
        let mut rx = self.backend.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(b) = rx.borrow_and_update().clone() {
                return Some(b);
            }
            let waiting = matches!(self.view().state, RuntimeState::Loading | RuntimeState::Unhealthy);
            if !waiting || tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return None;
            }
        }
    }

    pub(super) fn unavailable_reason(&self) -> String {
        let view = self.view();
        let why = view.error.unwrap_or_else(|| "it is not running".into());
        format!(
            "{} ({}) is not being served: {why}. Load it again: mm load {}",
            view.id, self.model_type, self.model_type
        )
    }

    pub(super) fn view(&self) -> LoadedModel {
        let mut v = self.view.lock().expect("slot view").clone();
        v.requests = self.requests.load(Ordering::Relaxed);
        v.last_used = self.last_used.load(Ordering::Relaxed);
        v
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut LoadedModel)) {
        f(&mut self.view.lock().expect("slot view"));
    }

    /// Marks it stopped, with why, and answers the requests waiting for a runtime at once; returns the runtime
    /// that was serving, for the caller to retire. The endpoint stays, saying why (a load starts it again).
    pub(super) fn stop(&self, why: Option<String>) -> Option<Arc<Backend>> {
        self.update(|v| {
            v.state = RuntimeState::Stopped;
            if why.is_some() {
                v.error = why;
            }
        });
        self.backend.send_replace(None)
    }

    /// [`Slot::stop`], and the endpoint stops accepting.
    pub(super) fn close(&self, why: Option<String>) -> Option<Arc<Backend>> {
        self.proxy.abort();
        self.stop(why)
    }

    pub(super) fn current(&self) -> Option<Arc<Backend>> {
        self.backend.borrow().clone()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.proxy.abort();
    }
}

/// A runtime serving one model.
pub(super) struct Backend {
    pub(super) id: String,
    /// `http://127.0.0.1:PORT` of the runtime.
    pub(super) base: String,
    /// For Ollama: the model's name there, put in each request.
    pub(super) ollama_name: Option<String>,
    pub(super) file: String,
    pub(super) plan: Option<LaunchPlan>,
    pub(super) process: Option<Process>,
}

pub(super) struct Process {
    pub(super) child: tokio::sync::Mutex<tokio::process::Child>,
    pub(super) pid: u32,
    pub(super) command: String,
    pub(super) log: PathBuf,
}
