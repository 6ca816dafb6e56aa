//! Another machine's Model Manager, through its `mm serve` API (`/mm/v1`): the same operations as the local
//! [`crate::Manager`], with the same types and the same errors, and its live events followed over Server-Sent
//! Events (reconnecting with `Last-Event-ID`). What `mm --remote` and the window's machine switcher drive.

use crate::activation::ActiveEntry;
use crate::compat::local::ModelFit;
use crate::compat::{CompatReport, HardwareInfo};
use crate::download::{DownloadEvent, DownloadPreview, DownloadProgress, DownloadRequest, ModelLifecycle};
use crate::error::{ErrorCode, ErrorPayload};
use crate::library::delete::DeleteReport;
use crate::library::storage::{CleanReport, StorageReport};
use crate::library::verify::VerifyReport;
use crate::library::{LibraryQuery, ModelDetails};
use crate::model::{LibraryModel, ModelType};
use crate::runtime::LoadedModel;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// How long a call may take in all before the machine is taken for stuck: a load waits for the model to answer,
/// a verify hashes every byte and an import copies them; everything else answers in moments.
fn patience(path: &str) -> Duration {
    let long = ["runtime/", "/verify", "imports"].iter().any(|p| path.contains(p));
    Duration::from_secs(if long { 3600 } else { 120 })
}

/// The largest answer read (a library of many thousands of models stays well under it).
const MAX_ANSWER: usize = 64 << 20;

/// A `mm serve` on another machine (or another process on this one).
#[derive(Clone)]
pub struct Remote {
    http: reqwest::Client,
    /// `http://host:port/`, as given.
    base: Url,
    token: Option<String>,
    /// The machine's events, once someone subscribed.
    events: Arc<Mutex<Option<broadcast::Sender<DownloadEvent>>>>,
}

/// For a server on this machine (a loopback address), the token `mm serve` of this user keeps in its 0600 file:
/// one that asks for its token on loopback too is reached without handing it around. Only to the port that server
/// said it listens on, and only while that port is held by this user: a port another user took (or a tunnel to
/// elsewhere) is not handed the token.
fn local_server_token(base: &Url) -> Option<String> {
    let loopback = crate::listen::is_loopback_name(base.host_str()?);
    let port = base.port_or_known_default()?;
    let data_dir = crate::paths::app_data_dir();
    let served_on = std::fs::read_to_string(crate::paths::serve_address_file(&data_dir)).ok()?;
    let served_port = served_on.trim().parse::<std::net::SocketAddr>().ok()?.port();
    if !loopback || served_port != port || !listener_is_ours(port) {
        return None;
    }
    let token = std::fs::read_to_string(crate::paths::serve_token_file(&data_dir)).ok()?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Whether every socket listening on `port` (IPv4 and IPv6, this network namespace) belongs to this user, and one
/// does: what the kernel's `/proc/net/tcp*` tables say.
fn listener_is_ours(port: u16) -> bool {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut owners = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
            let fields: Vec<&str> = line.split_whitespace().collect();
            let listening = fields.get(3) == Some(&"0A");
            let on_port =
                fields.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            if listening && on_port == Some(port) {
                owners.push(fields.get(7).and_then(|u| u.parse::<u32>().ok()));
            }
        }
    }
    !owners.is_empty() && owners.iter().all(|owner| *owner == Some(uid))
}

