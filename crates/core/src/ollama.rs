//! A local Ollama server as a source: its models in the library (`GET /api/tags`), pulls with progress (`POST
//! /api/pull`, newline-delimited JSON), and deletes (`DELETE /api/delete`). It is found at `OLLAMA_HOST` (default
//! `127.0.0.1:11434`). When it does not answer, it is reported unavailable once, quietly, and lists nothing.

use crate::error::{Coded, ErrorCode};
use crate::model::{LibraryModel, ModelFormat, ModelSource, ModelStatus, ModelType, TypeOrigin};
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use ts_rs::TS;

/// The prefix of Ollama models' ids: `ollama/{name:tag}`.
pub const OLLAMA_PREFIX: &str = "ollama/";
pub const DEFAULT_HOST: &str = "127.0.0.1:11434";

/// The longest progress line a pull may send, and the largest JSON answer read.
const MAX_LINE: usize = 1 << 20;
const MAX_ANSWER: usize = 16 << 20;
/// How long a short question (show, delete) may take in all.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum OllamaError {
    #[error("Ollama is not running at {host} ({reason}): start it (`ollama serve`) or set OLLAMA_HOST")]
    Unavailable { host: String, reason: String },
    #[error("Ollama has no model \"{0}\": check the name (for example llama3.2:1b)")]
    NotFound(String),
    #[error("Ollama could not pull {name}: {message}")]
    Pull { name: String, message: String },
    #[error("\"{0}\" is not an Ollama model name (letters, digits, '.', '-', '_', '/' and one ':tag')")]
    InvalidName(String),
    #[error("Ollama at {host} answered {status}: {message}")]
    Status { host: String, status: u16, message: String },
    #[error("the pull of {0} was cancelled")]
    Cancelled(String),
}

impl Coded for OllamaError {
    fn code(&self) -> ErrorCode {
        match self {
            OllamaError::Unavailable { .. } | OllamaError::Pull { .. } | OllamaError::Status { .. } => {
                ErrorCode::Network
            }
            OllamaError::NotFound(_) => ErrorCode::NotFound,
            OllamaError::InvalidName(_) => ErrorCode::InvalidInput,
            OllamaError::Cancelled(_) => ErrorCode::Cancelled,
        }
    }
}

/// Whether the Ollama server answers, and where it is looked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OllamaStatus {
    pub host: String,
    pub available: bool,
}

/// One line of a pull's progress, as Ollama streams it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PullProgress {
    pub name: String,
    /// `pulling manifest`, `pulling sha256:…`, `verifying sha256 digest`, `writing manifest`, `success`.
    pub status: String,
    /// Bytes of the layer being pulled, when it is one.
    pub completed: u64,
    pub total: u64,
}

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    models: Vec<TagModel>,
}

/// One model as `/api/tags` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct TagModel {
    pub name: String,
    #[serde(default)]
    pub size: u64,
    /// ISO 8601 with the server's offset.
    #[serde(default)]
    pub modified_at: String,
    #[serde(default)]
    pub details: TagDetails,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct TagDetails {
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub families: Option<Vec<String>>,
}

impl TagModel {
    /// Every family it belongs to, lower case, comma-separated.
    fn families(&self) -> String {
        let mut all = self.details.families.clone().unwrap_or_default();
        all.push(self.details.family.clone());
        all.join(",").to_ascii_lowercase()
    }
}

#[derive(Deserialize)]
struct PullLine {
    #[serde(default)]
    status: String,
    #[serde(default)]
    completed: u64,
    #[serde(default)]
    total: u64,
    error: Option<String>,
}

/// Not asked yet, answering, not answering.
const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// The Ollama server at one address.
pub struct Ollama {
    http: reqwest::Client,
    base: reqwest::Url,
    host: String,
    state: AtomicU8,
    /// When it last failed to answer: the library does not ask again for [`RETRY_AFTER`].
    down_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// The models of the last listing, for what must not wait on the network (the tray's menu).
    last: std::sync::Mutex<Vec<LibraryModel>>,
}

/// How long a server that did not answer is left alone by the library listing.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

impl Ollama {
    /// At `OLLAMA_HOST`, else the default address.
    pub fn from_env() -> Ollama {
        Ollama::new(std::env::var("OLLAMA_HOST").ok().as_deref().unwrap_or(DEFAULT_HOST))
    }

