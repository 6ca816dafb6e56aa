//! The facade's figures (the specification's `getStatistics()`): the models by type, status and source, the bytes
//! in each folder the library reads, downloads under way, what is loaded and the requests each answered, and the
//! files the Hub mirror served.

use super::*;
use serde::Serialize;

/// What this machine holds and does, in numbers.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ts_rs::TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    pub models: u32,
    pub by_type: BTreeMap<String, u32>,
    pub by_status: BTreeMap<String, u32>,
    pub by_source: BTreeMap<String, u32>,
    /// The bytes of each folder the library reads (the cache, the library folders, the app's models folder).
    pub folders: Vec<FolderBytes>,
    pub downloads_running: u32,
    pub downloads_queued: u32,
    pub models_loaded: u32,
    /// Requests each loaded model answered since it was loaded.
    pub requests: BTreeMap<String, u64>,
    /// Files this process's Hub mirror served since it started.
    pub mirror_hits: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ts_rs::TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FolderBytes {
    pub path: String,
    pub bytes: u64,
    /// `cache` (where downloads go), `library-folder`, or `models-folder` (imports and URL downloads); a model of
    /// the first two moves between them (`move_model`).
    pub kind: String,
}

fn name<T: Serialize>(value: T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl Manager {
    /// The machine's figures.
    pub async fn statistics(&self) -> Result<Statistics, ErrorPayload> {
        let models = self.models(LibraryQuery::default()).await?;
        let mut stats = Statistics {
            models: models.len() as u32,
            by_type: BTreeMap::new(),
            by_status: BTreeMap::new(),
            by_source: BTreeMap::new(),
            folders: Vec::new(),
            downloads_running: 0,
            downloads_queued: 0,
            models_loaded: 0,
            requests: BTreeMap::new(),
            mirror_hits: self.inner.mirror_hits.load(std::sync::atomic::Ordering::Relaxed),
        };
        for m in models.iter() {
            *stats.by_type.entry(name(m.model_type)).or_default() += 1;
            *stats.by_status.entry(name(m.status)).or_default() += 1;
            *stats.by_source.entry(name(m.source)).or_default() += 1;
        }
        let settings = self.settings();
        let kind = |source| if source == crate::model::ModelSource::HuggingFace { "cache" } else { "library-folder" };
        let mut folders: Vec<(PathBuf, &str)> =
            list::sources(&self.inner.cache_dir, &settings).into_iter().map(|(p, source)| (p, kind(source))).collect();
        folders.push((crate::models_folder::models_dir(self.data_dir()), "models-folder"));
        stats.folders = blocking(move || {
            Ok::<_, crate::library::LibraryError>(
                folders
                    .into_iter()
                    .map(|(p, kind)| FolderBytes {
                        bytes: crate::disk::tree_bytes(&p),
                        path: p.display().to_string(),
                        kind: kind.into(),
                    })
                    .collect(),
            )
        })
        .await?;
        for d in self.inner.downloads.list() {
            match d.state {
                DownloadState::Queued => stats.downloads_queued += 1,
                s if !s.is_finished() && s != DownloadState::Paused => stats.downloads_running += 1,
                _ => {}
            }
        }
        let loaded = self.loaded().await;
        stats.models_loaded = loaded.len() as u32;
        stats.requests = loaded.into_iter().map(|m| (m.id, m.requests)).collect();
        Ok(stats)
    }

    /// The Hub mirror served a file of `repo`: a hit, and a use of the model when it is `held` here (one only
    /// listed from the upstream is not recorded).
    pub fn mirror_served(&self, repo: &str, held: bool) {
        self.inner.mirror_hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if held {
            self.used(repo);
        }
    }
}
