//! The operations of the table ([`crate::operations!`]) on this machine: each row's core method. Every face reaches
//! them through [`Operations`] (the window and `mm` through [`crate::machine::Machine`], `mm serve` directly), so
//! each means the same wherever it is called from.

use super::Manager;
use crate::activation::ActiveEntry;
use crate::compat::local::ModelFit;
use crate::compat::{CompatReport, HardwareInfo};
use crate::discover::{RepoDetails, SearchPage, StarterCatalog};
use crate::download::{DownloadPreview, DownloadProgress, DownloadRequest};
use crate::error::{ErrorCode, ErrorPayload};
use crate::library::delete::DeleteReport;
use crate::library::storage::{CleanReport, StorageReport};
use crate::library::verify::{VerifyProgress, VerifyReport};
use crate::library::{LibraryQuery, ModelDetails};
use crate::model::{LibraryModel, ModelType};
use crate::ollama::OllamaStatus;
use crate::operations::{
    Activate, AdapterLink, CancelRepo, CompatAsk, DeleteOptions, GetRuntime, Load, MoveTo, Operations, Pin, Pull,
    RepoCancelled, Revision, RuntimeRemoved, Runtimes, SearchAsk, Started, TypeChange, Unload, UseRuntime,
    VerifyOptions,
};
use crate::runtime::builds::{GetProgress, RuntimeBuild};
use crate::runtime::LoadedModel;
use crate::settings::LoadSettings;
use std::collections::BTreeMap;

impl Operations for Manager {
    async fn models(&self, query: LibraryQuery) -> Result<std::sync::Arc<Vec<LibraryModel>>, ErrorPayload> {
        Manager::models(self, query).await
    }

    async fn model(&self, id: String) -> Result<ModelDetails, ErrorPayload> {
        Manager::model(self, &id).await
    }

    async fn delete(&self, id: String, options: DeleteOptions) -> Result<DeleteReport, ErrorPayload> {
        Manager::delete(self, &id, options.revision.as_deref(), options.dry_run).await
    }

    async fn set_type(&self, id: String, change: TypeChange) -> Result<(), ErrorPayload> {
        Manager::set_type(self, &id, change.model_type.map(ModelType::as_str))
    }

    async fn verify(
        &self,
        id: String,
        options: VerifyOptions,
        on_progress: impl FnMut(VerifyProgress) + Send + 'static,
    ) -> Result<VerifyReport, ErrorPayload> {
        self.verify_and_repair(&id, options.revision.as_deref(), options.repair, on_progress).await
    }

    async fn preview(&self, request: DownloadRequest) -> Result<DownloadPreview, ErrorPayload> {
        Manager::preview(self, request).await
    }

    async fn start(&self, request: DownloadRequest) -> Result<Started, ErrorPayload> {
        let (id, joined) = self.queue(request).await?;
        Ok(Started { id, joined, download: Manager::download(self, id)? })
    }

    async fn downloads(&self) -> Result<Vec<DownloadProgress>, ErrorPayload> {
        Ok(Manager::downloads(self))
    }

    async fn download(&self, id: u64) -> Result<DownloadProgress, ErrorPayload> {
        Manager::download(self, id)
    }

    async fn pause(&self, id: u64) -> Result<DownloadProgress, ErrorPayload> {
        Manager::pause(self, id)?;
        Manager::download(self, id)
    }

    async fn resume(&self, id: u64) -> Result<DownloadProgress, ErrorPayload> {
        Manager::resume(self, id)?;
        Manager::download(self, id)
    }

    async fn cancel(&self, id: u64) -> Result<DownloadProgress, ErrorPayload> {
        Manager::cancel(self, id)?;
        Manager::download(self, id)
    }

    async fn cancel_repo(&self, ask: CancelRepo) -> Result<RepoCancelled, ErrorPayload> {
        Manager::cancel_repo(self, &ask.repo).await
    }

    async fn active(&self) -> Result<BTreeMap<ModelType, ActiveEntry>, ErrorPayload> {
        // Reading is also when a model deleted behind the app's back loses its mark.
        self.reconcile_activation()?;
        Ok(Manager::active(self))
    }

    async fn active_of(&self, model_type: ModelType) -> Result<ActiveEntry, ErrorPayload> {
        Operations::active(self).await?.remove(&model_type).ok_or_else(|| {
            ErrorPayload::new(
                ErrorCode::NotFound,
                format!("no {model_type} model is active: activate one with `mm activate ORG/NAME`"),
            )
        })
    }

    async fn activate(&self, ask: Activate) -> Result<ActiveEntry, ErrorPayload> {
        let model_type = ask.model_type.map(ModelType::as_str);
        Ok(Manager::activate(self, &ask.id, model_type, ask.revision.as_deref()).await?.0)
    }