    /// `host` as Ollama reads `OLLAMA_HOST`: `host`, `host:port`, or a URL; `0.0.0.0` means this machine.
    pub fn new(host: &str) -> Ollama {
        let host = host.trim();
        let with_scheme = if host.contains("://") { host.to_string() } else { format!("http://{host}") };
        let mut base = reqwest::Url::parse(&with_scheme)
            .unwrap_or_else(|_| reqwest::Url::parse(&format!("http://{DEFAULT_HOST}")).expect("the default parses"));
        if base.host_str() == Some("0.0.0.0") {
            let _ = base.set_host(Some("127.0.0.1"));
        }
        if base.port().is_none() && !host.contains("://") {
            let _ = base.set_port(Some(11434));
        }
        // Ollama on this machine is never reached through a proxy; one on another goes the way downloads go.
        let local = base.host_str().is_some_and(crate::listen::is_loopback_name);
        let proxies = if local { crate::proxy::Proxies::default() } else { crate::proxy::Proxies::from_env() };
        let http = proxies
            .apply(reqwest::Client::builder())
            .connect_timeout(Duration::from_millis(800))
            .build()
            .expect("a plain HTTP client builds");
        Ollama {
            http,
            host: base.as_str().trim_end_matches('/').to_string(),
            base,
            state: AtomicU8::new(UNKNOWN),
            down_since: std::sync::Mutex::new(None),
            last: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the server answered the last time it was asked (`None` before the first time).
    pub fn available(&self) -> Option<bool> {
        match self.state.load(Ordering::Relaxed) {
            UP => Some(true),
            DOWN => Some(false),
            _ => None,
        }
    }

    fn url(&self, path: &str) -> reqwest::Url {
        self.base.join(path).expect("a fixed API path joins")
    }

    fn unavailable(&self, e: &reqwest::Error) -> OllamaError {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        OllamaError::Unavailable { host: self.host.clone(), reason }
    }

    /// The installed models as the server lists them.
    pub async fn tags(&self) -> Result<Vec<TagModel>, OllamaError> {
        let answer = self.http.get(self.url("/api/tags")).timeout(Duration::from_secs(2)).send().await;
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                self.state.store(DOWN, Ordering::Relaxed);
                *self.down_since.lock().unwrap() = Some(std::time::Instant::now());
                return Err(self.unavailable(&e));
            }
        };
        self.state.store(UP, Ordering::Relaxed);
        *self.down_since.lock().unwrap() = None;
        let status = response.status();
        if !status.is_success() {
            return Err(OllamaError::Status {
                host: self.host.clone(),
                status: status.as_u16(),
                message: status.to_string(),
            });
        }
        let tags: Tags = self.read_json(response, "/api/tags").await?;
        Ok(tags.models)
    }

    /// The server's models as library entries; none (and no error) when it is not running. A server that did
    /// not answer is not asked again for [`RETRY_AFTER`], so that the library never waits on it twice.
    pub async fn models(&self, settings: &Settings) -> Vec<LibraryModel> {
        if self.down_since.lock().unwrap().is_some_and(|t| t.elapsed() < RETRY_AFTER) {
            return Vec::new();
        }
        let Ok(tags) = self.tags().await else {
            self.last.lock().unwrap().clear();
            return Vec::new();
        };
        let models: Vec<LibraryModel> = tags
            .into_iter()
            .map(|tag| {
                let id = format!("{OLLAMA_PREFIX}{}", tag.name);
                let family = tag.families();
                let guessed = if family.contains("bert") || family.contains("embed") {
                    ModelType::Embedding
                } else {
                    ModelType::TextGeneration
                };
                let (model_type, type_origin, active, last_used) =
                    settings.user_view(&id, (guessed, TypeOrigin::Files));
                let name = &tag.name;
                LibraryModel {
                    display_name: name.clone(),
                    source: ModelSource::Ollama,
                    model_type,
                    type_origin,
                    status: if active { ModelStatus::Active } else { ModelStatus::Available },
                    revision: Some(
                        name.rsplit_once(':').map(|(_, t)| t.to_string()).unwrap_or_else(|| "latest".into()),
                    ),
                    commit: None,
                    revisions: 1,
                    files: 1,
                    size: tag.size,
                    format: if tag.details.format == "gguf" { ModelFormat::Gguf } else { ModelFormat::Other },
                    downloaded_at: unix_of_iso(&tag.modified_at),
                    last_used,
                    path: format!("{}/{name}", self.host),
                    pipeline_tag: None,
                    library_name: Some("ollama".into()),
                    architectures: Vec::new(),
                    tags: Vec::new(),
                    gated: false,
                    error: None,
                    download_id: None,
                    adapter: None,
                    adapters: Vec::new(),
                    pinned: false,
                    id,
                }
            })
            .collect();
        *self.last.lock().unwrap() = models.clone();
        models
    }

