//! `mm serve`: the same core as an HTTP API (see `crates/server`), until SIGTERM or Ctrl-C.

use crate::output;
use mm_core::error::Coded;
use mm_core::{ErrorCode, ErrorPayload, ManagerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The address and port to listen on. Any address but loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:8765")]
    listen: SocketAddr,
    /// A file holding the token every request must carry (`Authorization: Bearer <token>`). Off loopback without
    /// one, a token is generated, printed once, and kept (0600) in the app's data folder for the next start.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Serve the Hub protocol (for `HF_ENDPOINT`) to anyone who can reach this server, without the token; gated
    /// models still need it. The `/mm/v1` API always needs the token when there is one.
    #[arg(long)]
    open_mirror: bool,
    /// The hub a model or file the mirror has not got is fetched from (default: the hub this machine downloads
    /// from: the settings' endpoint, else `HF_ENDPOINT`, else huggingface.co).
    #[arg(long, value_name = "URL", conflicts_with = "no_upstream")]
    upstream: Option<String>,
    /// Serve only what this machine has; anything else is the Hub's "not found".
    #[arg(long)]
    no_upstream: bool,
}

fn invalid(message: String) -> ErrorPayload {
    ErrorPayload { code: ErrorCode::InvalidInput, message }
}

/// The token of `--token-file`; else, off loopback, the one kept in the data folder (generated and printed the
/// first time); else none.
fn token(args: &Args, data_dir: &Path) -> Result<Option<String>, ErrorPayload> {
    if let Some(file) = &args.token_file {
        let token = std::fs::read_to_string(file).map_err(|e| ErrorPayload {
            code: ErrorCode::of_io(&e),
            message: format!("cannot read {}: {e}", file.display()),
        })?;
        let token = token.trim();
        if token.len() < 16 {
            return Err(invalid(format!("the token in {} is shorter than 16 characters", file.display())));
        }
        return Ok(Some(token.to_string()));
    }
    if args.listen.ip().is_loopback() {
        return Ok(None);
    }
    let kept = data_dir.join("serve-token");
    if let Ok(token) = std::fs::read_to_string(&kept) {
        if !token.trim().is_empty() {
            esay!("Requests need the token kept in {}", kept.display());
            return Ok(Some(token.trim().to_string()));
        }
    }
    let token = mm_server::new_token()
        .map_err(|e| ErrorPayload { code: ErrorCode::Internal, message: format!("no randomness for a token: {e}") })?;
    let io = |e: std::io::Error| ErrorPayload {
        code: ErrorCode::of_io(&e),
        message: format!("cannot keep the token in {}: {e}", kept.display()),
    };
    mm_core::paths::private_dir(data_dir).map_err(io)?;
    mm_core::disk::write_atomic(&kept, token.as_bytes(), 0o600).map_err(io)?;
    esay!(
        "A token was made for this server; requests need `Authorization: Bearer {token}` (kept in {})",
        kept.display()
    );
    Ok(Some(token))
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    let data_dir = mm_core::paths::app_data_dir();
    let token = token(&args, &data_dir)?;
    // Its own journal: the app may run beside it, with its own downloads.
    let mut config = ManagerConfig {
        journal: Some(data_dir.join("serve-downloads.json")),
        runtime_owner: "serve",
        ..ManagerConfig::from_env()
    };
    if let Some(upstream) = &args.upstream {
        let valid = reqwest::Url::parse(upstream).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !valid {
            return Err(invalid(format!("--upstream {upstream} is not an http(s) URL")));
        }
        let (settings, _) = config.store.load().map_err(|e| ErrorPayload { code: e.code(), message: e.to_string() })?;
        let from_settings = mm_core::hub::HubConfig::from_settings(&settings);
        // The hub token is for the hub: another upstream gets none.
        let endpoint = upstream.trim_end_matches('/').to_string();
        let token = if endpoint == from_settings.endpoint { from_settings.token.clone() } else { None };
        config.hub = Some(mm_core::hub::HubConfig { endpoint, token, ..from_settings });
    }
    let manager = crate::context::open(config)?;
    // Downloads a previous run left unfinished carry on.
    for download in manager.downloads() {
        if download.state == mm_core::download::DownloadState::Paused {
            let _ = manager.resume(download.id);
        }
    }
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut term, mut int) = (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok());
        tokio::select! {
            _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
            _ = async { match int.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    let ready = |address: SocketAddr| {
        let url = format!("http://{address}");
        if json {
            output::json_line(&serde_json::json!({ "listening": url, "openapi": format!("{url}/openapi.json") }));
        } else {
            say!("Serving Model Manager's API on {url} (OpenAPI: {url}/openapi.json; events: {url}/mm/v1/events)");
        }
    };
    let access = mm_server::Access { token, open_mirror: args.open_mirror, pull_through: !args.no_upstream };
    let options = mm_server::ServeOptions { listen: args.listen, access };
    mm_server::serve(manager, options, ready, shutdown).await.map_err(|e| ErrorPayload {
        code: match e.kind() {
            std::io::ErrorKind::InvalidInput => ErrorCode::InvalidInput,
            std::io::ErrorKind::AddrInUse => ErrorCode::Conflict,
            _ => ErrorCode::of_io(&e),
        },
        message: format!("cannot serve on {}: {e}", args.listen),
    })
}
