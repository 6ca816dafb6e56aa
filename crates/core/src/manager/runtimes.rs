//! The facade's llama.cpp builds ([`crate::runtime::builds`]): which ones the machine has and which one loads
//! models (the `llamaServer` setting, else the one on `PATH`, else the newest the app got), getting one from the
//! release source and making it the default once it ran here, going back, removing one.

use super::*;
use crate::operations::{GetRuntime, RuntimeRemoved, Runtimes};
use crate::runtime::builds::{self, GetProgress, RuntimeBuild, Want};

/// llama.cpp's own releases, in GitHub's API.
pub const LLAMA_CPP_RELEASES: &str = "https://api.github.com/repos/ggml-org/llama.cpp/releases";

impl Manager {
    /// The builds of this machine and the one that loads models.
    pub async fn runtimes(&self) -> Runtimes {
        let settings = self.settings();
        let builds = builds::list(self.data_dir(), settings.llama_server.as_deref()).await;
        let default = crate::runtime::host::find_llama_server(&settings, self.data_dir()).ok();
        Runtimes {
            builds,
            default: default.map(|p| p.display().to_string()),
            previous: settings.previous_llama_server.clone().or_else(|| {
                // The setting was set by a `use`, from nothing: a rollback clears it again.
                settings.llama_server.as_ref().map(|_| "path".to_string())
            }),
            releases: releases_of(&settings),
        }
    }

    /// Gets llama.cpp for this machine, tries it (with the smallest text-generation GGUF of the library, when it
    /// has one of under 1 GB) and makes it the default.
    pub async fn get_runtime(
        &self,
        ask: GetRuntime,
        on_progress: impl FnMut(GetProgress) + Send + 'static,
    ) -> Result<RuntimeBuild, ErrorPayload> {
        let settings = self.settings();
        let releases = releases_of(&settings);
        // The digest comes from the same source: over plain HTTP anyone on the way could hand over any program.
        let url = reqwest::Url::parse(&releases)
            .map_err(|e| ErrorPayload::new(ErrorCode::InvalidInput, format!("llamaCppReleases {releases:?}: {e}")))?;
        let loopback = url
            .host_str()
            .is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
        if url.scheme() != "https" && !loopback {
            return Err(ErrorPayload::new(
                ErrorCode::InvalidInput,
                format!("llamaCppReleases must be an https URL ({releases} is not): the digest it lists is all that vouches for the program"),
            ));
        }
        let hw = self.system().await?;
        let want = Want {
            release: ask.release,
            backend: ask.backend,
            gpu_vendors: hw.gpus.iter().map(|g| g.vendor.clone()).collect(),
        };
        let try_model = self.smallest_model(&settings).await;
        let http = self
            .hub_config(&settings)
            .proxies
            .apply(reqwest::Client::builder())
            .connect_timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| ErrorPayload::new(ErrorCode::Internal, e.to_string()))?;
        let build = builds::get(&http, self.data_dir(), &releases, want, try_model.as_deref(), on_progress).await?;
        self.make_default(Some(build.path.clone()))?;
        tracing::info!(build = %build.name, "llama.cpp build got and made the default");
        Ok(build)
    }

    /// Makes the build named `name` (`path`: the one on `PATH`) the one that loads models.
    pub async fn use_runtime(&self, name: &str) -> Result<Runtimes, ErrorPayload> {
        let program = match name {
            "path" => None,
            name => Some(builds::program_of(self.data_dir(), name).ok_or_else(|| unknown_build(name))?),
        };
        self.make_default(program.map(|p| p.display().to_string()))?;
        Ok(self.runtimes().await)
    }

    /// Back to the build before the last change.
    pub async fn rollback_runtime(&self) -> Result<Runtimes, ErrorPayload> {
        let settings = self.settings();
        if settings.llama_server.is_none() && settings.previous_llama_server.is_none() {
            return Err(ErrorPayload::new(ErrorCode::NotFound, "no build was the default before this one"));
        }
        let before = settings.previous_llama_server.clone().filter(|p| p != "path");
        self.make_default(before)?;
        Ok(self.runtimes().await)
    }

    /// Removes a build the app got; the default is refused.
    pub async fn remove_runtime(&self, name: &str) -> Result<RuntimeRemoved, ErrorPayload> {
        let program = builds::program_of(self.data_dir(), name).ok_or_else(|| unknown_build(name))?;
        if self.settings().llama_server.as_deref() == Some(program.display().to_string().as_str()) {
            return Err(ErrorPayload::new(
                ErrorCode::Conflict,
                format!("{name} loads models here: make another build the default first (mm runtime use NAME)"),
            ));
        }
        let bytes_freed = builds::remove(self.data_dir(), name)?;
        Ok(RuntimeRemoved { name: name.to_string(), bytes_freed })
    }

    /// Sets the `llamaServer` setting (none: the one on `PATH`), keeping what it was for a rollback.
    fn make_default(&self, program: Option<String>) -> Result<(), ErrorPayload> {
        let (settings, ()) = self
            .inner
            .store
            .update(|s| {
                if s.llama_server != program {
                    s.previous_llama_server = Some(s.llama_server.clone().unwrap_or_else(|| "path".into()));
                    s.llama_server = program;
                }
                Ok(())
            })
            .map_err(payload)?;
        self.settings_changed(settings);
        Ok(())
    }

    /// The smallest text-generation GGUF file of the library under 1 GB, to try a build with.
    async fn smallest_model(&self, settings: &Settings) -> Option<std::path::PathBuf> {
        let models = self.models_on_disk(settings.clone()).await.ok()?;
        let mut files: Vec<(u64, String)> = Vec::new();
        for m in models
            .iter()
            .filter(|m| m.model_type == ModelType::TextGeneration && m.format == crate::model::ModelFormat::Gguf)
        {
            if let Ok(target) = self.resolve(&m.id).await {
                if let Some(file) = target.file {
                    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(u64::MAX);
                    files.push((size, file));
                }
            }
        }
        files.into_iter().filter(|(size, _)| *size < 1 << 30).min().map(|(_, f)| f.into())
    }
}

fn releases_of(settings: &Settings) -> String {
    settings.llama_cpp_releases.clone().unwrap_or_else(|| LLAMA_CPP_RELEASES.to_string())
}

fn unknown_build(name: &str) -> ErrorPayload {
    ErrorPayload::new(
        ErrorCode::NotFound,
        format!("no llama.cpp build is named {name:?} here (mm runtime list names them; `path` is the one on PATH)"),
    )
}
