//! Ollama pulls as downloads: each shows in the downloads list with its layer's bytes as progress, publishes the
//! same progress and lifecycle events as a download, and can be cancelled (Ollama keeps what it has).

use super::Manager;
use crate::download::{DownloadEvent, DownloadProgress, DownloadState, LifecycleKind, ModelLifecycle};
use crate::error::{Coded, ErrorPayload};
use crate::ollama::{OllamaError, OLLAMA_PREFIX};
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Ids of Ollama pulls in the downloads list start here, far from the queue's own.
const PULL_IDS: u64 = 1 << 40;

/// The pulls of this session: their progress and how to stop them.
#[derive(Default)]
pub(super) struct Pulls(Mutex<Vec<(DownloadProgress, CancellationToken)>>);

impl Pulls {
    pub fn list(&self) -> Vec<DownloadProgress> {
        self.0.lock().unwrap().iter().map(|(p, _)| p.clone()).collect()
    }

    pub fn get(&self, id: u64) -> Option<DownloadProgress> {
        self.0.lock().unwrap().iter().find(|(p, _)| p.id == id).map(|(p, _)| p.clone())
    }

    /// Cancels a pull; false when `id` is not one.
    pub fn cancel(&self, id: u64) -> bool {
        let pulls = self.0.lock().unwrap();
        pulls.iter().find(|(p, _)| p.id == id).map(|(_, cancel)| cancel.cancel()).is_some()
    }

    fn add(&self, name: &str, cancel: CancellationToken) -> u64 {
        let mut pulls = self.0.lock().unwrap();
        let id = PULL_IDS + pulls.len() as u64;
        pulls.push((progress(id, name), cancel));
        id
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut DownloadProgress)) -> Option<DownloadProgress> {
        let mut pulls = self.0.lock().unwrap();
        let (progress, _) = pulls.iter_mut().find(|(p, _)| p.id == id)?;
        f(progress);
        Some(progress.clone())
    }
}

/// Starts pulling `name` in the background; its id in the downloads list.
pub(super) fn start(manager: &Manager, name: &str) -> Result<u64, ErrorPayload> {
    let name = name.trim().to_string();
    crate::ollama::check_name(&name).map_err(|e| e.payload())?;
    let cancel = CancellationToken::new();
    let id = manager.inner.pulls.add(&name, cancel.clone());
    lifecycle(manager, LifecycleKind::Started, &name, id, None);
    let manager = manager.clone();
    tokio::spawn(async move {
        let inner = &manager.inner;
        let on_progress = |p: &crate::ollama::PullProgress| {
            let progress = inner.pulls.update(id, |d| {
                if p.total > 0 {
                    d.bytes_total = p.total;
                    d.bytes_done = p.completed;
                }
            });
            if let Some(progress) = progress {
                inner.downloads.publish(DownloadEvent::Progress(progress));
            }
        };
        let result = inner.ollama.pull(&name, on_progress, cancel).await;
        let (state, kind, error) = match result {
            Ok(()) => (DownloadState::Completed, LifecycleKind::Completed, None),
            Err(OllamaError::Cancelled(_)) => (DownloadState::Cancelled, LifecycleKind::Cancelled, None),
            Err(e) => (DownloadState::Failed, LifecycleKind::Failed, Some(e.payload())),
        };
        let last = inner.pulls.update(id, |d| {
            d.state = state;
            d.error = error.clone();
            if state == DownloadState::Completed {
                d.bytes_done = d.bytes_total;
                d.files_done = 1;
            }
        });
        if let Some(progress) = last {
            inner.downloads.publish(DownloadEvent::Progress(progress));
        }
        lifecycle(&manager, kind, &name, id, error);
    });
    Ok(id)
}

fn progress(id: u64, name: &str) -> DownloadProgress {
    DownloadProgress {
        id,
        repo: format!("{OLLAMA_PREFIX}{name}"),
        revision: name.rsplit_once(':').map(|(_, t)| t.to_string()).unwrap_or_else(|| "latest".into()),
        commit: None,
        state: DownloadState::Downloading,
        bytes_done: 0,
        bytes_total: 0,
        files_done: 0,
        files_total: 1,
        bytes_per_second: 0,
        eta_seconds: None,
        error: None,
        transport: None,
    }
}

fn lifecycle(manager: &Manager, kind: LifecycleKind, name: &str, id: u64, error: Option<ErrorPayload>) {
    manager.publish_lifecycle(vec![ModelLifecycle {
        kind,
        repo: format!("{OLLAMA_PREFIX}{name}"),
        revision: String::new(),
        download_id: Some(id),
        error,
    }]);
}
