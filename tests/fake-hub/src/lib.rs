//! A local Hugging Face Hub that tests and benchmarks start on loopback. It speaks the protocol in
//! `shared/hub-protocol.md`: repo info (`/api/models/{repo}[/revision/{rev}]`, with `?blobs=true` sizes and
//! hashes), the paginated tree API, and `resolve` for files, where LFS files redirect to a second host (the
//! "CDN", a different host name and port) with `X-Linked-Etag`/`X-Linked-Size`. It honours `Range`, answers
//! auth and not-found errors as the hub does, and can be told to misbehave per file: fail with a status, cut a
//! body short, flip a byte, stall, or throttle. Every request is logged so tests can check what was sent where.

pub mod ollama;
pub mod raw;
pub mod releases;

use sha1::Digest as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One file of a repo commit.
#[derive(Clone)]
pub struct HubFile {
    pub path: String,
    pub content: Arc<Vec<u8>>,
    /// Served through the CDN redirect, named by sha256; otherwise served directly, named by git blob sha1.
    pub lfs: bool,
    pub sha256: String,
    pub git_sha1: String,
    /// The size the API claims, when it should lie (to test free-space checks).
    pub listed_size: Option<u64>,
    /// The file's id in the local Xet CAS, for a Xet-backed file (see [`FakeHub::add_xet_repo`]).
    pub xet_hash: Option<String>,
}

impl HubFile {
    pub fn new(path: &str, content: Vec<u8>, lfs: bool) -> HubFile {
        let sha256 = hex(&sha2::Sha256::digest(&content));
        let git_sha1 = git_blob_sha1(&content);
        HubFile {
            path: path.to_string(),
            content: Arc::new(content),
            lfs,
            sha256,
            git_sha1,
            listed_size: None,
            xet_hash: None,
        }
    }

    /// Makes the API claim this size.
    pub fn listed_size(mut self, size: u64) -> HubFile {
        self.listed_size = Some(size);
        self
    }

    fn size(&self) -> u64 {
        self.listed_size.unwrap_or(self.content.len() as u64)
    }

    /// The blob name a client stores it under: sha256 for LFS files, git sha1 otherwise.
    pub fn etag(&self) -> &str {
        if self.lfs {
            &self.sha256
        } else {
            &self.git_sha1
        }
    }
}

