//! One model served by one runtime: a [`Process`], with its state machine, the runtime behind it ([`Backend`],
//! replaced in place by a restart or a reload), and the requests that hold it ([`Lease`]).
//!
//! ```text
//!   loading ──▶ ready ◀──▶ unhealthy          a restart brings it back; its attempts spent, it stops
//!      │          │            │
//!      │          ▼            │
//!      │      draining ◀───────┘              no new requests; it stops once the last answer is sent
//!      │          │
//!      └────────▶ stopped (with why) ──▶ loading   only an explicit load starts it again
//! ```
//!
//! Every change of state goes through [`Process::advance`], which refuses any other move: the host, the monitor
//! and a restart all write through it.

use super::plan::LaunchPlan;
use super::{LoadedModel, RuntimeState, Target};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How long a model is kept after its last answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// The `idleUnloadSeconds` setting's.
    Default,
    /// Until it is unloaded (Ollama's negative `keep_alive`).
    Forever,
    /// Until this unix second.
    Until(u64),
}

impl Keep {
    /// Ollama's `keep_alive` in seconds: negative keeps it, 0 unloads after the answer.
    pub(super) fn after(keep_alive: Option<i64>, now: u64) -> Keep {
        match keep_alive {
            None => Keep::Default,
            Some(s) if s < 0 => Keep::Forever,
            Some(s) => Keep::Until(now + s as u64),
        }
    }
}

/// One model, served by one runtime at a time.
pub(super) struct Process {
    pub(super) target: Target,
    /// The runtime serving it now.
    backend: watch::Sender<Option<Arc<Backend>>>,
    /// A runtime put in service and one taken out, one at a time (so that none is put in once it stops).
    swap: Mutex<()>,
    /// What `mm ps` shows, and the state every waiter watches.
    view: watch::Sender<LoadedModel>,
    pub(super) keep: Mutex<Keep>,
    /// The process whose end unloads it (the app or `mm serve` that loaded it).
    pub(super) owner_pid: Mutex<Option<u32>>,
    /// The scheduler gave it room: until then a loading model takes none (two that wait for room never wait
    /// for each other).
    pub(super) admitted: std::sync::atomic::AtomicBool,
    /// The host's: told whenever an answer ends or a model stops, for the loads waiting for room.
    room: Arc<Notify>,
}

/// Which moves the state machine allows.
fn allowed(from: RuntimeState, to: RuntimeState) -> bool {
    use RuntimeState::*;
    matches!(
        (from, to),
        (Loading, Ready | Stopped | Draining)
            | (Ready, Unhealthy | Draining | Ready)
            | (Unhealthy, Ready | Unhealthy | Stopped | Draining)
            | (Draining, Stopped)
            | (Stopped, Loading | Stopped)
    )
}

