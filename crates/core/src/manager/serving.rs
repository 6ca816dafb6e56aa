//! Every model by name, for the one model endpoint (`/v1` and Ollama's `/api` on `mm serve`): which names there
//! are ([`Manager::served_models`]), what a name means ([`Manager::resolve`]), and a hold on the model for one
//! request, loaded first when it is not ([`Manager::hold`]).
//!
//! A name is one the library lists, never a path: a repo id (`org/name`, or `hf.co/org/name`, Ollama's way of
//! naming a Hub model), one of its GGUF quantisations (`org/name:Q4_K_M`), a local model's id (`local/...`), an
//! Ollama model (`ollama/llama3.2:1b`), or a type (`text-generation`, `embedding`...) for its active model.

use super::*;
use crate::runtime::client::ModelHold;
use crate::runtime::{RuntimeKind, RuntimeState, Target};

/// One model the endpoint serves by name.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServedModel {
    /// The name a request gives as its `model`.
    pub id: String,
    pub model_type: ModelType,
    pub runtime: RuntimeKind,
    /// Its state when it is loaded, loading or stopped; none when it is not loaded.
    pub state: Option<RuntimeState>,
    /// The context it runs with, when loaded.
    pub context: Option<u64>,
    /// For a type's name or a repo's bare id: the model it means.
    pub alias_of: Option<String>,
    /// For an adapter (`BASE+ADAPTER`): the base it runs on.
    pub parent: Option<String>,
    /// Bytes on disk.
    pub size: u64,
    /// Unix seconds it was downloaded or added.
    pub created: u64,
}

/// Longest model name taken.
const MAX_NAME: usize = 256;

impl Manager {
    /// What a request's `model` names: the model and its file, from the library (404 for a name it does not list,
    /// 400 for one that cannot be a name).
    ///
    /// `BASE+ADAPTER` names a GGUF adapter linked to its base: the base, loaded with its adapters, with that one
    /// applied to the request. A base runs with every adapter linked to it loaded and none applied.
    pub async fn resolve(&self, name: &str) -> Result<Target, ErrorPayload> {
        let name = check_name(name)?;
        match self.resolve_model(name).await {
            Err(e) if e.code == ErrorCode::NotFound && name.contains('+') => {
                let (base, adapter) = name.rsplit_once('+').expect("a +");
                let mut target = self.resolve_model(base).await.map_err(|_| e.clone())?;
                target.adapter = target.adapters.iter().any(|(id, _)| id == adapter).then(|| adapter.to_string());
                if target.adapter.is_none() {
                    return Err(ErrorPayload::new(
                        ErrorCode::NotFound,
                        format!(
                            "{adapter} is not an adapter linked to {base}: GET /v1/models lists the BASE+ADAPTER names"
                        ),
                    ));
                }
                Ok(target)
            }
            other => other,
        }
    }

    /// `target` with the GGUF adapters linked to its model (sorted by id); an adapter itself is refused, with the
    /// name that runs it.
    async fn with_adapters(&self, mut target: Target) -> Result<Target, ErrorPayload> {
        if target.runtime != RuntimeKind::LlamaServer {
            return Ok(target);
        }
        let models = self.models_on_disk(self.settings()).await?;
        if let Some(adapter) = models.iter().find(|m| m.id == target.model).and_then(|m| m.adapter.as_ref()) {
            let hint = adapter.base.as_deref().map_or_else(
                || adapter.problem.clone().unwrap_or_default(),
                |base| format!("name it with its base: {base}+{}", target.model),
            );
            return Err(ErrorPayload::new(
                ErrorCode::InvalidInput,
                format!("{} is an adapter, which runs on a base model: {hint}", target.model),
            ));
        }
        target.adapters = crate::library::adapters::runnable(&models, &target.model);
        Ok(target)
    }