/// Misbehaviour injected for one file (matched by its path in the repo).
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` if given) the next `times` requests for the file's bytes.
    Status { code: u16, times: u32, retry_after: Option<u32> },
    /// Send the full `Content-Length` but close the connection after `after` bytes, `times` times.
    Cut { after: usize, times: u32 },
    /// Flip the byte at this offset of the file in every response (persistent corruption).
    Flip { offset: usize },
    /// Send `after` bytes, then go silent for `secs` seconds before closing, `times` times.
    Stall { after: usize, secs: u64, times: u32 },
}

/// Which listener a request arrived at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    Hub,
    Cdn,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub host: Host,
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
    /// The `Via` header a proxy adds to what it forwards.
    pub via: Option<String>,
    /// A `Proxy-Authorization` that reached the server (a proxy keeps its own).
    pub proxy_authorization: Option<String>,
    pub status: u16,
    /// Body bytes actually sent.
    pub sent: u64,
}

/// What the search API and repo info say about a repo besides its files.
#[derive(Clone, Debug, Default)]
pub struct RepoMeta {
    pub downloads: u64,
    pub likes: u64,
    pub trending: u64,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
    pub tags: Vec<String>,
    /// ISO 8601.
    pub last_modified: String,
    /// The model card's metadata (`cardData`), such as `base_model` and `base_model_relation`.
    pub card_data: Option<serde_json::Value>,
}

struct Repo {
    commits: HashMap<String, Vec<HubFile>>,
    refs: HashMap<String, String>,
    /// The refs that are tags (the others are branches, or pull requests: `refs/pr/N`).
    tags: std::collections::HashSet<String>,
    /// When set, requests need `Authorization: Bearer {token}`.
    gated_token: Option<String>,
    /// With `gated_token`: the repo is private rather than gated (listed `private: true`, and a request without
    /// the token is told the repo does not exist, as the Hub tells it).
    private: bool,
    meta: Option<RepoMeta>,
}

/// A listed path and the bytes served for it.
type HostileEntry = (String, Arc<Vec<u8>>);

#[derive(Default)]
struct State {
    repos: HashMap<String, Repo>,
    faults: HashMap<String, Fault>,
    /// Extra listed paths (hostile names) per repo commit: listed in the API, served with the given content.
    hostile: HashMap<String, Vec<HostileEntry>>,
    throttle: Option<u64>,
    tree_page_size: Option<usize>,
    /// Paths whose requests are answered as if no `Range` had been asked for (a server that restarts).
    ignore_range: std::collections::HashSet<String>,
    /// Answer the search API with this status and an HTML error page.
    search_fault: Option<u16>,
    /// Wait this long before answering a search.
    search_delay: Option<Duration>,
    /// Searches that have arrived, answered or not (a delayed one is logged only once answered).
    searches_arrived: usize,
    /// CDN links stop being accepted (`403`, as an expired signature) after this many requests each.
    link_uses: Option<u32>,
    used_links: HashMap<String, u32>,
    /// Where the Xet read token sends clients (the local CAS, or a dead address to test the fallback).
    xet_cas_url: Option<String>,
    /// How long a Xet read token lives, in seconds.
    xet_token_ttl: u64,
    /// Answers from the CAS cut after this many bytes, this many times (a connection that drops mid-file).
    cas_cut: Option<(usize, u32)>,
    /// CAS answers cut so far.
    cas_cuts: u32,
    /// File bodies being sent by the CDN now, and the most at once.
    cdn_streams: usize,
    max_cdn_streams: usize,
    log: Vec<Logged>,
    /// llama.cpp's releases, the latest last.
    releases: Vec<releases::Release>,
}

/// The local Xet CAS, started with the first Xet-backed repo, and the proxy in front of it that clients use.
struct Xet {
    server: xet_client::cas_client::LocalTestServer,
    session: xet::xet_session::XetSession,
    proxy: tokio::task::JoinHandle<()>,
}

impl Drop for Xet {
    fn drop(&mut self) {
        self.proxy.abort();
    }
}

/// Forwards connections to the CAS at `upstream`, holding each answer to the hub's throttle per connection, as the
/// CDN's are: the CAS's own fetches (`/v1/fetch_term?…`) name the host they were asked through, so they come
/// through here too.
async fn cas_proxy(listener: TcpListener, upstream: SocketAddr, state: Arc<Mutex<State>>) {
    while let Ok((mut client, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else { return };
            let (mut from_server, mut to_server) = server.into_split();
            let (mut from_client, mut to_client) = client.split();
            let requests = tokio::io::copy(&mut from_client, &mut to_server);
            let answers = async {
                let mut buf = vec![0u8; 16 * 1024];
                let mut sent = 0usize;
                loop {
                    let n = from_server.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    to_client.write_all(&buf[..n]).await?;
                    sent += n;
                    {
                        let mut state = state.lock().unwrap();
                        if let Some((after, times)) =
                            state.cas_cut.filter(|(after, times)| sent >= *after && *times > 0)
                        {
                            state.cas_cut = Some((after, times - 1));
                            state.cas_cuts += 1;
                            // Dropping both halves closes the connection mid-answer.
                            return Err(std::io::Error::other("cut"));
                        }
                    }
                    let throttle = state.lock().unwrap().throttle;
                    if let Some(rate) = throttle {
                        tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
                    }
                }
            };
            // Either side ending ends the connection (a cut answer closes it at once).
            tokio::select! {
                _ = requests => {}
                _ = answers => {}
            }
        });
    }
}

/// A running fake hub; it stops when dropped.
pub struct FakeHub {
    hub: SocketAddr,
    cdn: SocketAddr,
    state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    xet: tokio::sync::OnceCell<Xet>,
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FakeHub {
    /// Starts the hub on 127.0.0.1 and the CDN on `localhost`, each on a free port.
    pub async fn start() -> FakeHub {
        FakeHub::start_on(0).await
    }

    /// Starts the hub on `127.0.0.1:port` (0 for any); the CDN always takes a free port.
    pub async fn start_on(port: u16) -> FakeHub {
        let hub_listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind hub");
        let cdn_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind cdn");
        let hub = hub_listener.local_addr().unwrap();
        let cdn = cdn_listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let tasks = vec![
            tokio::spawn(serve(hub_listener, Host::Hub, state.clone(), cdn.port())),
            tokio::spawn(serve(cdn_listener, Host::Cdn, state.clone(), cdn.port())),
        ];
        FakeHub { hub, cdn, state, tasks, xet: tokio::sync::OnceCell::new() }
    }

    /// The endpoint to give clients as `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.hub.port())
    }

    /// The CDN's base URL: a different host name (`localhost`) and port from the endpoint.
    pub fn cdn_base(&self) -> String {
        format!("http://localhost:{}", self.cdn.port())
    }

    /// Adds a commit with these files to `repo` and points `main` at it; returns the commit id.
    pub fn add_repo(&self, repo: &str, files: Vec<HubFile>) -> String {
        let mut id = sha1::Sha1::new();
        id.update(repo.as_bytes());
        for f in &files {
            id.update(f.path.as_bytes());
            id.update(f.etag().as_bytes());
        }
        let commit = hex(&id.finalize());
        let mut state = self.state.lock().unwrap();
        let entry = state.repos.entry(repo.to_string()).or_insert_with(|| Repo {
            commits: HashMap::new(),
            refs: HashMap::new(),
            tags: Default::default(),
            gated_token: None,
            private: false,
            meta: None,
        });
        entry.commits.insert(commit.clone(), files);
        entry.refs.insert("main".into(), commit.clone());
        commit
    }

    /// Like [`FakeHub::add_repo`], with every LFS file stored in a local Xet CAS (started on first use, in this
    /// process): resolve answers carry `X-Xet-Hash` and a `Link` to the read-token endpoint, whose token names the
    /// CAS. The files are still served over the CDN redirect too, as the Hub's bridge does. Needs a multi-thread
    /// runtime.
    pub async fn add_xet_repo(&self, repo: &str, mut files: Vec<HubFile>) -> String {
        use xet::xet_session::{Sha256Policy, XetConfig, XetSessionBuilder};
        let xet = self
            .xet
            .get_or_init(|| async {
                let server = xet_client::cas_client::LocalTestServerBuilder::new().start().await;
                let mut config = XetConfig::new();
                config.telemetry.enabled = false;
                let cache = std::env::temp_dir().join(format!("fake-hub-xet-{}", std::process::id()));
                let session = XetSessionBuilder::new_with_config(config)
                    .with_cache_dir(cache)
                    .with_tokio_handle(tokio::runtime::Handle::current())
                    .build()
                    .expect("a Xet session");
                let upstream: SocketAddr = server
                    .http_endpoint()
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .parse()
                    .expect("the CAS listens on an address");
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the CAS proxy");
                let proxied = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
                self.state.lock().unwrap().xet_cas_url.get_or_insert(proxied);
                let proxy = tokio::spawn(cas_proxy(listener, upstream, self.state.clone()));
                Xet { server, session, proxy }
            })
            .await;
        let endpoint = xet.server.http_endpoint().to_string();
        let commit = xet
            .session
            .new_upload_commit()
            .expect("an upload commit")
            .with_endpoint(&endpoint)
            .with_token_info("fake-hub-write", u64::MAX / 2)
            .build()
            .await
            .expect("an upload commit");
        for file in files.iter_mut().filter(|f| f.lfs) {
            let upload = commit
                .upload_bytes(file.content.to_vec(), Sha256Policy::Compute, Some(file.path.clone()))
                .await
                .expect("an upload");
            let stored = upload.finalize_ingestion().await.expect("an upload");
            file.xet_hash = Some(stored.xet_info.hash);
        }
        commit.commit().await.expect("the upload commits");
        self.add_repo(repo, files)
    }

    /// The Xet id of `path` of `repo`, once it is in the CAS.
    pub fn xet_hash_of(&self, repo: &str, path: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        let files = state.repos.get(repo)?.commits.values().flatten().find(|f| f.path == path)?;
        files.xet_hash.clone()
    }

    /// Makes the hub name another Xet file for `path` of `repo` (its reconstruction then disagrees with the
    /// listing).
    pub fn set_xet_hash(&self, repo: &str, path: &str, hash: &str) {
        let mut state = self.state.lock().unwrap();
        for files in state.repos.get_mut(repo).expect("repo").commits.values_mut() {
            for file in files.iter_mut().filter(|f| f.path == path) {
                file.xet_hash = Some(hash.into());
            }
        }
    }

    /// Sends Xet clients to `url` instead of the local CAS (a dead address: the client must fall back).
    pub fn xet_cas_url(&self, url: &str) {
        self.state.lock().unwrap().xet_cas_url = Some(url.into());
    }

    /// Cuts the next `times` answers from the CAS once `after` bytes of each went through.
    pub fn cut_cas(&self, after: usize, times: u32) {
        self.state.lock().unwrap().cas_cut = Some((after, times));
    }

    /// How many CAS answers were cut.
    pub fn cas_cuts(&self) -> u32 {
        self.state.lock().unwrap().cas_cuts
    }

    /// Makes Xet read tokens live `secs` seconds (clients refresh them before they expire).
    pub fn xet_token_ttl(&self, secs: u64) {
        self.state.lock().unwrap().xet_token_ttl = secs;
    }

    /// Points `revision` (a branch or tag) of `repo` at `commit`.
    pub fn set_ref(&self, repo: &str, revision: &str, commit: &str) {
        let mut state = self.state.lock().unwrap();
        state.repos.get_mut(repo).expect("repo").refs.insert(revision.into(), commit.into());
    }

    /// Points the tag `name` of `repo` at `commit`.
    pub fn set_tag(&self, repo: &str, name: &str, commit: &str) {
        let mut state = self.state.lock().unwrap();
        let repo = state.repos.get_mut(repo).expect("repo");
        repo.refs.insert(name.into(), commit.into());
        repo.tags.insert(name.into());
    }

    /// Makes `repo` private to the holder of `token`: listed `private: true`, and not found for anyone else.
    pub fn make_private(&self, repo: &str, token: &str) {
        let mut state = self.state.lock().unwrap();
        let repo = state.repos.get_mut(repo).expect("repo");
        (repo.gated_token, repo.private) = (Some(token.into()), true);
    }

    /// Makes `repo` gated: only `Authorization: Bearer {token}` gets in.
    pub fn gate(&self, repo: &str, token: &str) {
        self.state.lock().unwrap().repos.get_mut(repo).expect("repo").gated_token = Some(token.into());
    }

    /// Lists an extra file with a hostile `path` in `repo`'s info, served with `content` at any URL.
    pub fn list_hostile(&self, repo: &str, path: &str, content: Vec<u8>) {
        self.state.lock().unwrap().hostile.entry(repo.into()).or_default().push((path.into(), Arc::new(content)));
    }

    /// Sets what search and repo info say about `repo` (downloads, likes, task, library, tags, date).
    pub fn set_meta(&self, repo: &str, meta: RepoMeta) {
        self.state.lock().unwrap().repos.get_mut(repo).expect("repo").meta = Some(meta);
    }

    /// Makes the search API answer `status` with an HTML error page (`None`: answer normally).
    pub fn fail_search(&self, status: Option<u16>) {
        self.state.lock().unwrap().search_fault = status;
    }

    /// Makes every search wait this long before answering.
    /// How many searches have arrived, a delayed one included.
    pub fn searches_arrived(&self) -> usize {
        self.state.lock().unwrap().searches_arrived
    }

    pub fn search_delay(&self, delay: Option<Duration>) {
        self.state.lock().unwrap().search_delay = delay;
    }

    pub fn fault(&self, path: &str, fault: Fault) {
        self.state.lock().unwrap().faults.insert(path.into(), fault);
    }

    /// Answers every request for `path` with the whole file and `200`, whatever `Range` asked.
    pub fn fault_ignores_range(&self, path: &str) {
        self.state.lock().unwrap().ignore_range.insert(path.into());
    }

    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Limits every body to about this many bytes per second.
    /// Makes every CDN link the hub hands out expire after `uses` requests (`None`: links never expire).
    pub fn expire_links_after(&self, uses: Option<u32>) {
        self.state.lock().unwrap().link_uses = uses;
    }

    /// The most file bodies the CDN has sent at once (the connections one client used in parallel).
    pub fn max_cdn_streams(&self) -> usize {
        self.state.lock().unwrap().max_cdn_streams
    }

    /// Once every file body the CDN is sending has been sent and logged (a client may have all of a body's bytes
    /// a moment before the server has logged it).
    pub async fn cdn_settled(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.state.lock().unwrap().cdn_streams > 0 {
            assert!(std::time::Instant::now() < deadline, "the CDN is still sending after 10 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn throttle(&self, bytes_per_second: Option<u64>) {
        self.state.lock().unwrap().throttle = bytes_per_second;
    }

    /// Paginates the tree API with this many entries per page.
    pub fn tree_page_size(&self, size: usize) {
        self.state.lock().unwrap().tree_page_size = Some(size);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().log.clear();
    }
}

async fn serve(listener: TcpListener, host: Host, state: Arc<Mutex<State>>, cdn_port: u16) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let _ = handle(stream, host, state, cdn_port).await;
        });
    }
}

pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: HashMap<String, String>,
    /// The body, up to 64 KiB (what `Content-Length` says; the API's forms are small).
    pub(crate) body: Vec<u8>,
}

pub(crate) async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(2048);
    let mut byte = [0u8; 1024];
    loop {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let method = first.next()?.to_string();
            let target = first.next()?.to_string();
            let headers: HashMap<String, String> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
            if length > 64 * 1024 {
                return None;
            }
            let mut body = buf[end + 4..].to_vec();
            while body.len() < length {
                let n = stream.read(&mut byte).await.ok()?;
                if n == 0 {
                    return None;
                }
                body.extend_from_slice(&byte[..n]);
            }
            body.truncate(length);
            return Some(Request { method, target, headers, body });
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
}

/// What to send back.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

enum Body {
    Empty,
    Text(Vec<u8>),
    /// File bytes: the whole content, the range `[start, end)`, and the fault key (the file's repo path).
    File {
        content: Arc<Vec<u8>>,
        start: usize,
        end: usize,
        path: String,
    },
}

impl Reply {
    fn json(status: u16, value: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Text(serde_json::to_vec(&value).unwrap()),
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        let mut reply = Reply::json(status, serde_json::json!({ "error": message }));
        reply.headers.push(("X-Error-Code".into(), code.into()));
        reply.headers.push(("X-Error-Message".into(), message.into()));
        reply
    }
}

