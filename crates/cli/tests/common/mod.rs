//! What every `mm` process test starts from: the binary with a cache and a home of the test's own, and nothing of
//! the machine's (no token, no HF_HOME, no offline flag, no proxy, no Ollama: `OLLAMA_HOST` points at a closed port; no
//! keyring).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `mm` over the cache `cache`, with `home` as HOME and its hidden `.mm-data` as XDG_DATA_HOME (hidden, so that a
/// home inside the cache is not taken for a cache entry).
pub fn mm(cache: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mm"));
    cmd.env("HF_HUB_CACHE", cache)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join(".mm-data"))
        .env("OLLAMA_HOST", "127.0.0.1:9")
        // The machine's own keyring stays out of it (tests/keyring.rs starts a Secret Service of its own).
        .env("MM_KEYRING", "0")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HOME")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_ENDPOINT");
    // The machine's proxies stay out too: a test that wants one sets it (tests/proxy.rs).
    for proxy in
        ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"]
    {
        cmd.env_remove(proxy);
    }
    cmd
}

/// `count` connections to `address` that each send half a request and then nothing, kept open until dropped.
pub async fn half_sent(address: &str, count: usize, head: &str) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        held.push(stream);
    }
    held
}

/// Runs `cmd` off the async runtime (the fake servers keep serving meanwhile).
pub async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

/// The Python with `huggingface_hub` that `scripts/setup test` installs into target/py-venv (or MM_TEST_PYTHON).
pub fn python() -> PathBuf {
    let path = std::env::var_os("MM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python"));
    assert!(path.exists(), "{} is missing: run `scripts/setup test` to install huggingface_hub", path.display());
    path
}

/// llama.cpp's `llama-server` that `scripts/llama-server` builds once per machine (`scripts/test` exports its path
/// as MM_TEST_LLAMA_SERVER).
pub fn llama_server() -> PathBuf {
    let path = std::env::var_os("MM_TEST_LLAMA_SERVER").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
        cache.join("model-manager-build/llama-server-11434.0.0/llama-server")
    });
    assert!(path.exists(), "{} is missing: build it with scripts/llama-server", path.display());
    path
}

/// Writes a tiny llama GGUF model llama.cpp loads (tests/fixtures/tiny_llama.py); `seed` varies its weights.
pub fn tiny_llama(path: &Path, seed: u32, broken: bool) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny_llama.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(path).arg(seed.to_string());
    if broken {
        cmd.arg("broken");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "tiny_llama.py: {}", String::from_utf8_lossy(&out.stderr));
}

/// A port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Debian's `program` (which `scripts/setup test` installs) started with `args`, once it listens on `port`.
fn listening(program: &str, args: &[&std::ffi::OsStr], port: u16) -> std::process::Child {
    let child = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is missing ({e}): run `scripts/setup test` (Debian's {program})"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{program} did not listen on {port}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// A real HTTP proxy on loopback: Debian's tinyproxy (`scripts/setup test` installs it), with basic auth when
/// `credentials` are given, killed when dropped.
pub struct Tinyproxy {
    child: std::process::Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    pub fn start(credentials: Option<(&str, &str)>) -> Tinyproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("tinyproxy.log");
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 200\nAllow 127.0.0.1\nLogFile \"{}\"\nLogLevel Connect\n",
            log.display()
        );
        if let Some((user, password)) = credentials {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let conf_path = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = listening("tinyproxy", &["-d".as_ref(), "-c".as_ref(), conf_path.as_os_str()], port);
        Tinyproxy { child, port, log, _dir: dir }
    }

    /// `http://127.0.0.1:PORT`, with `user:password@` when given.
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("http://{user}:{password}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// The targets of the requests the proxy forwarded, as its log names them (`GET http://host:port/path`).
    pub fn forwarded(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter_map(|line| line.split_once("): ").filter(|_| line.contains("Request (file descriptor")))
            .map(|(_, request)| request.trim_end_matches(" HTTP/1.1").to_string())
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real load balancer on loopback: Debian's haproxy (`scripts/setup test` installs it), round robin over
/// `servers` (`host:port`), each checked on `/mm/v1/health` every 200 ms; a request whose server is gone is sent
/// to another (`option redispatch`). Killed when dropped.
pub struct Haproxy {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    pub fn start(servers: &[&str]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = format!(
            "defaults\n  mode http\n  timeout connect 2s\n  timeout client 120s\n  timeout server 120s\n  retries 3\n  \
             option redispatch\nfrontend mirror\n  bind 127.0.0.1:{port}\n  default_backend replicas\nbackend replicas\n  \
             balance roundrobin\n  option httpchk GET /mm/v1/health\n"
        );
        for (i, server) in servers.iter().enumerate() {
            conf.push_str(&format!("  server replica{i} {server} check inter 200ms fall 1 rise 1\n"));
        }
        let conf_path = dir.path().join("haproxy.cfg");
        std::fs::write(&conf_path, conf).unwrap();
        let child = listening("haproxy", &["-db".as_ref(), "-f".as_ref(), conf_path.as_os_str()], port);
        Haproxy { child, url: format!("http://127.0.0.1:{port}"), _dir: dir }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