    /// The models of the last listing, without asking the server (empty before the first, or when it was down).
    pub fn cached_models(&self) -> Vec<LibraryModel> {
        self.last.lock().unwrap().clone()
    }

    /// Pulls a model, reporting each progress line; an `error` line (even mid-stream) ends it with that message.
    pub async fn pull(
        &self,
        name: &str,
        mut progress: impl FnMut(&PullProgress),
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<(), OllamaError> {
        check_name(name)?;
        let request =
            self.http.post(self.url("/api/pull")).json(&serde_json::json!({ "model": name, "stream": true })).send();
        let mut response = tokio::select! {
            _ = cancel.cancelled() => return Err(OllamaError::Cancelled(name.into())),
            r = request => r.map_err(|e| self.unavailable(&e))?,
        };
        let status = response.status();
        if !status.is_success() {
            let body = self.error_body(response).await;
            return Err(pull_error(name, &error_text(&body).unwrap_or_else(|| status.to_string())));
        }
        let mut buffer = Vec::new();
        let mut succeeded = false;
        loop {
            let chunk = tokio::select! {
                _ = cancel.cancelled() => return Err(OllamaError::Cancelled(name.into())),
                c = response.chunk() => c.map_err(|e| OllamaError::Pull { name: name.into(), message: format!("the stream broke: {e}") })?,
            };
            let Some(chunk) = chunk else { break };
            // Only the new bytes are searched for line ends, and no line may grow past MAX_LINE.
            let mut rest: &[u8] = &chunk;
            while let Some(end) = rest.iter().position(|b| *b == b'\n') {
                buffer.extend_from_slice(&rest[..end]);
                succeeded |= self.line(name, &buffer, &mut progress)?;
                buffer.clear();
                rest = &rest[end + 1..];
            }
            buffer.extend_from_slice(rest);
            if buffer.len() > MAX_LINE {
                return Err(OllamaError::Pull {
                    name: name.into(),
                    message: format!("a progress line is longer than {MAX_LINE} bytes"),
                });
            }
        }
        if !buffer.is_empty() {
            succeeded |= self.line(name, &buffer, &mut progress)?;
        }
        if !succeeded {
            return Err(OllamaError::Pull { name: name.into(), message: "the stream ended before success".into() });
        }
        Ok(())
    }

    /// One progress line; true when it says `success`.
    fn line(&self, name: &str, line: &[u8], progress: &mut impl FnMut(&PullProgress)) -> Result<bool, OllamaError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(false);
        }
        let parsed: PullLine = serde_json::from_slice(line).map_err(|e| OllamaError::Pull {
            name: name.into(),
            message: format!("an unreadable progress line ({e})"),
        })?;
        if let Some(error) = parsed.error {
            return Err(pull_error(name, &error));
        }
        progress(&PullProgress {
            name: name.into(),
            status: parsed.status.clone(),
            completed: parsed.completed,
            total: parsed.total,
        });
        Ok(parsed.status == "success")
    }

    /// The GGUF file a model runs from, as its Modelfile's `FROM` line names it (`POST /api/show`).
    pub async fn model_file(&self, name: &str) -> Result<std::path::PathBuf, OllamaError> {
        check_name(name)?;
        let response = self
            .http
            .post(self.url("/api/show"))
            .timeout(ANSWER_TIMEOUT)
            .json(&serde_json::json!({ "model": name }))
            .send()
            .await
            .map_err(|e| self.unavailable(&e))?;
        if response.status().as_u16() == 404 {
            return Err(OllamaError::NotFound(name.into()));
        }
        let body: serde_json::Value = self.read_json(response, "/api/show").await?;
        let modelfile = body.get("modelfile").and_then(|m| m.as_str()).unwrap_or("");
        modelfile
            .lines()
            .filter_map(|l| l.trim().strip_prefix("FROM "))
            .map(|p| std::path::PathBuf::from(p.trim()))
            .find(|p| p.is_absolute())
            .ok_or_else(|| OllamaError::Status {
                host: self.host.clone(),
                status: 200,
                message: format!("the Modelfile of {name} names no file"),
            })
    }

    /// Deletes a model from the server.
    pub async fn delete(&self, name: &str) -> Result<(), OllamaError> {
        check_name(name)?;
        let response = self
            .http
            .delete(self.url("/api/delete"))
            .timeout(ANSWER_TIMEOUT)
            .json(&serde_json::json!({ "model": name }))
            .send()
            .await
            .map_err(|e| self.unavailable(&e))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            404 => Err(OllamaError::NotFound(name.into())),
            status => {
                let body = self.error_body(response).await;
                Err(OllamaError::Status { host: self.host.clone(), status, message: error_text(&body).unwrap_or(body) })
            }
        }
    }

    /// A JSON answer of at most [`MAX_ANSWER`] bytes.
    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        what: &str,
    ) -> Result<T, OllamaError> {
        let status = |message: String| OllamaError::Status { host: self.host.clone(), status: 200, message };
        let bytes = crate::http::read_capped(response, MAX_ANSWER).await.map_err(|e| match e {
            crate::http::BodyError::Transport(e) => self.unavailable(&e),
            too_large => status(format!("{what}: {too_large}")),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| status(format!("{what} could not be read: {e}")))
    }

    /// The text of an error answer, at most 64 kB of it.
    async fn error_body(&self, response: reqwest::Response) -> String {
        let bytes = crate::http::read_capped(response, 64 << 10).await.unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Unix seconds of an ISO 8601 time such as `2024-06-04T14:38:47.123456-07:00` (offset applied; `Z` is UTC).
pub fn unix_of_iso(s: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let rest = &s[19..];
    let offset = match rest.rfind(['+', '-']) {
        Some(i) if rest.len() - i == 6 => {
            let sign = if rest.as_bytes()[i] == b'-' { -1 } else { 1 };
            let hours: i64 = rest.get(i + 1..i + 3)?.parse().ok()?;
            let minutes: i64 = rest.get(i + 4..i + 6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
        _ => 0,
    };
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se - offset).ok()
}

fn pull_error(name: &str, message: &str) -> OllamaError {
    if message.contains("file does not exist") || message.contains("not found") {
        OllamaError::NotFound(name.into())
    } else {
        OllamaError::Pull { name: name.into(), message: message.into() }
    }
}

fn error_text(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body).ok()?.get("error")?.as_str().map(str::to_owned)
}

/// Ollama names: `name`, `name:tag`, `namespace/name:tag`, `host/namespace/name:tag`.
pub fn check_name(name: &str) -> Result<(), OllamaError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name.matches(':').count() <= 1
        && !name.starts_with(['/', ':', '.', '-'])
        && !name.contains("..")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(OllamaError::InvalidName(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_as_ollama_reads_them() {
        assert_eq!(Ollama::new("127.0.0.1:11434").host(), "http://127.0.0.1:11434");
        assert_eq!(Ollama::new("0.0.0.0").host(), "http://127.0.0.1:11434");
        assert_eq!(Ollama::new("http://box.lan:9000").host(), "http://box.lan:9000");
        assert_eq!(Ollama::new("localhost:1234").host(), "http://localhost:1234");
    }

    #[test]
    fn iso_times_become_unix_seconds() {
        assert_eq!(unix_of_iso("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_of_iso("2026-06-30T12:00:00Z"), Some(1_782_820_800));
        assert_eq!(unix_of_iso("2024-06-04T14:38:47.123456-07:00"), Some(1_717_537_127));
        assert_eq!(unix_of_iso("2024-02-29T00:00:00+01:00"), Some(1_709_161_200));
        assert_eq!(unix_of_iso("not a date"), None);
        assert_eq!(unix_of_iso("2024-13-01T00:00:00Z"), None);
    }

    #[test]
    fn names_are_checked() {
        for good in ["llama3.2", "llama3.2:1b", "library/qwen:0.5b", "hf.co/bartowski/x:Q4_K_M"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "../etc", "a b", "x:y:z", "/abs", "name;rm"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