async fn handle(mut stream: TcpStream, host: Host, state: Arc<Mutex<State>>, cdn_port: u16) -> std::io::Result<()> {
    let Some(mut request) = read_request(&mut stream).await else { return Ok(()) };
    let delay = {
        let mut state = state.lock().unwrap();
        if request.target.starts_with("/api/models?") {
            state.searches_arrived += 1;
        }
        state.search_delay
    };
    if let (Some(delay), true) = (delay, request.target.starts_with("/api/models?")) {
        tokio::time::sleep(delay).await;
    }
    {
        let state = state.lock().unwrap();
        if state.ignore_range.iter().any(|p| {
            request.target.contains(p.as_str()) || file_of_target(&state, &request.target).is_some_and(|f| f == *p)
        }) {
            request.headers.remove("range");
        }
    }
    let (reply, fault, throttle) = {
        let mut state = state.lock().unwrap();
        let reply = route(&request, host, &state, cdn_port);
        // A status fault replaces the reply for the file's bytes; others shape the body below.
        let mut fault = None;
        let mut reply = reply;
        if let (Host::Cdn, Some(limit)) = (host, state.link_uses) {
            let link = request.target.split_once("&X-Amz-Date=").map_or("", |(_, rest)| rest).to_string();
            let uses = state.used_links.entry(link).or_default();
            *uses += 1;
            if *uses > limit {
                reply = Reply::error(403, "AccessDenied", "Request has expired");
            }
        }
        if let Body::File { path, .. } = &reply.body {
            if let Some(f) = state.faults.get_mut(path) {
                match f {
                    Fault::Status { code, times, retry_after } if *times > 0 => {
                        *times -= 1;
                        let mut r = Reply::error(*code, "Injected", "injected failure");
                        if let Some(secs) = retry_after {
                            r.headers.push(("Retry-After".into(), secs.to_string()));
                        }
                        reply = r;
                    }
                    Fault::Cut { times, .. } | Fault::Stall { times, .. } if *times > 0 => {
                        *times -= 1;
                        fault = Some(f.clone());
                    }
                    Fault::Flip { .. } => fault = Some(f.clone()),
                    _ => {}
                }
            }
        }
        (reply, fault, state.throttle)
    };
    let streaming = host == Host::Cdn && matches!(reply.body, Body::File { .. });
    if streaming {
        let mut state = state.lock().unwrap();
        state.cdn_streams += 1;
        state.max_cdn_streams = state.max_cdn_streams.max(state.cdn_streams);
    }
    let sent = write_reply(&mut stream, &request, reply.status, &reply, fault, throttle).await;
    let mut state = state.lock().unwrap();
    if streaming {
        state.cdn_streams -= 1;
    }
    state.log.push(Logged {
        host,
        method: request.method.clone(),
        path: request.target.clone(),
        range: request.headers.get("range").cloned(),
        authorization: request.headers.get("authorization").cloned(),
        via: request.headers.get("via").cloned(),
        proxy_authorization: request.headers.get("proxy-authorization").cloned(),
        status: reply.status,
        sent: sent.unwrap_or(0),
    });
    Ok(())
}

