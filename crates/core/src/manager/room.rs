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
        let settings = self.settings();
        let (cache_dir, models_dir) = (self.inner.cache_dir.clone(), crate::models_folder::models_dir(self.data_dir()));
        let used = blocking(move || {
            Ok::<u64, crate::library::LibraryError>(
                storage::report(&cache_dir)?.cache_bytes + folder_bytes(&models_dir),
            )
        })
        .await?;
        let Some((need, why)) = evict::need(
            preview.bytes_to_download,
            used,
            preview.free_space,
            settings.storage_limit,
            settings.min_free_space,
        ) else {
            return Ok(None);
        };
        let models = self.models_on_disk(settings.clone()).await?;
        let loaded: Vec<String> =
            self.loaded_now().iter().map(|m| m.id.split(':').next().unwrap_or(&m.id).to_string()).collect();
        let downloading: Vec<String> =
            self.inner.downloads.list().into_iter().filter(|d| !d.state.is_finished()).map(|d| d.repo).collect();
        let may_go = models
            .iter()
            .filter(|m| matches!(m.source, ModelSource::HuggingFace | ModelSource::Url))
            .filter(|m| m.id != preview.repo && m.status != crate::model::ModelStatus::Active && !m.pinned)
            .filter(|m| m.adapters.is_empty() && !settings.pinned.contains(&m.id))
            .filter(|m| !loaded.contains(&m.id) && !downloading.contains(&m.id))
            .map(|m| Eviction { id: m.id.clone(), bytes: m.size, last_used: m.last_used })
            .collect();
        let (evict, shortfall) = evict::plan(need, may_go);
        Ok(Some(Room { need_bytes: need, why, evict, shortfall }))
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
        for e in &room.evict {
            tracing::info!(model = %e.id, bytes = e.bytes, last_used = ?e.last_used, "removed to make room for {repo}");
            self.delete(&e.id, None, false).await?;
        }
        Ok(())
    }
}

/// The bytes of the files in the app's models folder.
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
