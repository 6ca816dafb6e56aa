//! The facade's storage limit: the room a download needs under `storageLimit`, `minFreeSpace` and the disk
//! ([`crate::library::evict`]), which models would go for it (the least recently used that nobody uses), and
//! removing them once the user agreed (`evict`). A model is never removed for room while it is active, loaded,
//! pinned (for storage or in the runtime), being downloaded, the base of adapters, or outside the cache and the
//! app's models folder (a library folder, a file imported by reference, Ollama's).

use super::*;
use crate::library::evict::{self, Eviction, Room};
use crate::model::ModelSource;

impl Manager {
    /// The room `preview`'s download needs, when it needs any.
    pub(super) async fn room_for(&self, preview: &DownloadPreview) -> Result<Option<Room>, ErrorPayload> {
        let limit = self.settings().storage_limit.map(|l| (l, "storageLimit"));
        self.room_under(&preview.repo, preview.bytes_to_download, preview.free_space, limit).await
    }

    /// Removes, on its own, what a download of `bytes` for `repo` needs under `limit` (the mirror's
    /// `--cache-limit`, whose owner asked for it).
    pub async fn make_room_within(&self, repo: &str, bytes: u64, limit: u64) -> Result<(), ErrorPayload> {
        let free = crate::disk::free_space(&self.inner.cache_dir)
            .map_err(|e| ErrorPayload::new(ErrorCode::of_io(&e), format!("reading the free space: {e}")))?;
        match self.room_under(repo, bytes, free, Some((limit, "the mirror's --cache-limit"))).await? {
            Some(room) => self.make_room(repo, &room, true).await,
            None => Ok(()),
        }
    }

    async fn room_under(
        &self,
        repo: &str,
        download: u64,
        free: u64,
        limit: Option<(u64, &str)>,
    ) -> Result<Option<Room>, ErrorPayload> {
        let settings = self.settings();
        let (cache_dir, models_dir) = (self.inner.cache_dir.clone(), crate::models_folder::models_dir(self.data_dir()));
        let used = blocking(move || {
            Ok::<u64, crate::library::LibraryError>(
                storage::report(&cache_dir)?.cache_bytes + crate::disk::tree_bytes(&models_dir),
            )
        })
        .await?;
        let Some((need, why)) = evict::need(download, used, free, limit, settings.min_free_space) else {
            return Ok(None);
        };
        let models = self.models_on_disk(settings.clone()).await?;
        let downloading: Vec<String> =
            self.inner.downloads.list().into_iter().filter(|d| !d.state.is_finished()).map(|d| d.repo).collect();
        let may_go = models
            .iter()
            .filter(|m| matches!(m.source, ModelSource::HuggingFace | ModelSource::Url))
            .filter(|m| m.id != repo && m.status != crate::model::ModelStatus::Active && !m.pinned)
            .filter(|m| m.adapters.is_empty() && !settings.pinned.contains(&m.id))
            .filter(|m| !self.is_loaded(&m.id) && !downloading.contains(&m.id))
            .map(|m| Eviction { id: m.id.clone(), bytes: m.size, last_used: m.last_used })
            .collect();
        let (evict, shortfall) = evict::plan(need, may_go);
        Ok(Some(Room { need_bytes: need, why, evict, shortfall }))
    }

    /// Whether a model (or one of its quantisations, `org/name:Q4_K_M`) is loaded, as last heard.
    fn is_loaded(&self, id: &str) -> bool {
        self.loaded_now().iter().any(|l| l.id == id || l.id.strip_prefix(id).is_some_and(|rest| rest.starts_with(':')))
    }

    /// Pins a model of the library (never removed to make room) or unpins it.
    pub async fn pin_model(&self, id: &str, pinned: bool) -> Result<(), ErrorPayload> {
        let models = self.models_on_disk(self.settings()).await?;
        if !models.iter().any(|m| m.id == id) {
            return Err(ErrorPayload::new(
                ErrorCode::NotFound,
                format!("no model {id} in the library (mm list names them)"),
            ));
        }
        let (settings, ()) = self
            .inner
            .store
            .update(|s| {
                s.storage_pins.retain(|p| p != id);
                if pinned {
                    s.storage_pins.push(id.to_string());
                }
                Ok(())
            })
            .map_err(payload)?;
        self.settings_changed(settings);
        Ok(())
    }