async fn write_reply(
    stream: &mut TcpStream,
    request: &Request,
    status: u16,
    reply: &Reply,
    fault: Option<Fault>,
    throttle: Option<u64>,
) -> std::io::Result<u64> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let (body, start): (&[u8], usize) = match &reply.body {
        Body::Empty => (&[], 0),
        Body::Text(t) => (t, 0),
        Body::File { content, start, end, .. } => (&content[*start..*end], *start),
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if request.method == "HEAD" || body.is_empty() {
        stream.flush().await?;
        return Ok(0);
    }
    let limit = match &fault {
        Some(Fault::Cut { after, .. }) | Some(Fault::Stall { after, .. }) => (*after).min(body.len()),
        _ => body.len(),
    };
    let chunk = if throttle.is_some() { 16 * 1024 } else { 1024 * 1024 };
    let mut sent = 0usize;
    while sent < limit {
        let end = (sent + chunk).min(limit);
        let piece = &body[sent..end];
        match &fault {
            Some(Fault::Flip { offset }) if (start + sent..start + end).contains(offset) => {
                let mut copy = piece.to_vec();
                copy[offset - start - sent] ^= 0xff;
                stream.write_all(&copy).await?;
            }
            _ => stream.write_all(piece).await?,
        }
        sent = end;
        if let Some(rate) = throttle {
            tokio::time::sleep(Duration::from_secs_f64(piece.len() as f64 / rate as f64)).await;
        }
    }
    if let Some(Fault::Stall { secs, .. }) = fault {
        stream.flush().await?;
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    stream.flush().await?;
    Ok(sent as u64)
}

fn route(request: &Request, host: Host, state: &State, cdn_port: u16) -> Reply {
    let (path, query) = request.target.split_once('?').unwrap_or((&request.target, ""));
    let path = percent_decode(path);
    if host == Host::Cdn {
        return cdn(request, &path, state);
    }
    if let Some(reply) = releases::route(request, &path, state) {
        return reply;
    }
    if path == "/api/models" || path == "/api/models/" {
        return search(request, query, state);
    }
    if let Some((repo, _revision)) = path.strip_prefix("/api/models/").and_then(|r| r.split_once("/xet-read-token/")) {
        return xet_read_token(request, repo, state);
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        return api(request, rest, query, state);
    }
    if let Some((repo, rest)) = split_resolve(&path) {
        return resolve(request, &repo, rest, state, cdn_port);
    }
    Reply::error(404, "NotFound", "no such route")
}

/// A read token for the Xet CAS, as the Hub's `xet-read-token` endpoint gives it (behind the repo's gate).
fn xet_read_token(request: &Request, repo_id: &str, state: &State) -> Reply {
    if let Err(reply) = authorize(request, repo_id, state) {
        return reply;
    }
    let Some(cas) = &state.xet_cas_url else { return Reply::error(404, "NotFound", "this repo is not in Xet") };
    static TOKENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = TOKENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let ttl = if state.xet_token_ttl == 0 { 3600 } else { state.xet_token_ttl };
    let token = format!("xet-read-{n}");
    let mut reply = Reply::json(200, serde_json::json!({ "accessToken": token, "exp": now + ttl, "casUrl": cas }));
    // As the Hub does, the same in headers, which huggingface_hub reads.
    reply.headers.extend([
        ("X-Xet-Cas-Url".to_string(), cas.clone()),
        ("X-Xet-Access-Token".to_string(), token),
        ("X-Xet-Token-Expiration".to_string(), (now + ttl).to_string()),
    ]);
    reply
}

/// `/{org}/{name}/resolve/{rev}/{path}` or `/{name}/resolve/...` into the repo id and the rest.
fn split_resolve(path: &str) -> Option<(String, &str)> {
    let idx = path.find("/resolve/")?;
    Some((path[1..idx].to_string(), &path[idx + "/resolve/".len()..]))
}

/// Checks the gate; `Err` is the reply to send.
fn authorize(request: &Request, repo_id: &str, state: &State) -> Result<(), Reply> {
    let given = request.headers.get("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_string));
    let Some(repo) = state.repos.get(repo_id) else {
        return Err(if given.is_some() {
            Reply::error(404, "RepoNotFound", &format!("Repository Not Found for url: {repo_id}"))
        } else {
            Reply::error(
                401,
                "RepoNotFound",
                &format!("Repository Not Found for url: {repo_id}. Please make sure you are authenticated."),
            )
        });
    };
    match (&repo.gated_token, given) {
        (Some(token), given) if repo.private && given.as_deref() != Some(token.as_str()) => Err(Reply::error(
            401,
            "RepoNotFound",
            &format!("Repository Not Found for url: {repo_id}. Please make sure you are authenticated."),
        )),
        (Some(_), None) => Err(Reply::error(401, "GatedRepo", &format!("Access to model {repo_id} is restricted. You must have access to it and be authenticated to access it. Please log in."))),
        (Some(token), Some(given)) if *token != given => Err(Reply::error(403, "GatedRepo", &format!("Access to model {repo_id} is restricted and you are not in the authorized list."))),
        _ => Ok(()),
    }
}

fn commit_of(repo: &Repo, revision: &str) -> Option<String> {
    if repo.commits.contains_key(revision) {
        return Some(revision.to_string());
    }
    repo.refs.get(revision).cloned()
}

/// `GET /api/models/{repo}/refs`: branches, tags, and with `include_prs=1` pull requests, as the Hub lists them.
fn refs(request: &Request, repo_id: &str, query: &str, state: &State) -> Reply {
    if let Err(reply) = authorize(request, repo_id, state) {
        return reply;
    }
    let repo = &state.repos[repo_id];
    let listed = |name: &String, commit: &String, full: String| serde_json::json!({ "name": name, "ref": full, "targetCommit": commit });
    let mut names: Vec<(&String, &String)> = repo.refs.iter().collect();
    names.sort();
    let (mut branches, mut tags, mut prs) = (vec![], vec![], vec![]);
    for (name, commit) in names {
        if name.starts_with("refs/pr/") {
            prs.push(listed(name, commit, name.clone()));
        } else if repo.tags.contains(name) {
            tags.push(listed(name, commit, format!("refs/tags/{name}")));
        } else {
            branches.push(listed(name, commit, format!("refs/heads/{name}")));
        }
    }
    let mut body = serde_json::json!({ "branches": branches, "tags": tags, "converts": [] });
    if query.split('&').any(|kv| kv == "include_prs=1" || kv == "include_prs=true") {
        body["pullRequests"] = prs.into();
    }
    Reply::json(200, body)
}

/// `POST /api/models/{repo}/paths-info/{rev}` with a form of `paths`: the files among them, as the tree lists them.
fn paths_info(request: &Request, repo_id: &str, revision: &str, state: &State) -> Reply {
    if let Err(reply) = authorize(request, repo_id, state) {
        return reply;
    }
    let repo = &state.repos[repo_id];
    let Some(commit) = commit_of(repo, revision) else {
        return Reply::error(404, "RevisionNotFound", &format!("Invalid rev id: {revision}"));
    };
    let body = String::from_utf8_lossy(&request.body);
    let asked: Vec<String> = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "paths")
        .map(|(_, v)| percent_decode(&v.replace('+', " ")))
        .collect();
    let entries: Vec<serde_json::Value> = repo.commits[&commit]
        .iter()
        .filter(|f| asked.contains(&f.path))
        .map(|f| {
            let mut e = serde_json::json!({"type": "file", "path": f.path, "size": f.size(), "oid": f.git_sha1});
            if f.lfs {
                e["lfs"] = serde_json::json!({"oid": f.sha256, "size": f.size(), "pointerSize": 134});
            }
            e
        })
        .collect();
    Reply::json(200, serde_json::Value::Array(entries))
}

fn api(request: &Request, rest: &str, query: &str, state: &State) -> Reply {
    if let Some(repo) = rest.strip_suffix("/refs") {
        return refs(request, repo, query, state);
    }
    if let Some((repo, revision)) = rest.split_once("/paths-info/") {
        return paths_info(request, repo, revision, state);
    }
    // {repo}, {repo}/revision/{rev}, {repo}/tree/{rev}[/{path}]
    let (repo_id, revision, tree) = if let Some((repo, rev)) = rest.split_once("/revision/") {
        (repo.to_string(), rev.to_string(), false)
    } else if let Some((repo, rev)) = rest.split_once("/tree/") {
        // The root may be asked with a trailing slash (olah does).
        (repo.to_string(), rev.trim_end_matches('/').to_string(), true)
    } else {
        (rest.trim_end_matches('/').to_string(), "main".to_string(), false)
    };
    if let Err(reply) = authorize(request, &repo_id, state) {
        return reply;
    }
    let repo = &state.repos[&repo_id];
    let Some(commit) = commit_of(repo, &revision) else {
        return Reply::error(404, "RevisionNotFound", &format!("Invalid rev id: {revision}"));
    };
    let files = &repo.commits[&commit];
    let hostile = state.hostile.get(&repo_id).cloned().unwrap_or_default();
    if tree {
        let mut entries: Vec<serde_json::Value> = files
            .iter()
            .map(|f| {
                let mut e = serde_json::json!({"type": "file", "path": f.path, "size": f.size(), "oid": f.git_sha1});
                if f.lfs {
                    e["lfs"] = serde_json::json!({"oid": f.sha256, "size": f.size(), "pointerSize": 134});
                }
                e
            })
            .collect();
        entries.extend(
            hostile
                .iter()
                .map(|(p, c)| serde_json::json!({"type": "file", "path": p, "size": c.len(), "oid": git_blob_sha1(c)})),
        );
        let page = state.tree_page_size.unwrap_or(usize::MAX);
        let cursor: usize =
            query.split('&').find_map(|kv| kv.strip_prefix("cursor=")).and_then(|c| c.parse().ok()).unwrap_or(0);
        let end = cursor.saturating_add(page).min(entries.len());
        let mut reply = Reply::json(200, serde_json::Value::Array(entries[cursor.min(end)..end].to_vec()));
        if end < entries.len() {
            let link =
                format!("<{}?recursive=true&cursor={end}>; rel=\"next\"", request.target.split('?').next().unwrap());
            reply.headers.push(("Link".into(), link));
        }
        return reply;
    }
    let blobs = query.split('&').any(|kv| kv == "blobs=true" || kv == "blobs=True");
    let mut siblings: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            let mut s = serde_json::json!({ "rfilename": f.path });
            if blobs {
                s["size"] = f.size().into();
                s["blobId"] = f.git_sha1.clone().into();
                if f.lfs {
                    s["lfs"] = serde_json::json!({"sha256": f.sha256, "size": f.size(), "pointerSize": 134});
                }
            }
            s
        })
        .collect();
    siblings.extend(hostile.iter().map(|(p, c)| {
        if blobs {
            serde_json::json!({"rfilename": p, "size": c.len(), "blobId": git_blob_sha1(c)})
        } else {
            serde_json::json!({"rfilename": p})
        }
    }));
    let meta = repo
        .meta
        .clone()
        .unwrap_or_else(|| RepoMeta { last_modified: "2026-01-01T00:00:00.000Z".into(), ..RepoMeta::default() });
    Reply::json(
        200,
        serde_json::json!({
            "_id": commit, "id": repo_id, "modelId": repo_id, "sha": commit, "private": repo.private,
            "gated": if repo.gated_token.is_some() && !repo.private { serde_json::json!("manual") } else { serde_json::json!(false) },
            "disabled": false, "downloads": meta.downloads, "likes": meta.likes, "tags": meta.tags,
            "pipeline_tag": meta.pipeline_tag.as_deref().unwrap_or("text-generation"),
            "library_name": meta.library_name.as_deref().unwrap_or("transformers"),
            "lastModified": meta.last_modified, "siblings": siblings, "cardData": meta.card_data,
        }),
    )
}