    async fn activate_as(&self, model_type: ModelType, ask: Activate) -> Result<ActiveEntry, ErrorPayload> {
        Operations::activate(self, Activate { model_type: Some(model_type), ..ask }).await
    }

    async fn deactivate(&self, model_type: ModelType) -> Result<(), ErrorPayload> {
        Manager::deactivate(self, model_type.as_str()).await.map(|_| ())
    }

    async fn loaded(&self) -> Result<Vec<LoadedModel>, ErrorPayload> {
        Ok(Manager::loaded(self).await)
    }

    async fn load(&self, ask: Load) -> Result<LoadedModel, ErrorPayload> {
        Manager::load(self, ask.target.as_deref(), ask.context, ask.pin).await
    }

    async fn unload(&self, ask: Unload) -> Result<Vec<LoadedModel>, ErrorPayload> {
        Manager::unload(self, ask.target.as_deref()).await
    }

    async fn pin(&self, id: String, ask: Pin) -> Result<(), ErrorPayload> {
        // A model the endpoint can name (else 404): its id as the runtime knows it.
        let target = self.resolve(&id).await?;
        self.set_pinned(&target.id, ask.pinned)
    }

    async fn pin_model(&self, id: String, ask: Pin) -> Result<(), ErrorPayload> {
        Manager::pin_model(self, &id, ask.pinned).await
    }

    async fn link_adapter(&self, id: String, link: AdapterLink) -> Result<LibraryModel, ErrorPayload> {
        Manager::link_adapter(self, &id, link.base.as_deref()).await
    }

    async fn load_settings(&self, id: String) -> Result<LoadSettings, ErrorPayload> {
        let model = self.resolve(&id).await?.model;
        Ok(self.settings().load_of(&model))
    }

    async fn set_load_settings(&self, id: String, settings: LoadSettings) -> Result<LoadSettings, ErrorPayload> {
        self.keep_load_settings(&id, settings).await
    }

    async fn runtimes(&self) -> Result<Runtimes, ErrorPayload> {
        Ok(Manager::runtimes(self).await)
    }

    async fn get_runtime(
        &self,
        ask: GetRuntime,
        on_progress: impl FnMut(GetProgress) + Send + 'static,
    ) -> Result<RuntimeBuild, ErrorPayload> {
        Manager::get_runtime(self, ask, on_progress).await
    }

    async fn use_runtime(&self, ask: UseRuntime) -> Result<Runtimes, ErrorPayload> {
        Manager::use_runtime(self, &ask.name).await
    }

    async fn rollback_runtime(&self) -> Result<Runtimes, ErrorPayload> {
        Manager::rollback_runtime(self).await
    }

    async fn remove_runtime(&self, name: String) -> Result<RuntimeRemoved, ErrorPayload> {
        Manager::remove_runtime(self, &name).await
    }

    async fn compat(&self, ask: CompatAsk) -> Result<CompatReport, ErrorPayload> {
        Manager::compat(self, &ask.target, ask.revision.as_deref(), ask.context, ask.load_settings).await
    }

    async fn fit(&self) -> Result<BTreeMap<String, ModelFit>, ErrorPayload> {
        Manager::fit(self).await
    }

    async fn system(&self) -> Result<HardwareInfo, ErrorPayload> {
        Manager::system(self).await
    }

    async fn storage(&self) -> Result<StorageReport, ErrorPayload> {
        Manager::storage(self).await
    }

    async fn move_model(&self, id: String, to: MoveTo) -> Result<crate::library::relocate::MoveReport, ErrorPayload> {
        Manager::move_model(self, &id, &to.folder).await
    }

    async fn stats(&self) -> Result<crate::manager::Statistics, ErrorPayload> {
        self.statistics().await
    }

    async fn clean(&self) -> Result<CleanReport, ErrorPayload> {
        Manager::clean(self).await
    }

    async fn search(&self, ask: SearchAsk) -> Result<SearchPage, ErrorPayload> {
        Manager::search(self, &ask.query, ask.next.as_deref()).await
    }

    async fn repo(&self, repo: String, at: Revision) -> Result<RepoDetails, ErrorPayload> {
        self.repo_details(&repo, at.revision.as_deref()).await
    }

    async fn catalog(&self) -> Result<StarterCatalog, ErrorPayload> {
        Manager::catalog(self).await
    }

    async fn ollama(&self) -> Result<OllamaStatus, ErrorPayload> {
        Ok(self.ollama_status().await)
    }

    async fn ollama_pull(&self, pull: Pull) -> Result<Started, ErrorPayload> {
        let id = Manager::ollama_pull(self, &pull.name)?;
        Ok(Started { id, joined: false, download: Manager::download(self, id)? })
    }
}
