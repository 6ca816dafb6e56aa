//! Another machine's Model Manager, through its `mm serve` API (`/mm/v1`): the same operations as the local
//! [`crate::Manager`], with the same types and the same errors, and its live events followed over Server-Sent
//! Events (reconnecting with `Last-Event-ID`). What `mm --remote` and the window's machine switcher drive.

use crate::download::{DownloadEvent, DownloadProgress, ModelLifecycle};
use crate::error::{ErrorCode, ErrorPayload};
use crate::operations::Operations;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// How long a call may take in all before the machine is taken for stuck: a load waits for the model to answer
/// and a verify hashes every byte (and a repair downloads); everything else answers in moments.
fn patience(path: &str) -> Duration {
    let long = ["runtime/", "/verify"].iter().any(|p| path.contains(p));
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
        // No redirect is followed (a machine answers itself; one that redirects would send a request, and the
        // prompt in it, elsewhere), and the environment's proxies are read as downloads read them.
        let http = crate::proxy::Proxies::from_env()
            .apply(reqwest::Client::builder())
            .redirect(reqwest::redirect::Policy::none())
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

    /// A request to the machine's model endpoint (`v1/...`), with the machine's token: how this machine's endpoint
    /// serves the other's models.
    pub fn endpoint_request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path)
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
    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder, path: &str) -> Result<T, ErrorPayload> {
        let unreachable = |e: reqwest::Error| {
            ErrorPayload::new(
                ErrorCode::Network,
                format!("the machine at {} cannot be reached: {e} (is `mm serve` running there?)", self.url()),
            )
        };
        let response = request.timeout(patience(path)).send().await.map_err(unreachable)?;
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
        self.send(self.request(Method::GET, path), path).await
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

/// Each operation as one HTTP call of the machine's `mm serve`: the row's method and path, its path parameters as
/// segments, its query and its body; the answer or the machine's own error.
macro_rules! over_http {
    ([] $(
        $(#[$meta:meta])*
        $name:ident $method:ident $path:literal $tag:literal
        path[$( $(#[$pmeta:meta])* $p:ident: $pt:ty ),*]
        query[$($q:ident: $qt:ty)?]
        body[$($b:ident: $bt:ty)?]
        progress[$($prt:ty, $event:literal)?]
        answer[$answer:ty] ok[$($ok:literal),+] errors[$($err:literal),*];
    )*) => {
        impl Operations for Remote {
            $(
                async fn $name(
                    &self,
                    $($p: $pt,)*
                    $($q: $qt,)?
                    $($b: $bt,)?
                    $(_on_progress: impl FnMut($prt) + Send + 'static,)?
                ) -> Result<$answer, ErrorPayload> {
                    let path = crate::operations::fill_path($path, &[$((stringify!($p), $p.to_string())),*])?;
                    $(let path = with_query(path, &$q);)?
                    let method = Method::from_bytes(stringify!($method).to_ascii_uppercase().as_bytes())
                        .expect("the table's methods are HTTP methods");
                    let request = self.request(method, &path);
                    $(let request = request.json(&$b);)?
                    self.send(request, &path).await
                }
            )*
        }
    };
}

crate::operations!(over_http);

/// `path` with `query` as its query string, as `mm serve`'s `Query` reads it: a struct of plain fields (strings,
/// numbers, booleans, unit enums; absent ones left out). The rows' query types are all such structs.
fn with_query(path: String, query: &impl serde::Serialize) -> String {
    let mut url = Url::parse("http://x/").expect("parses");
    {
        let mut pairs = url.query_pairs_mut();
        if let Ok(Value::Object(fields)) = serde_json::to_value(query) {
            for (key, value) in fields {
                {
                    match value {
                        Value::Null => {}
                        Value::String(text) => {
                            pairs.append_pair(&key, &text);
                        }
                        other => {
                            pairs.append_pair(&key, &other.to_string());
                        }
                    }
                }
            }
        }
    }
    match url.query() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path,
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