/// A path segment, percent-encoded (model ids hold `/`).
fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Remote {
    /// A machine at `url` (`http://host:8765`), with its token when it has one.
    pub fn new(url: &str, token: Option<String>) -> Result<Remote, ErrorPayload> {
        let invalid = |why: &str| {
            ErrorPayload::new(
                ErrorCode::InvalidInput,
                format!("{url} is not a machine's address ({why}): give http://host:port, as `mm serve` printed"),
            )
        };
        let mut base = Url::parse(url.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(invalid("not an http(s) URL"));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ErrorPayload::new(ErrorCode::Internal, e.to_string()))?;
        let token = token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).or_else(|| local_server_token(&base));
        Ok(Remote { http, base, token, events: Arc::new(Mutex::new(None)) })
    }

    /// The machine's address, as given.
    pub fn url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = self.base.join(path.trim_start_matches('/')).expect("API paths join");
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// One call: the answer as `T`, or the machine's own `{code, message}`, or a network error naming it.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ErrorPayload> {
        let mut request = self.request(method, path).timeout(patience(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |e: reqwest::Error| {
            ErrorPayload::new(
                ErrorCode::Network,
                format!("the machine at {} cannot be reached: {e} (is `mm serve` running there?)", self.url()),
            )
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = crate::http::read_capped(response, MAX_ANSWER).await.map_err(|e| {
            ErrorPayload::new(ErrorCode::Network, format!("the machine at {} answered badly: {e}", self.url()))
        })?;
        if !status.is_success() {
            return Err(serde_json::from_slice::<ErrorPayload>(&bytes).unwrap_or_else(|_| {
                ErrorPayload::new(
                    if status.as_u16() == 401 { ErrorCode::Auth } else { ErrorCode::Network },
                    format!("the machine at {} answered {status}", self.url()),
                )
            }));
        }
        let bytes = if bytes.is_empty() { b"null".to_vec() } else { bytes };
        serde_json::from_slice(&bytes).map_err(|e| {
            ErrorPayload::new(
                ErrorCode::Network,
                format!(
                    "the machine at {} answered what this version cannot read ({e}): is it a Model Manager?",
                    self.url()
                ),
            )
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ErrorPayload> {
        self.call(Method::GET, path, None).await
    }

    /// The machine answers, with this token: its version and cache, as `/mm/v1/health` says.
    pub async fn health(&self) -> Result<Value, ErrorPayload> {
        let health: Value = self.get("mm/v1/health").await?;
        // An API that is not ours would not have this.
        if health.get("version").is_none() {
            return Err(ErrorPayload::new(
                ErrorCode::InvalidInput,
                format!("{} answers, but is not a Model Manager (`mm serve`)", self.url()),
            ));
        }
        // The health check is open to anyone on loopback: a token is checked on what needs it.
        self.get::<Value>("mm/v1/settings").await?;
        Ok(health)
    }

    pub async fn models(&self, query: LibraryQuery) -> Result<Vec<LibraryModel>, ErrorPayload> {
        let mut params = Vec::new();
        if let Some(t) = query.model_type {
            params.push(("modelType", wire(&t)));
        }
        if let Some(s) = query.status {
            params.push(("status", wire(&s)));
        }
        if let Some(s) = query.source {
            params.push(("source", wire(&s)));
        }
        if let Some(t) = query.text.filter(|t| !t.is_empty()) {
            params.push(("text", t));
        }
        params.push(("sort", wire(&query.sort)));
        params.push(("descending", query.descending.to_string()));
        let mut url = Url::parse("http://x/mm/v1/models").expect("parses");
        url.query_pairs_mut().extend_pairs(params);
        self.get(&format!("mm/v1/models?{}", url.query().unwrap_or(""))).await
    }

    pub async fn model(&self, id: &str) -> Result<ModelDetails, ErrorPayload> {
        self.get(&format!("mm/v1/models/{}", segment(id))).await
    }

    pub async fn delete(&self, id: &str, revision: Option<&str>, dry_run: bool) -> Result<DeleteReport, ErrorPayload> {
        let mut url = Url::parse("http://x/").expect("parses");
        url.query_pairs_mut().append_pair("dryRun", &dry_run.to_string());
        if let Some(r) = revision {
            url.query_pairs_mut().append_pair("revision", r);
        }
        let path = format!("mm/v1/models/{}?{}", segment(id), url.query().unwrap_or(""));
        self.call(Method::DELETE, &path, None).await
    }

    pub async fn set_type(&self, id: &str, model_type: Option<&str>) -> Result<(), ErrorPayload> {
        let path = format!("mm/v1/models/{}/type", segment(id));
        self.call::<Value>(Method::PUT, &path, Some(json!({ "modelType": model_type }))).await.map(|_| ())
    }

    /// Verifies (and with `repair`, repairs) a model there.
    pub async fn verify(&self, id: &str, revision: Option<&str>, repair: bool) -> Result<VerifyReport, ErrorPayload> {
        let path = format!("mm/v1/models/{}/verify", segment(id));
        self.call(Method::POST, &path, Some(json!({ "revision": revision, "repair": repair }))).await
    }

    pub async fn storage(&self) -> Result<StorageReport, ErrorPayload> {
        self.get("mm/v1/storage").await
    }

    pub async fn clean(&self) -> Result<CleanReport, ErrorPayload> {
        self.call(Method::POST, "mm/v1/storage/clean", None).await
    }

    pub async fn preview(&self, request: DownloadRequest) -> Result<DownloadPreview, ErrorPayload> {
        self.call(Method::POST, "mm/v1/downloads/preview", Some(json!(request))).await
    }

    /// Starts a download there (or joins the same one): its id.
    pub async fn start(&self, request: DownloadRequest) -> Result<u64, ErrorPayload> {
        let started: Value = self.call(Method::POST, "mm/v1/downloads", Some(json!(request))).await?;
        started["id"].as_u64().ok_or_else(|| {
            ErrorPayload::new(
                ErrorCode::Network,
                format!("the machine at {} started a download without an id", self.url()),
            )
        })
    }

    pub async fn downloads(&self) -> Result<Vec<DownloadProgress>, ErrorPayload> {
        self.get("mm/v1/downloads").await
    }

    pub async fn download(&self, id: u64) -> Result<DownloadProgress, ErrorPayload> {
        self.get(&format!("mm/v1/downloads/{id}")).await
    }

    pub async fn pause(&self, id: u64) -> Result<(), ErrorPayload> {
        self.call::<Value>(Method::POST, &format!("mm/v1/downloads/{id}/pause"), None).await.map(|_| ())
    }

    pub async fn resume(&self, id: u64) -> Result<(), ErrorPayload> {
        self.call::<Value>(Method::POST, &format!("mm/v1/downloads/{id}/resume"), None).await.map(|_| ())
    }

    pub async fn cancel(&self, id: u64) -> Result<(), ErrorPayload> {
        self.call::<Value>(Method::DELETE, &format!("mm/v1/downloads/{id}"), None).await.map(|_| ())
    }

    pub async fn active(&self) -> Result<BTreeMap<ModelType, ActiveEntry>, ErrorPayload> {
        self.get("mm/v1/active").await
    }

    /// Makes `id` the active model of `model_type`, or of its own type as that machine's library gives it.
    pub async fn activate(
        &self,
        id: &str,
        model_type: Option<ModelType>,
        revision: Option<&str>,
    ) -> Result<ActiveEntry, ErrorPayload> {
        let path = match model_type {
            Some(model_type) => format!("mm/v1/active/{}", model_type.as_str()),
            None => "mm/v1/active".to_string(),
        };
        self.call(Method::PUT, &path, Some(json!({ "id": id, "revision": revision }))).await
    }

    pub async fn deactivate(&self, model_type: ModelType) -> Result<(), ErrorPayload> {
        self.call::<Value>(Method::DELETE, &format!("mm/v1/active/{}", model_type.as_str()), None).await.map(|_| ())
    }

    pub async fn load(&self, target: Option<&str>, context: Option<u64>) -> Result<LoadedModel, ErrorPayload> {
        self.call(Method::POST, "mm/v1/runtime/load", Some(json!({ "target": target, "context": context }))).await
    }

    pub async fn unload(&self, target: Option<&str>) -> Result<Vec<LoadedModel>, ErrorPayload> {
        self.call(Method::POST, "mm/v1/runtime/unload", Some(json!({ "target": target }))).await
    }

    pub async fn loaded(&self) -> Result<Vec<LoadedModel>, ErrorPayload> {
        self.get("mm/v1/runtime").await
    }

    pub async fn system(&self) -> Result<HardwareInfo, ErrorPayload> {
        self.get("mm/v1/system").await
    }

    pub async fn compat(
        &self,
        target: &str,
        revision: Option<&str>,
        context: Option<u64>,
    ) -> Result<CompatReport, ErrorPayload> {
        let body = json!({ "target": target, "revision": revision, "context": context });
        self.call(Method::POST, "mm/v1/compat", Some(body)).await
    }

    pub async fn fit(&self) -> Result<BTreeMap<String, ModelFit>, ErrorPayload> {
        self.get("mm/v1/fit").await
    }

    /// The machine's events: download progress and every model's lifecycle, as its window would see them. The
    /// stream is opened on the first call and reopened (with `Last-Event-ID`) when it drops; what was missed
    /// beyond the machine's replay window is not replayed, and the next progress carries the totals.
    pub fn subscribe(&self) -> broadcast::Receiver<DownloadEvent> {
        let mut events = self.events.lock().unwrap();
        if let Some(sender) = events.as_ref() {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(1024);
        *events = Some(sender.clone());
        let remote = self.clone();
        tokio::spawn(async move { remote.follow(sender).await });
        receiver
    }

    /// Reads `/mm/v1/events` into `sender` until no one listens, reconnecting after a cut (with `Last-Event-ID`).
    /// A `reset` or `dropped` from the machine, or a stream that breaks the rules, tells the subscribers the state
    /// they show is stale.
    async fn follow(&self, sender: broadcast::Sender<DownloadEvent>) {
        let mut last_id: Option<String> = None;
        loop {
            {
                // Checked and cleared under the lock `subscribe` takes: no subscriber is left with a dead sender.
                let mut events = self.events.lock().unwrap();
                if sender.receiver_count() == 0 {
                    *events = None;
                    return;
                }
            }
            let mut request = self.request(Method::GET, "mm/v1/events");
            if let Some(id) = &last_id {
                request = request.header("Last-Event-ID", id.as_str());
            }
            if let Ok(mut response) = request.send().await {
                let mut stream = EventStream::default();
                // The machine sends a keep-alive every 15 s: a minute of silence is a dead connection.
                while let Ok(Ok(Some(chunk))) = tokio::time::timeout(EVENT_SILENCE, response.chunk()).await {
                    let Some(blocks) = stream.push(&chunk) else {
                        tracing::warn!(machine = %self.url(), "an event longer than {MAX_EVENT} bytes: reconnecting");
                        let _ = sender.send(DownloadEvent::Stale);
                        break;
                    };
                    for block in blocks {
                        let parsed = parse_event(&block);
                        last_id = parsed.id.or(last_id);
                        if let Some(event) = parsed.event {
                            let _ = sender.send(event);
                        }
                    }
                    if sender.receiver_count() == 0 {
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The longest one event may be; a stream that sends more without ending an event is cut.
const MAX_EVENT: usize = 4 << 20;
/// How long an event stream may say nothing (not even its keep-alive) before it is taken for dead.
const EVENT_SILENCE: Duration = Duration::from_secs(60);

/// The bytes of an event stream as they arrive, cut into whole event blocks: a block is decoded only once it is
/// complete, so a character split across chunks arrives whole.
#[derive(Default)]
struct EventStream {
    buffer: Vec<u8>,
    /// How far the buffer is known to hold no block end: each byte is looked at once, however the chunks come.
    scanned: usize,
}

impl EventStream {
    /// The blocks `chunk` completes; `None` when the unfinished one grew past [`MAX_EVENT`].
    fn push(&mut self, chunk: &[u8]) -> Option<Vec<String>> {
        self.buffer.extend_from_slice(chunk);
        let mut blocks = Vec::new();
        while let Some(at) = self.buffer[self.scanned.saturating_sub(1)..].windows(2).position(|w| w == b"\n\n") {
            let end = self.scanned.saturating_sub(1) + at + 2;
            let block: Vec<u8> = self.buffer.drain(..end).collect();
            blocks.push(String::from_utf8_lossy(&block).into_owned());
            self.scanned = 0;
        }
        self.scanned = self.buffer.len();
        (self.buffer.len() <= MAX_EVENT).then_some(blocks)
    }
}

/// One Server-Sent Event block, read.
#[derive(Debug, PartialEq)]
struct Parsed {
    id: Option<String>,
    /// The core's event it carries: progress, a lifecycle change, or (for `reset` and `dropped`) word that the
    /// state shown is stale.
    event: Option<DownloadEvent>,
}

fn parse_event(block: &str) -> Parsed {
    let (mut id, mut name, mut data) = (None, "", String::new());
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string()).filter(|v| !v.is_empty());
        } else if let Some(v) = line.strip_prefix("event:") {
            name = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    let event = match name {
        "download-progress" => serde_json::from_str::<DownloadProgress>(&data).ok().map(DownloadEvent::Progress),
        "model-lifecycle" => serde_json::from_str::<ModelLifecycle>(&data).ok().map(DownloadEvent::Lifecycle),
        "reset" | "dropped" => Some(DownloadEvent::Stale),
        _ => None,
    };
    Parsed { id, event }
}

/// The wire name of a unit enum, as serde writes it.
fn wire<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_sent_events_parse_into_the_cores_events() {
        let block = "id: 1a2b-7\nevent: model-lifecycle\ndata: {\"kind\":\"completed\",\"repo\":\"a/b\",\"revision\":\"main\",\"downloadId\":1,\"error\":null}\n\n";
        let parsed = super::parse_event(block);
        assert_eq!(parsed.id.as_deref(), Some("1a2b-7"));
        assert!(matches!(parsed.event, Some(crate::download::DownloadEvent::Lifecycle(l)) if l.repo == "a/b"));
        assert_eq!(super::parse_event(": keep-alive\n\n"), super::Parsed { id: None, event: None });
        for stale in ["event: reset\ndata: {}\n\n", "event: dropped\ndata: {}\n\n"] {
            assert_eq!(super::parse_event(stale).event, Some(crate::download::DownloadEvent::Stale));
        }
    }

    #[test]
    fn the_kept_token_goes_only_to_a_port_this_user_listens_on() {
        let ours = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(super::listener_is_ours(ours.local_addr().unwrap().port()));
        let port = ours.local_addr().unwrap().port();
        drop(ours);
        assert!(!super::listener_is_ours(port), "nobody listens there now");
    }

    #[test]
    fn a_character_split_across_chunks_arrives_whole_and_an_endless_event_is_cut() {
        let text = "id: r-1\nevent: x\ndata: {\"name\":\"modèle\"}\n\n".as_bytes();
        let cut = text.iter().position(|&b| b == 0xc3).unwrap() + 1;
        let mut stream = super::EventStream::default();
        assert_eq!(stream.push(&text[..cut]), Some(vec![]));
        let blocks = stream.push(&text[cut..]).unwrap();
        assert_eq!(blocks.len(), 1);
        assert!(blocks[0].contains("modèle"), "{blocks:?}");
        assert_eq!(stream.push(&vec![b'x'; super::MAX_EVENT + 1]), None);
    }
}
