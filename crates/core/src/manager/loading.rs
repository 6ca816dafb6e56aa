//! The facade's loading operations: load, unload, what is loaded, and the watcher that follows the runtime host
//! for the faces (what `runtime` does, for a face).

use super::*;
use crate::settings::LoadSettings;

impl Manager {
    /// Loads a type's active model (`target` a type; none: text generation), or activates a model and loads it
    /// (`target` a model id); answered once it is ready. A loaded type whose model is the active one answers as
    /// it is; another model of the type loaded is swapped on the same endpoint.
    /// With `pin`, it is never unloaded for another model until it is unloaded.
    pub async fn load(
        &self,
        target: Option<&str>,
        context: Option<u64>,
        pin: bool,
    ) -> Result<LoadedModel, ErrorPayload> {
        let model_type = match target {
            None => ModelType::TextGeneration,
            Some(t) => match t.parse::<ModelType>() {
                Ok(model_type) => model_type,
                Err(_) => {
                    let (entry, _) = self.activate(t, None, None).await?;
                    entry.model_type
                }
            },
        };
        // Said here, so that no host is started for nothing.
        if !self.active().contains_key(&model_type) {
            return Err(crate::runtime::nothing_active(model_type));
        }
        let owner = self.inner.runtime_owner;
        let owner_pid = (owner != "mm").then(std::process::id);
        let mut loaded = self.inner.runtime.load(model_type, context, owner, owner_pid).await?;
        if pin {
            self.set_pinned(&loaded.id, true)?;
            loaded.pinned = true;
        }
        self.heard(RuntimeChange { id: loaded.id.clone(), loaded: Some(loaded.clone()) });
        self.runtime_started();
        self.used(&loaded.id);
        Ok(loaded)
    }

    /// Keeps a model's load settings (all of them; empty ones: none kept), checked. A loaded model is started again
    /// with them on its next request. (`mm serve` keeps their `extraArgs` the machine's own: `machine_only`.)
    pub async fn keep_load_settings(&self, id: &str, settings: LoadSettings) -> Result<LoadSettings, ErrorPayload> {
        let model = self.resolve(id).await?.model;
        settings.check().map_err(payload)?;
        let (kept, ()) = self
            .inner
            .store
            .update(|s| {
                if settings.is_empty() {
                    s.load_settings.remove(&model);
                } else {
                    s.load_settings.insert(model.clone(), settings);
                }
                Ok(())
            })
            .map_err(payload)?;
        let answer = kept.load_of(&model);
        self.settings_changed(kept);
        Ok(answer)
    }

