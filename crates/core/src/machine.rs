//! The machine a face is driving: this one (its [`Manager`]) or another (a [`Remote`] `mm serve`). The
//! operations both offer, with the same types and errors, so a face switches machines without knowing which it
//! talks to.

use crate::activation::ActiveEntry;
use crate::compat::local::ModelFit;
use crate::compat::{CompatReport, HardwareInfo};
use crate::download::{DownloadEvent, DownloadPreview, DownloadProgress, DownloadRequest};
use crate::error::ErrorPayload;
use crate::library::delete::DeleteReport;
use crate::library::storage::{CleanReport, StorageReport};
use crate::library::verify::VerifyReport;
use crate::library::{LibraryQuery, ModelDetails};
use crate::model::{LibraryModel, ModelType};
use crate::remote::Remote;
use crate::runtime::LoadedModel;
use crate::Manager;
use std::collections::BTreeMap;
use tokio::sync::broadcast;

/// The machines a face can drive, and which one it drives now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct MachineList {
    /// The address of the machine driven now; none for this machine.
    pub current: Option<String>,
    pub machines: Vec<crate::settings::MachineEntry>,
}

#[derive(Clone)]
pub enum Machine {
    Local(Manager),
    Remote(Remote),
}

/// The same call on either machine.
macro_rules! either {
    ($self:ident, $m:ident => $local:expr, $r:ident => $remote:expr) => {
        match $self {
            Machine::Local($m) => $local,
            Machine::Remote($r) => $remote,
        }
    };
}

fn model_type_of(name: &str) -> Result<ModelType, ErrorPayload> {
    name.parse::<ModelType>().map_err(|e| crate::error::Coded::payload(&e))
}

impl Machine {
    /// Where it is: `this machine`, or the remote's address.
    pub fn name(&self) -> String {
        either!(self, _m => "this machine".into(), r => r.url().to_string())
    }

    /// Where its models are: this machine's cache folder, or the other machine's address.
    pub fn place(&self) -> String {
        either!(self, m => m.cache_dir().display().to_string(), r => r.url().to_string())
    }

    pub async fn models(&self, query: LibraryQuery) -> Result<Vec<LibraryModel>, ErrorPayload> {
        either!(self, m => m.models(query).await, r => r.models(query).await)
    }

    pub async fn model(&self, id: &str) -> Result<ModelDetails, ErrorPayload> {
        either!(self, m => m.model(id).await, r => r.model(id).await)
    }

    pub async fn delete(&self, id: &str, revision: Option<&str>, dry_run: bool) -> Result<DeleteReport, ErrorPayload> {
        either!(self, m => m.delete(id, revision, dry_run).await, r => r.delete(id, revision, dry_run).await)
    }

    pub async fn set_type(&self, id: &str, model_type: Option<&str>) -> Result<(), ErrorPayload> {
        either!(self, m => m.set_type(id, model_type), r => r.set_type(id, model_type).await)
    }

    /// Verifies a model, and with `repair` downloads its bad files again: the report after.
    pub async fn verify(&self, id: &str, revision: Option<&str>, repair: bool) -> Result<VerifyReport, ErrorPayload> {
        either!(self, m => m.verify_and_repair(id, revision, repair, |_| {}).await, r => r.verify(id, revision, repair).await)
    }

    pub async fn storage(&self) -> Result<StorageReport, ErrorPayload> {
        either!(self, m => m.storage().await, r => r.storage().await)
    }

    pub async fn clean(&self) -> Result<CleanReport, ErrorPayload> {
        either!(self, m => m.clean().await, r => r.clean().await)
    }

    pub async fn preview(&self, request: DownloadRequest) -> Result<DownloadPreview, ErrorPayload> {
        either!(self, m => m.preview(request).await, r => r.preview(request).await)
    }

    /// Queues a download through the checked queue on either machine: a repo, revision or file that does not
    /// exist (404) or does not fit (507) is refused before anything is queued; the same download running is joined.
    pub async fn start(&self, request: DownloadRequest) -> Result<u64, ErrorPayload> {
        either!(self, m => m.queue(request).await.map(|(id, _)| id), r => r.start(request).await)
    }

    pub async fn downloads(&self) -> Result<Vec<DownloadProgress>, ErrorPayload> {
        either!(self, m => Ok(m.downloads()), r => r.downloads().await)
    }

    pub async fn download(&self, id: u64) -> Result<DownloadProgress, ErrorPayload> {
        either!(self, m => m.download(id), r => r.download(id).await)
    }

    pub async fn pause(&self, id: u64) -> Result<(), ErrorPayload> {
        either!(self, m => m.pause(id), r => r.pause(id).await)
    }

    pub async fn resume(&self, id: u64) -> Result<(), ErrorPayload> {
        either!(self, m => m.resume(id), r => r.resume(id).await)
    }

    pub async fn cancel(&self, id: u64) -> Result<(), ErrorPayload> {
        either!(self, m => m.cancel(id), r => r.cancel(id).await)
    }

    pub async fn active(&self) -> Result<BTreeMap<ModelType, ActiveEntry>, ErrorPayload> {
        either!(self, m => Ok(m.active()), r => r.active().await)
    }

    /// Makes a model the active one of its type (or of `model_type`; a remote machine needs it named).
    pub async fn activate(
        &self,
        id: &str,
        model_type: Option<&str>,
        revision: Option<&str>,
    ) -> Result<ActiveEntry, ErrorPayload> {
        // Without a type, the machine that has the model says which it is.
        either!(self,
            m => Ok(m.activate(id, model_type, revision).await?.0),
            r => r.activate(id, model_type.map(model_type_of).transpose()?, revision).await)
    }

    pub async fn deactivate(&self, model_type: &str) -> Result<(), ErrorPayload> {
        either!(self, m => m.deactivate(model_type).await.map(|_| ()), r => r.deactivate(model_type_of(model_type)?).await)
    }

    pub async fn system(&self) -> Result<HardwareInfo, ErrorPayload> {
        either!(self, m => m.system().await, r => r.system().await)
    }

    /// Loads a type's active model, or activates a model and loads it; answered once it is ready.
    pub async fn load(&self, target: Option<&str>, context: Option<u64>) -> Result<LoadedModel, ErrorPayload> {
        either!(self, m => m.load(target, context).await, r => r.load(target, context).await)
    }

    /// Unloads a type or model, or everything loaded.
    pub async fn unload(&self, target: Option<&str>) -> Result<Vec<LoadedModel>, ErrorPayload> {
        either!(self, m => m.unload(target).await, r => r.unload(target).await)
    }

    /// What is loaded, with state, endpoint and memory.
    pub async fn loaded(&self) -> Result<Vec<LoadedModel>, ErrorPayload> {
        either!(self, m => Ok(m.loaded().await), r => r.loaded().await)
    }

    pub async fn compat(
        &self,
        target: &str,
        revision: Option<&str>,
        context: Option<u64>,
    ) -> Result<CompatReport, ErrorPayload> {
        either!(self, m => m.compat(target, revision, context).await, r => r.compat(target, revision, context).await)
    }

    pub async fn fit(&self) -> Result<BTreeMap<String, ModelFit>, ErrorPayload> {
        either!(self, m => m.fit().await, r => r.fit().await)
    }

    /// The machine's download progress and model lifecycle events.
    pub fn subscribe(&self) -> broadcast::Receiver<DownloadEvent> {
        either!(self, m => m.subscribe(), r => r.subscribe())
    }
}