impl Process {
    pub(super) fn new(target: Target, view: LoadedModel, room: Arc<Notify>) -> Process {
        Process {
            target,
            backend: watch::channel(None).0,
            swap: Mutex::new(()),
            view: watch::channel(view).0,
            keep: Mutex::new(Keep::Default),
            owner_pid: Mutex::new(None),
            admitted: Default::default(),
            room,
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.target.id
    }

    pub(super) fn view(&self) -> LoadedModel {
        self.view.borrow().clone()
    }

    pub(super) fn state(&self) -> RuntimeState {
        self.view.borrow().state
    }

    /// Facts that are not its state: plan, memory, owner.
    pub(super) fn update(&self, f: impl FnOnce(&mut LoadedModel)) {
        self.view.send_modify(|v| {
            let state = v.state;
            f(v);
            debug_assert_eq!(v.state, state, "a state changes through advance");
            v.state = state;
        });
    }

    /// Moves to `to` (with why, for unhealthy and stopped), if the state machine allows it from where it is.
    pub(super) fn advance(&self, to: RuntimeState, why: Option<String>) -> bool {
        let moved = self.view.send_if_modified(|v| {
            if !allowed(v.state, to) {
                return false;
            }
            v.state = to;
            v.error = why;
            true
        });
        if !moved {
            tracing::debug!("{}: no move from {:?} to {to:?}", self.id(), self.state());
        }
        if matches!(to, RuntimeState::Stopped) {
            self.room.notify_waiters();
        }
        moved
    }

    /// Waits until its view changes, up to `limit`; false when the time ran out.
    pub(super) async fn changed(&self, limit: Duration) -> bool {
        let mut rx = self.view.subscribe();
        rx.borrow_and_update();
        tokio::time::timeout(limit, rx.changed()).await.is_ok()
    }

    /// A hold on it for one request, when it is ready: it is not drained while the lease lives.
    pub(super) fn lease(self: &Arc<Self>, keep: Option<i64>) -> Option<Lease> {
        let backend = self.current()?;
        let mut leased = false;
        self.view.send_if_modified(|v| {
            if v.state == RuntimeState::Ready {
                v.busy += 1;
                v.last_used = crate::format::now_unix();
                leased = true;
            }
            false
        });
        leased.then(|| Lease { process: self.clone(), backend, keep, counted: true })
    }

    /// Waits until no request holds it (after [`Process::advance`] to draining, no new one can).
    pub(super) async fn drained(&self) {
        let mut rx = self.view.subscribe();
        let _ = rx.wait_for(|v| v.busy == 0).await;
    }

    pub(super) fn current(&self) -> Option<Arc<Backend>> {
        self.backend.borrow().clone()
    }

    /// Puts `backend` in service (ready); returns the runtime it replaces, for the caller to retire. Refused
    /// (the runtime handed back) once the model is being unloaded.
    pub(super) fn serve(&self, backend: Arc<Backend>, restarts: u32) -> Result<Option<Arc<Backend>>, Arc<Backend>> {
        let _swap = self.swap.lock().expect("swap");
        if matches!(self.state(), RuntimeState::Draining | RuntimeState::Stopped) {
            return Err(backend);
        }
        let old = self.backend.send_replace(Some(backend.clone()));
        let now = crate::format::now_unix();
        self.update(|v| {
            v.pid = backend.spawned.as_ref().map(|p| p.pid);
            v.command = backend.spawned.as_ref().map(|p| p.command.clone());
            v.estimate_bytes = backend.plan.as_ref().map_or(v.estimate_bytes, |p| p.estimate_bytes);
            v.plan = backend.plan.clone();
            v.measured = None;
            v.restarts = restarts;
            v.loaded_at = now;
            v.last_used = now;
        });
        self.advance(RuntimeState::Ready, None);
        Ok(old.filter(|o| !Arc::ptr_eq(o, &backend)))
    }

    /// Takes its runtime out of service (it died, or the model stops); returns it, for the caller to retire.
    pub(super) fn take(&self) -> Option<Arc<Backend>> {
        let _swap = self.swap.lock().expect("swap");
        self.backend.send_replace(None)
    }
}

/// One request's hold on a model: while it lives the model is busy (never drained), and its runtime is not
/// stopped. Dropped when the answer has been sent (or the client went away).
pub(super) struct Lease {
    pub(super) process: Arc<Process>,
    pub(super) backend: Arc<Backend>,
    keep: Option<i64>,
    /// A request's (counted in `requests`), not a load's.
    pub(super) counted: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let now = crate::format::now_unix();
        if self.keep.is_some() {
            *self.process.keep.lock().expect("keep") = Keep::after(self.keep, now);
        }
        self.process.view.send_modify(|v| {
            v.busy = v.busy.saturating_sub(1);
            v.requests += u64::from(self.counted);
            v.last_used = now;
        });
        self.process.room.notify_waiters();
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
    /// The adapters it loaded (ids, in order).
    pub(super) adapters: Vec<String>,
    /// What every request to it carries (`Authorization: Bearer`): llama-server answers nobody else.
    pub(super) api_key: Option<String>,
    /// The llama-server this app started (none for Ollama, which runs on its own).
    pub(super) spawned: Option<Spawned>,
}

pub(super) struct Spawned {
    pub(super) child: tokio::sync::Mutex<tokio::process::Child>,
    pub(super) pid: u32,
    pub(super) command: String,
    pub(super) log: PathBuf,
    /// Where its key is (0600).
    pub(super) key_file: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use RuntimeState::*;

    #[test]
    fn the_state_machine_allows_only_its_moves() {
        for (from, to) in
            [(Loading, Ready), (Ready, Draining), (Draining, Stopped), (Ready, Unhealthy), (Stopped, Loading)]
        {
            assert!(allowed(from, to), "{from:?} -> {to:?}");
        }
        for (from, to) in [(Draining, Ready), (Stopped, Ready), (Loading, Unhealthy), (Draining, Loading)] {
            assert!(!allowed(from, to), "{from:?} -> {to:?}");
        }
    }
}