    /// Links an adapter to `base` (none: back to the base it names or fits), kept in the settings; a GGUF adapter
    /// must fit the base.
    pub async fn link_adapter(&self, id: &str, base: Option<&str>) -> Result<LibraryModel, ErrorPayload> {
        let models = self.models_on_disk(self.settings()).await?;
        let find = |id: &str| {
            models.iter().find(|m| m.id == id).ok_or_else(|| {
                ErrorPayload::new(ErrorCode::NotFound, format!("no model {id} in the library (mm list names them)"))
            })
        };
        let adapter = find(id)?.adapter.clone().ok_or_else(|| {
            ErrorPayload::new(
                ErrorCode::InvalidInput,
                format!("{id} is not an adapter: only an adapter is linked to a base"),
            )
        })?;
        if let Some(base) = base {
            let model = find(base)?;
            if model.adapter.is_some() {
                return Err(ErrorPayload::new(
                    ErrorCode::InvalidInput,
                    format!("{base} is an adapter itself, not a base"),
                ));
            }
            if let Some(header) = crate::library::adapters::adapter_header(&adapter) {
                crate::library::adapters::fits(&header, model).map_err(|why| {
                    ErrorPayload::new(ErrorCode::Conflict, format!("{id} does not fit {base}: {why}"))
                })?;
            }
        }
        let (settings, ()) = self
            .inner
            .store
            .update(|s| {
                match base {
                    Some(base) => s.adapter_bases.insert(id.to_string(), base.to_string()),
                    None => s.adapter_bases.remove(id),
                };
                Ok(())
            })
            .map_err(payload)?;
        self.settings_changed(settings.clone());
        let models = self.models_on_disk(settings).await?;
        models
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| ErrorPayload::new(ErrorCode::NotFound, format!("{id} is gone")))
    }

    /// Marks a model pinned (never unloaded for another) or not, in the settings the runtime host reads.
    pub(super) fn set_pinned(&self, id: &str, pinned: bool) -> Result<(), ErrorPayload> {
        let (settings, ()) = self
            .inner
            .store
            .update(|s| {
                s.pinned.retain(|p| p != id);
                if pinned {
                    s.pinned.push(id.to_string());
                }
                Ok(())
            })
            .map_err(payload)?;
        self.settings_changed(settings);
        Ok(())
    }

    /// Keeps the last-heard loaded set in step with a change.
    fn heard(&self, change: RuntimeChange) {
        let mut last = self.inner.last_loaded.lock().expect("loaded");
        last.retain(|m| m.id != change.id);
        last.extend(change.loaded);
        last.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// Unloads a type (`target` a type: its models, and its endpoint closed), one model (a loaded model's id), or
    /// every loaded model (none). A pinned model unloaded is no longer pinned.
    pub async fn unload(&self, target: Option<&str>) -> Result<Vec<LoadedModel>, ErrorPayload> {
        let (model_type, id) = match target {
            None => (None, None),
            Some(t) => match t.parse::<ModelType>() {
                Ok(model_type) => (Some(model_type), None),
                Err(_) => (None, Some(t)),
            },
        };
        let unloaded = self.inner.runtime.unload(model_type, id, None).await?;
        for m in &unloaded {
            if m.pinned {
                self.set_pinned(&m.id, false)?;
            }
            self.heard(RuntimeChange { id: m.id.clone(), loaded: None });
        }
        Ok(unloaded)
    }

    /// What is loaded now, with its state, endpoint and memory.
    pub async fn loaded(&self) -> Vec<LoadedModel> {
        let loaded = self.inner.runtime.status().await;
        *self.inner.last_loaded.lock().expect("loaded") = loaded.clone();
        loaded
    }

    /// What was loaded when last heard, without asking the host.
    pub fn loaded_now(&self) -> Vec<LoadedModel> {
        self.inner.last_loaded.lock().expect("loaded").clone()
    }

    /// The runtime host's changes (loads, swaps, health, memory), for a face that shows them; relayed while the
    /// host runs, with [`Manager::watch_runtime`] started once.
    pub fn subscribe_runtime(&self) -> broadcast::Receiver<RuntimeChange> {
        self.inner.runtime_changes.subscribe()
    }

    /// Says a runtime host may have just started (this process loaded, or the window saw `active.json` change):
    /// [`Manager::watch_runtime`] connects at once.
    pub fn runtime_started(&self) {
        self.inner.runtime_started.notify_one();
    }

    /// Relays the runtime host's changes to [`Manager::subscribe_runtime`] for as long as this process lives,
    /// reconnecting when a host starts again: at once when told ([`Manager::runtime_started`]), else within a
    /// minute, so that an idle app does not wake up for it.
    pub fn watch_runtime(&self) {
        let manager = self.clone();
        tokio::spawn(async move {
            loop {
                if let Some(mut watch) = manager.inner.runtime.watch().await {
                    // What happened while no one listened.
                    for loaded in manager.loaded().await {
                        let change = RuntimeChange { id: loaded.id.clone(), loaded: Some(loaded) };
                        let _ = manager.inner.runtime_changes.send(change);
                    }
                    while let Some(change) = watch.next().await {
                        manager.heard(change.clone());
                        let _ = manager.inner.runtime_changes.send(change);
                    }
                    // The host ended: whatever it had not said it unloaded is gone with it.
                    let before = manager.loaded_now();
                    let now = manager.loaded().await;
                    for gone in before.iter().filter(|m| !now.iter().any(|n| n.id == m.id)) {
                        let _ = manager.inner.runtime_changes.send(RuntimeChange { id: gone.id.clone(), loaded: None });
                    }
                }
                let idle = tokio::time::sleep(std::time::Duration::from_secs(60));
                tokio::select! {
                    _ = idle => {}
                    _ = manager.inner.runtime_started.notified() => {}
                }
            }
        });
    }
}