/// The model search: `search` (in the id, any case), `author`, `filter` (each must be the task, the library or a
/// tag), `sort` (descending), `limit` (the page size), `expand` (the fields to send), and a `cursor` in the
/// `Link: rel="next"` of every page but the last, as the hub pages.
fn search(request: &Request, query: &str, state: &State) -> Reply {
    if let Some(status) = state.search_fault {
        return Reply {
            status,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: Body::Text(
                format!("<!DOCTYPE html><html><body><h1>{status}</h1><p>We had a problem.</p></body></html>")
                    .into_bytes(),
            ),
        };
    }
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " "))))
        .collect();
    let one = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let all = |key: &str| params.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let Ok(limit) = one("limit").unwrap_or("1000").parse::<usize>() else {
        return Reply::error(400, "BadRequest", "limit must be a number");
    };
    let text = one("search").unwrap_or("").to_lowercase();
    let filters = all("filter");
    let mut found: Vec<(&String, &Repo, RepoMeta)> = state
        .repos
        .iter()
        .map(|(id, repo)| (id, repo, repo.meta.clone().unwrap_or_default()))
        .filter(|(id, _, _)| id.to_lowercase().contains(&text))
        // A private repo is found only with its token, as the Hub finds it.
        .filter(|(id, repo, _)| !repo.private || authorize(request, id, state).is_ok())
        .filter(|(id, _, _)| one("author").is_none_or(|a| id.split_once('/').is_some_and(|(org, _)| org == a)))
        .filter(|(_, _, m)| {
            filters.iter().all(|f| {
                m.pipeline_tag.as_deref() == Some(f) || m.library_name.as_deref() == Some(f) || m.tags.contains(f)
            })
        })
        .collect();
    let sort = one("sort").unwrap_or("");
    found.sort_by(|a, b| {
        let key = |m: &RepoMeta| match sort {
            "likes" => m.likes.to_string(),
            "trendingScore" => m.trending.to_string(),
            "lastModified" => m.last_modified.clone(),
            _ => m.downloads.to_string(),
        };
        let (ka, kb) = (key(&a.2), key(&b.2));
        // Numbers compare as numbers, dates as text; both descending, then by id.
        let ord = match (ka.parse::<u64>(), kb.parse::<u64>()) {
            (Ok(x), Ok(y)) => y.cmp(&x),
            _ => kb.cmp(&ka),
        };
        ord.then_with(|| a.0.cmp(b.0))
    });
    let cursor: usize = one("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let end = cursor.saturating_add(limit).min(found.len());
    let expand = all("expand");
    let entries: Vec<serde_json::Value> = found[cursor.min(end)..end]
        .iter()
        .map(|(id, repo, m)| {
            let full = serde_json::json!({
                "_id": id, "id": id, "author": id.split_once('/').map(|(a, _)| a),
                "downloads": m.downloads, "likes": m.likes, "trendingScore": m.trending,
                "lastModified": m.last_modified, "pipeline_tag": m.pipeline_tag, "library_name": m.library_name,
                "tags": m.tags, "private": repo.private,
                "gated": if repo.gated_token.is_some() { serde_json::json!("manual") } else { serde_json::json!(false) },
            });
            if expand.is_empty() {
                return full;
            }
            let mut out = serde_json::json!({"_id": id, "id": id});
            for field in &expand {
                if let Some(v) = full.get(field) {
                    out[field] = v.clone();
                }
            }
            out
        })
        .collect();
    let mut reply = Reply::json(200, serde_json::Value::Array(entries));
    if end < found.len() {
        let rest: Vec<String> = query.split('&').filter(|kv| !kv.starts_with("cursor=")).map(str::to_owned).collect();
        reply.headers.push(("Link".into(), format!("</api/models?{}&cursor={end}>; rel=\"next\"", rest.join("&"))));
    }
    reply
}