    async fn resolve_model(&self, name: &str) -> Result<Target, ErrorPayload> {
        // The settings as the file says now: another face may have activated a model or chosen a type.
        let settings = self.settings_now();
        if let Ok(model_type) = name.parse::<ModelType>() {
            let mut active = self.inner.activation.entries(&settings);
            let entry = active.remove(&model_type).ok_or_else(|| crate::runtime::nothing_active(model_type))?;
            return Ok(Target::from(&entry));
        }
        let types = settings.model_types;
        // A name resolved before, whose file is still there and whose type is the same, means the same now.
        if let Some((t, chosen)) = self.inner.resolved.lock().expect("resolved").get(name).cloned() {
            let there = |f: &str| Path::new(f).is_file();
            if t.file.as_deref().is_some_and(there)
                && t.adapters.iter().all(|(_, f)| there(f))
                && types.get(&t.id) == chosen.as_ref()
            {
                return Ok(t);
            }
        }
        let target = self.with_adapters(self.resolve_anew(name).await?).await?;
        let chosen = types.get(&target.id).cloned();
        let mut resolved = self.inner.resolved.lock().expect("resolved");
        if resolved.len() > 1024 {
            resolved.clear();
        }
        resolved.insert(name.to_string(), (target.clone(), chosen));
        Ok(target)
    }

    async fn resolve_anew(&self, name: &str) -> Result<Target, ErrorPayload> {
        let unknown = || {
            ErrorPayload::new(
                ErrorCode::NotFound,
                format!("no model is named {name:?} here: GET /v1/models lists the names (mm list the models)"),
            )
        };
        let settings = self.settings_now();
        if let Some(ollama_name) = name.strip_prefix(OLLAMA_PREFIX) {
            let listed = self.inner.ollama.models(&settings).await.into_iter().find(|m| m.id == name);
            let model = listed.ok_or_else(unknown)?;
            let file = self.inner.ollama.model_file(ollama_name).await.map_err(payload)?;
            return Ok(Target {
                id: name.to_string(),
                model: name.to_string(),
                model_type: model.model_type,
                file: Some(file.display().to_string()),
                format: crate::model::ModelFormat::Gguf,
                runtime: RuntimeKind::Ollama,
                adapters: Vec::new(),
                adapter: None,
            });
        }
        if let Some(local) = crate::local::list::find(&settings, self.data_dir(), name) {
            if local.model.format != crate::model::ModelFormat::Gguf || !local.path.is_file() {
                return Err(not_runnable(name, local.model.format));
            }
            return Ok(Target {
                id: local.model.id.clone(),
                model: local.model.id.clone(),
                model_type: local.model.model_type,
                file: Some(local.path.display().to_string()),
                format: local.model.format,
                runtime: RuntimeKind::LlamaServer,
                adapters: Vec::new(),
                adapter: None,
            });
        }
        let name = name.strip_prefix("hf.co/").or_else(|| name.strip_prefix("huggingface.co/")).unwrap_or(name);
        let (repo_id, quant) = match name.split_once(':') {
            Some((repo, quant)) => (repo, Some(quant)),
            None => (name, None),
        };
        let (cache, settings_for_scan, id) = (self.cache_dir().to_path_buf(), settings.clone(), repo_id.to_string());
        let found =
            joined(tokio::task::spawn_blocking(move || list::find_repo(&cache, &settings_for_scan, &id)).await)?;
        let (repo, source, _) = found.map_err(|_| unknown())?;
        let model = crate::library::list::model_of(&repo, source, &settings);
        let revision = repo.revisions.first().filter(|r| r.missing.is_empty()).ok_or_else(|| {
            ErrorPayload::new(
                ErrorCode::NotFound,
                format!("{repo_id} is not complete on this machine: finish its download (mm download {repo_id})"),
            )
        })?;
        let quants = crate::discover::details::quantisations(revision.files.iter().map(|f| (f.path.as_str(), f.size)));
        let chosen = match quant {
            Some(q) => quants.iter().find(|x| x.name.eq_ignore_ascii_case(q)).ok_or_else(|| {
                let names: Vec<&str> = quants.iter().map(|x| x.name.as_str()).collect();
                ErrorPayload::new(
                    ErrorCode::NotFound,
                    format!("{repo_id} has no quantisation {q} here (it has: {})", names.join(", ")),
                )
            })?,
            None => self.best_quantisation(&quants).await.ok_or_else(|| not_runnable(repo_id, model.format))?,
        };
        let snapshot = Path::new(&repo.path).join("snapshots").join(&revision.commit);
        let id = if quants.len() > 1 { format!("{}:{}", repo.repo_id, chosen.name) } else { repo.repo_id.clone() };
        Ok(Target {
            id,
            model: repo.repo_id.clone(),
            model_type: model.model_type,
            file: Some(snapshot.join(&chosen.files[0]).display().to_string()),
            format: crate::model::ModelFormat::Gguf,
            runtime: RuntimeKind::LlamaServer,
            adapters: Vec::new(),
            adapter: None,
        })
    }