    /// Moves a model of the Hugging Face caches to another of the library's folders (the cache, or a library
    /// folder), every blob copied and checked before the old copy goes ([`crate::library::relocate`]); it keeps its
    /// id, type, pins and load settings, and an active model is activated again from its new place.
    pub async fn move_model(
        &self,
        id: &str,
        folder: &str,
    ) -> Result<crate::library::relocate::MoveReport, ErrorPayload> {
        let settings = self.settings();
        let models = self.models_on_disk(settings.clone()).await?;
        let m = models.iter().find(|m| m.id == id).ok_or_else(|| {
            ErrorPayload::new(ErrorCode::NotFound, format!("no model {id} in the library (mm list names them)"))
        })?;
        if !matches!(m.source, ModelSource::HuggingFace | ModelSource::Folder) {
            return Err(ErrorPayload::new(
                ErrorCode::InvalidInput,
                format!("{id} is not in a Hugging Face cache folder: only those move between folders"),
            ));
        }
        let folders: Vec<PathBuf> =
            list::sources(&self.inner.cache_dir, &settings).into_iter().map(|(p, _)| p).collect();
        let to = folders.iter().find(|f| f.as_path() == Path::new(folder.trim_end_matches('/'))).cloned().ok_or_else(|| {
            ErrorPayload::new(
                ErrorCode::InvalidInput,
                format!(
                    "{folder} is not one of the library's folders ({}): add it first (mm config set libraryFolders ...)",
                    folders.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let from = Path::new(&m.path).parent().map(Path::to_path_buf).unwrap_or_default();
        if from == to {
            return Err(ErrorPayload::new(ErrorCode::InvalidInput, format!("{id} is in {} already", to.display())));
        }
        if self.is_loaded(id) {
            return Err(ErrorPayload::new(
                ErrorCode::Conflict,
                format!("{id} is loaded: unload it first (mm unload {id})"),
            ));
        }
        if self.inner.downloads.list().iter().any(|d| d.repo == id && !d.state.is_finished()) {
            return Err(ErrorPayload::new(
                ErrorCode::Conflict,
                format!("{id} is being downloaded: let it finish first"),
            ));
        }
        // Nor while another process downloads into it (`mm download`'s marker, a blob lock held).
        let (dir, folder_name) = (from.clone(), Path::new(&m.path).file_name().unwrap_or_default().to_os_string());
        let repo_id = crate::cache::RepoId::parse(id).ok();
        if repo_id.is_some_and(|r| !crate::download::marker::running(&dir, &r).is_empty())
            || crate::cache::lock::any_held(&dir, &folder_name)
        {
            return Err(ErrorPayload::new(
                ErrorCode::Conflict,
                format!("{id} is being downloaded: let it finish first"),
            ));
        }
        let repo = crate::hub::parse_repo_reference(id)
            .map_err(|e| ErrorPayload::new(ErrorCode::InvalidInput, e.to_string()))?
            .0;
        // Its activations, before its old place is gone (a listing would forget them then).
        let active: Vec<(ModelType, String)> =
            self.active().into_iter().filter(|(_, e)| e.id == id).map(|(t, e)| (t, e.revision)).collect();
        let (f, t, keep) = (from.clone(), to.clone(), settings.min_free_space.unwrap_or(0));
        let moved = tokio::task::spawn_blocking(move || crate::library::relocate::move_repo(&repo, &f, &t, keep));
        let report = joined(moved.await)??;
        tracing::info!(model = %id, from = %from.display(), to = %to.display(), bytes = report.bytes_copied, "moved");
        // Active from its old place: activated again where it is now.
        for (model_type, revision) in active {
            self.activate(id, Some(model_type.as_str()), Some(&revision)).await?;
        }
        self.changed(Vec::new());
        Ok(report)
    }

    /// Makes the room `room` says by removing its models (each a lifecycle event and a log line), for `repo`;
    /// refused, with what would go, unless `agreed`.
    pub(super) async fn make_room(&self, repo: &str, room: &Room, agreed: bool) -> Result<(), ErrorPayload> {
        let bytes = crate::format::bytes;
        if room.shortfall > 0 {
            return Err(ErrorPayload::new(
                ErrorCode::InsufficientSpace,
                format!(
                    "{repo} needs {} more room ({}), and removing every model nobody uses would free only {}: \
                     raise the limit, free space (mm du --clean), or unpin a model",
                    bytes(room.need_bytes),
                    room.why,
                    bytes(room.need_bytes - room.shortfall)
                ),
            ));
        }
        if !agreed {
            let names: Vec<String> = room.evict.iter().map(|e| format!("{} ({})", e.id, bytes(e.bytes))).collect();
            return Err(ErrorPayload::new(
                ErrorCode::InsufficientSpace,
                format!(
                    "{repo} needs {} more room ({}): removing the least recently used {} would make it; download \
                     with --evict (the API's evict: true) to remove them, or free space yourself",
                    bytes(room.need_bytes),
                    room.why,
                    names.join(", ")
                ),
            ));
        }
        // One eviction at a time, each model checked again just before it goes.
        let _one = self.inner.evicting.lock().await;
        for e in &room.evict {
            if self.is_loaded(&e.id) || self.active().values().any(|a| a.id == e.id) {
                return Err(ErrorPayload::new(
                    ErrorCode::Conflict,
                    format!("{} came into use meanwhile: try again", e.id),
                ));
            }
            tracing::info!(model = %e.id, bytes = e.bytes, last_used = ?e.last_used, "removed to make room for {repo}");
            match self.delete(&e.id, None, false).await {
                Ok(_) => {}
                // Gone already (another eviction took it): the room is made all the same.
                Err(err) if err.code == ErrorCode::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}