fn resolve(request: &Request, repo_id: &str, rest: &str, state: &State, cdn_port: u16) -> Reply {
    if let Err(reply) = authorize(request, repo_id, state) {
        return reply;
    }
    let repo = &state.repos[repo_id];
    // The revision may hold '/' only when URL-encoded; after decoding, try the longest known revision first.
    let mut found = None;
    for (i, _) in rest.match_indices('/') {
        if let Some(commit) = commit_of(repo, &rest[..i]) {
            found = Some((commit, &rest[i + 1..]));
        }
    }
    let Some((commit, file_path)) = found else {
        return Reply::error(404, "RevisionNotFound", "Invalid rev id");
    };
    if let Some((_, content)) = state.hostile.get(repo_id).and_then(|h| h.iter().find(|(p, _)| p == file_path)) {
        return file_reply(request, content.clone(), file_path, &git_blob_sha1(content), &commit);
    }
    let Some(file) = repo.commits[&commit].iter().find(|f| f.path == file_path) else {
        return Reply::error(404, "EntryNotFound", &format!("{file_path} does not exist on \"{commit}\""));
    };
    if file.lfs {
        let mut reply = Reply { status: 302, headers: Vec::new(), body: Body::Empty };
        // Signed as a real CDN link is: a secret in the query that logs and messages must not show.
        static LINKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let link = LINKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let location = format!(
            "http://localhost:{cdn_port}/{}?file={}&X-Amz-Date={link}&X-Amz-Signature={CDN_SIGNATURE}",
            file.sha256, file.path
        );
        reply.headers.extend([
            ("Location".to_string(), location),
            ("X-Repo-Commit".into(), commit.clone()),
            ("X-Linked-Etag".into(), format!("\"{}\"", file.sha256)),
            ("X-Linked-Size".into(), file.content.len().to_string()),
            ("ETag".into(), format!("\"{}\"", file.git_sha1)),
        ]);
        if let Some(hash) = &file.xet_hash {
            // As the Hub answers for a Xet-backed file: its Xet id, and where a read token for the CAS is had.
            let host = request.headers.get("host").cloned().unwrap_or_default();
            reply.headers.extend([
                ("X-Xet-Hash".to_string(), hash.clone()),
                (
                    "Link".to_string(),
                    format!("<http://{host}/api/models/{repo_id}/xet-read-token/{commit}>; rel=\"xet-auth\""),
                ),
            ]);
        }
        return reply;
    }
    file_reply(request, file.content.clone(), &file.path, &file.git_sha1, &commit)
}