    /// The settings as the file holds them now: read again (and taken by this process) only when the file changed
    /// since it was last read, which a look at its time and length tells (a request must not wait on a lock, a
    /// parse and the keyring).
    pub fn settings_now(&self) -> Settings {
        let stamp = std::fs::metadata(self.inner.store.path()).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        let mut last = self.inner.settings_stamp.lock().expect("stamp");
        // No file then and now: the defaults read at the start are still what it says.
        if *last != stamp && self.reload_settings().is_ok() {
            *last = stamp;
        }
        drop(last);
        self.settings()
    }

    /// The largest quantisation whose files fit the memory free now (less the reserve), else the smallest.
    async fn best_quantisation<'a>(
        &self,
        quants: &'a [crate::discover::details::Quantisation],
    ) -> Option<&'a crate::discover::details::Quantisation> {
        if quants.len() <= 1 {
            return quants.first();
        }
        let cache = self.cache_dir().to_path_buf();
        let hw = tokio::task::spawn_blocking(move || hardware::probe(&cache)).await.ok()?;
        let free = (hw.ram_available + hw.gpus.iter().map(|g| g.vram_free).max().unwrap_or(0))
            .saturating_sub(self.settings().memory_reserve);
        // Sorted smallest first.
        quants.iter().rev().find(|q| q.size <= free).or(quants.first())
    }

    /// Every name the endpoint answers to: each runnable model (GGUF, or Ollama's), each quantisation of a repo
    /// holding several, each GGUF adapter on its base (`BASE+ADAPTER`), and each active type.
    pub async fn served_models(&self) -> Vec<ServedModel> {
        // The library as the settings file says now (another face may have imported a model).
        self.settings_now();
        let models = self.models(LibraryQuery::default()).await.unwrap_or_default();
        // The GGUF adapters each base runs, by base id.
        let runnable = crate::library::adapters::runnable_by_base(&models);
        let adapters_of = |m: &LibraryModel| runnable.get(&m.id).into_iter().flatten().map(|(id, _)| id.clone());
        let loaded = self.loaded().await;
        let state_of =
            |id: &str| loaded.iter().find(|m| m.id == id).map(|m| (m.state, m.plan.as_ref().map(|p| p.context)));
        let settings = self.settings();
        let disk = self.library(&settings).await.ok();
        let mut out = Vec::new();
        for m in models.iter() {
            let runtime = match (m.source, m.format) {
                (crate::model::ModelSource::Ollama, _) => RuntimeKind::Ollama,
                (_, crate::model::ModelFormat::Gguf) => RuntimeKind::LlamaServer,
                _ => continue,
            };
            let entry = |id: String, alias_of: Option<String>, size: u64| {
                let (state, context) = state_of(&id).map_or((None, None), |(s, c)| (Some(s), c));
                ServedModel {
                    id,
                    model_type: m.model_type,
                    runtime,
                    state,
                    context,
                    alias_of,
                    parent: None,
                    size,
                    created: m.downloaded_at.unwrap_or(0),
                }
            };
            // An adapter runs on its base, as `BASE+ADAPTER` (listed with the base, below).
            if m.adapter.is_some() {
                continue;
            }
            let quants = match (m.source, disk.as_ref().and_then(|d| d.disk.gguf_files.get(&m.id))) {
                (crate::model::ModelSource::HuggingFace | crate::model::ModelSource::Folder, Some(files)) => {
                    crate::discover::details::quantisations(files.iter().map(|(path, size)| (path.as_str(), *size)))
                }
                _ => Vec::new(),
            };
            if quants.len() > 1 {
                let loaded_quant = loaded.iter().find(|l| l.id.split_once(':').is_some_and(|(r, _)| r == m.id));
                out.push(entry(m.id.clone(), loaded_quant.map(|l| l.id.clone()), m.size));
                for q in &quants {
                    out.push(entry(format!("{}:{}", m.id, q.name), None, q.size));
                }
            } else {
                out.push(entry(m.id.clone(), None, m.size));
            }
            for adapter in adapters_of(m) {
                let mut e = entry(m.id.clone(), None, m.size);
                e.id = format!("{}+{adapter}", m.id);
                e.parent = Some(m.id.clone());
                out.push(e);
            }
        }
        for (model_type, active) in self.inner.activation.entries(&self.settings_now()) {
            let alias = out.iter().find(|s| s.id == active.id && s.parent.is_none()).cloned();
            let Some(mut alias) = alias else { continue };
            alias.alias_of = Some(active.id.clone());
            alias.id = model_type.to_string();
            out.push(alias);
        }
        out
    }

    /// Holds the model `name` means for one request, loading it first when it is not loaded (within the memory
    /// the runtime host's scheduler measures); the hold ends when the returned value is dropped. What this process
    /// loads this way is unloaded when it ends, unless `mm load` claimed it since.
    pub async fn hold(&self, name: &str, keep_alive: Option<i64>) -> Result<ModelHold, ErrorPayload> {
        // In a task of its own: a request that goes away (its client closed) does not end the load it started.
        let (manager, name) = (self.clone(), name.to_string());
        joined(tokio::spawn(async move { manager.hold_here(&name, keep_alive).await }).await)?
    }

    async fn hold_here(&self, name: &str, keep_alive: Option<i64>) -> Result<ModelHold, ErrorPayload> {
        let target = self.resolve(name).await?;
        if target.format != crate::model::ModelFormat::Gguf {
            return Err(not_runnable(&target.id, target.format));
        }
        let owner = self.inner.runtime_owner;
        let owner_pid = (owner != "mm").then(std::process::id);
        self.used(&target.model);
        let adapter = target.adapter.clone();
        let mut hold = self.inner.runtime.acquire(target, keep_alive, owner, owner_pid).await?;
        hold.adapter = adapter;
        if hold.acquired.waited_ms > 0 {
            self.runtime_started();
        }
        Ok(hold)
    }
}