fn cdn(request: &Request, path: &str, state: &State) -> Reply {
    let sha = path.trim_start_matches('/');
    let found = state.repos.values().flat_map(|r| r.commits.values().flatten()).find(|f| f.lfs && f.sha256 == sha);
    match found {
        Some(file) => file_reply(request, file.content.clone(), &file.path, &file.sha256, ""),
        None => Reply::error(404, "NotFound", "no such object"),
    }
}

fn file_reply(request: &Request, content: Arc<Vec<u8>>, path: &str, etag: &str, commit: &str) -> Reply {
    let len = content.len();
    // `bytes=START-` or `bytes=START-END` (END inclusive).
    let range = request.headers.get("range").and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.split_once('-'));
    let start = range.and_then(|(a, _)| a.trim().parse::<usize>().ok());
    let end = range.and_then(|(_, b)| b.trim().parse::<usize>().ok()).map(|e| (e + 1).min(len));
    let mut headers = vec![("ETag".to_string(), format!("\"{etag}\"")), ("Accept-Ranges".into(), "bytes".into())];
    if !commit.is_empty() {
        headers.push(("X-Repo-Commit".into(), commit.into()));
    }
    match start {
        Some(start) if start >= len && len > 0 => {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            Reply { status: 416, headers, body: Body::Empty }
        }
        Some(start) if start > 0 || end.is_some() => {
            let stop = end.unwrap_or(len).max(start);
            headers.push(("Content-Range".into(), format!("bytes {start}-{}/{len}", stop.saturating_sub(1))));
            Reply { status: 206, headers, body: Body::File { content, start, path: path.into(), end: stop } }
        }
        _ => Reply { status: 200, headers, body: Body::File { content, start: 0, path: path.into(), end: len } },
    }
}

/// The signature in the query of every CDN link the hub redirects to.
pub const CDN_SIGNATURE: &str = "cdn-signature-that-stays-secret";

/// The repo path of the LFS file a CDN URL serves (`/{sha256}?file={path}`, maybe with `&X-Amz-…` after it).
fn file_of_target(_state: &State, target: &str) -> Option<String> {
    let (_, query) = target.split_once("?file=")?;
    Some(percent_decode(query.split_once('&').map_or(query, |(file, _)| file)))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Git's blob id: sha1 of `blob {len}\0` followed by the content.
pub fn git_blob_sha1(content: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    hex(&h.finalize())
}

/// Every file and folder below `dir`, depth first (for tests that check what a download left on disk).
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift), so tests and benchmarks hash real-looking data, never zeros;
/// different seeds give different bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    // Every seed its own stream (splitmix64 of the seed; xorshift needs a non-zero state).
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    if x == 0 {
        x = 1;
    }
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A valid GGUF (version 3) model file: a llama-style architecture with `blocks` layers, a 4096-token context,
/// and one F32 tensor of about `data_bytes` bytes of noise, so headers parse and estimates have numbers.
pub fn gguf_model(architecture: &str, blocks: u32, data_bytes: usize, seed: u64) -> Vec<u8> {
    fn string(b: &mut Vec<u8>, s: &str) {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    }
    let elements = (data_bytes / 4).max(1);
    let u32_keys = [
        ("block_count", blocks),
        ("context_length", 4096),
        ("embedding_length", 256),
        ("attention.head_count", 8),
        ("attention.head_count_kv", 4),
    ];
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend((1 + u32_keys.len() as u64).to_le_bytes());
    string(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    string(&mut b, architecture);
    for (key, value) in u32_keys {
        string(&mut b, &format!("{architecture}.{key}"));
        b.extend(4u32.to_le_bytes());
        b.extend(value.to_le_bytes());
    }
    string(&mut b, "weight");
    b.extend(1u32.to_le_bytes());
    b.extend((elements as u64).to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    while !b.len().is_multiple_of(32) {
        b.push(0);
    }
    b.extend(noise(elements * 4, seed));
    b
}

#[cfg(test)]
mod tests {
    #[test]
    fn different_seeds_give_different_bytes() {
        let streams: Vec<Vec<u8>> = (0..64).map(|seed| super::noise(64, seed)).collect();
        for (i, a) in streams.iter().enumerate() {
            assert!(streams[i + 1..].iter().all(|b| a != b), "seed {i} repeats");
        }
    }
}