/// A name as given: refused when it is empty, too long, or could only be a path.
fn check_name(name: &str) -> Result<&str, ErrorPayload> {
    let bad = |why: &str| ErrorPayload::new(ErrorCode::InvalidInput, format!("{name:?} is not a model name: {why}"));
    let name = name.trim();
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_NAME {
        return Err(bad("it is too long"));
    }
    if name.chars().any(|c| c.is_control() || c == '\\')
        || name.starts_with('/')
        || name.starts_with('~')
        || name.split('/').any(|part| part == ".." || part == ".")
    {
        return Err(bad("a model is named by its id (GET /v1/models lists them), never by a path"));
    }
    Ok(name)
}

fn not_runnable(id: &str, format: crate::model::ModelFormat) -> ErrorPayload {
    ErrorPayload::new(
        ErrorCode::InvalidInput,
        format!("{id} has no GGUF file: the endpoint runs GGUF models with llama-server (this one is {format:?})"),
    )
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_that_could_only_be_paths_are_refused() {
        for bad in ["", "  ", "/etc/passwd", "../x", "org/../../etc", "a\\b", "~/m.gguf", "a\nb", "./m"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["org/name", "org/name:Q4_K_M", "local/a.gguf", "ollama/llama3.2:1b", "text-generation"] {
            assert_eq!(check_name(good).unwrap(), good);
        }
    }
}
