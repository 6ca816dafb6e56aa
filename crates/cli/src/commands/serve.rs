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
    /// A file holding the token every request must carry (`Authorization: Bearer <token>`). Off loopback (or with
    /// --require-token) without one, a token is generated, printed once, and kept (0600) in the app's data folder
    /// (`serve-token`), where the app and `mm --remote` on this machine find it.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Ask for the token on loopback too: on a machine other users share, any of them could otherwise drive this
    /// server (the `serveRequireToken` setting does the same).
    #[arg(long)]
    require_token: bool,
    /// A file holding the mirror's own token, which opens the Hub protocol only (what laptops set as `HF_TOKEN`),
    /// never the `/mm/v1` API. Without one, a server with a token generates it and keeps it beside the server's
    /// (`mirror-token`).
    #[arg(long)]
    mirror_token_file: Option<PathBuf>,
    /// Serve the Hub protocol (for `HF_ENDPOINT`) to anyone who can reach this server, without the token; gated,
    /// private and unknown models still need it. The `/mm/v1` API always needs the token when there is one.
    #[arg(long)]
    open_mirror: bool,
    /// The hub a model or file the mirror has not got is fetched from (default: the hub this machine downloads
    /// from: the settings' endpoint, else `HF_ENDPOINT`, else huggingface.co).
    #[arg(long, value_name = "URL", conflicts_with = "no_upstream")]
    upstream: Option<String>,
    /// Serve only what this machine has; anything else is the Hub's "not found".
    #[arg(long)]
    no_upstream: bool,
    /// The most the cache may take as the mirror fills it (such as 200GB): a pull-through past it first removes
    /// the least recently used models nobody uses.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    cache_limit: Option<u64>,
    /// The address clients reach the mirror by, behind a reverse proxy (such as https://models.lan): the base of
    /// the next-page links it sends, which clients follow with their token. Default: the request's `Host`.
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    public_url: Option<String>,
    /// Another machine's `mm serve` whose models this endpoint serves as NAME/ID (repeatable), besides the machines
    /// of Settings → Machines; its token is the one kept for URL (`mm machines add`), or on this
    /// machine's loopback, that server's own.
    #[arg(long, value_name = "NAME=URL", value_parser = parse_peer)]
    peer: Vec<(String, String)>,
}

/// `NAME=URL`: a name safe in a model name, and an http(s) address.
fn parse_peer(text: &str) -> Result<(String, String), String> {
    let (name, url) = text.split_once('=').ok_or_else(|| format!("{text:?} is not NAME=URL (gpu=http://gpu:8765)"))?;
    let prefixes = mm_core::machine::THIS_MACHINES_PREFIXES;
    if name.is_empty() || mm_core::machine::endpoint_prefix(name) != name || prefixes.contains(&name) {
        return Err(format!(
            "{name:?} cannot name a machine: use letters, digits, '.', '_' and '-' (and none of {}, this machine's)",
            prefixes.join(", ")
        ));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("{url:?} is not an http(s) address such as http://gpu:8765"));
    }
    Ok((name.to_string(), url.trim_end_matches('/').to_string()))
}

/// An `http` or `https` URL with a host and nothing after it but a path, without its trailing `/`.
fn parse_public_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || url.query().is_some() {
        return Err(format!("{text:?} is not an http(s) address such as https://models.lan"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn invalid(message: String) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::InvalidInput, message)
}

/// A token read from `file` (at least 16 characters).
fn token_from(file: &Path) -> Result<String, ErrorPayload> {
    let token = std::fs::read_to_string(file)
        .map_err(|e| ErrorPayload::new(ErrorCode::of_io(&e), format!("cannot read {}: {e}", file.display())))?;
    let token = token.trim();
    if token.len() < 16 {
        return Err(invalid(format!("the token in {} is shorter than 16 characters", file.display())));
    }
    Ok(token.to_string())
}

/// The token kept (0600) at `kept`, made and printed once the first time; `what` says what it opens.
fn kept_token(kept: &Path, what: &str) -> Result<String, ErrorPayload> {
    let (token, made) = mm_server::kept_token(kept).map_err(|e| {
        ErrorPayload::new(ErrorCode::of_io(&e), format!("cannot keep the token in {}: {e}", kept.display()))
    })?;
    if made {
        esay!("A token was made: {what} need `Authorization: Bearer {token}` (kept in {})", kept.display());
    } else {
        esay!("{what} need the token kept in {}", kept.display());
    }
    Ok(token)
}

/// The server's token and the mirror's: the server's from `--token-file`, else, off loopback or when asked for on
/// loopback too, the one kept in the data folder; the mirror's whenever the server has one.
fn tokens(args: &Args, required: bool, data_dir: &Path) -> Result<(Option<String>, Option<String>), ErrorPayload> {
    let token = match &args.token_file {
        Some(file) => Some(token_from(file)?),
        None if required || !args.listen.ip().is_loopback() => {
            Some(kept_token(&mm_core::paths::serve_token_file(data_dir), "Requests")?)
        }
        None => None,
    };
    let mirror = match (&token, &args.mirror_token_file) {
        (None, Some(_)) => {
            return Err(invalid(
                "--mirror-token-file needs a server with a token: on loopback, add --require-token".into(),
            ))
        }
        (None, None) => None,
        (Some(_), Some(file)) => Some(token_from(file)?),
        (Some(_), None) => Some(kept_token(&data_dir.join("mirror-token"), "Mirror clients (HF_TOKEN)")?),
    };
    if mirror.is_some() && mirror == token {
        return Err(invalid("the mirror's token must differ from the server's: it opens less".into()));
    }
    Ok((token, mirror))
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    let data_dir = mm_core::paths::app_data_dir();
    // Its own journal: the app may run beside it, with its own downloads.
    let mut config = ManagerConfig {
        journal: Some(mm_core::paths::download_journals(&data_dir)[1].clone()),
        runtime_owner: "serve",
        ..ManagerConfig::from_env()
    };
    if let Some(upstream) = &args.upstream {
        let valid = reqwest::Url::parse(upstream).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !valid {
            return Err(invalid(format!("--upstream {upstream} is not an http(s) URL")));
        }
        let (settings, _) = config.store.load().map_err(|e| ErrorPayload::new(e.code(), e.to_string()))?;
        let from_settings = mm_core::hub::HubConfig::from_settings(&settings);
        // The hub token is for the hub: another upstream gets none.
        let endpoint = upstream.trim_end_matches('/').to_string();
        let token = if endpoint == from_settings.endpoint { from_settings.token.clone() } else { None };
        config.hub = Some(mm_core::hub::HubConfig { endpoint, token, ..from_settings });
    }
    let manager = crate::context::open(config)?;
    let (token, mirror_token) = tokens(&args, args.require_token || manager.settings().serve_require_token, &data_dir)?;
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
    let served_on = mm_core::paths::serve_address_file(&data_dir);
    let ready = |address: SocketAddr| {
        // Where the kept token is for: `mm --remote` and the window on this machine hand it to this port only.
        let noted = mm_core::paths::private_dir(&data_dir)
            .and_then(|()| mm_core::disk::write_atomic(&served_on, address.to_string().as_bytes(), 0o600));
        if let Err(e) = noted {
            esay!("warning: cannot note the address in {}: {e}", served_on.display());
        }
        let url = format!("http://{address}");
        if json {
            output::json_line(&serde_json::json!({ "listening": url, "openapi": format!("{url}/openapi.json") }));
        } else {
            say!("Serving Model Manager's API on {url} (OpenAPI: {url}/openapi.json; events: {url}/mm/v1/events)");
        }
    };
    let access = mm_server::Access {
        token,
        mirror_token,
        open_mirror: args.open_mirror,
        pull_through: !args.no_upstream,
        cache_limit: args.cache_limit,
        public_url: args.public_url,
        peers: args.peer,
    };
    let options = mm_server::ServeOptions { listen: args.listen, access, owns_manager: true };
    mm_server::serve(manager, options, ready, shutdown).await.map_err(|e| {
        ErrorPayload::new(
            match e.kind() {
                std::io::ErrorKind::InvalidInput => ErrorCode::InvalidInput,
                std::io::ErrorKind::AddrInUse => ErrorCode::Conflict,
                _ => ErrorCode::of_io(&e),
            },
            format!("cannot serve on {}: {e}", args.listen),
        )
    })
}

fn parse_size(text: &str) -> Result<u64, String> {
    mm_core::format::parse_bytes(text).ok_or_else(|| format!("\"{text}\" is not a size such as 200GB or 500MiB"))
}

#[cfg(test)]
mod peer_tests {
    use super::parse_peer;

    #[test]
    fn a_peer_is_a_name_safe_in_model_names_and_an_http_address() {
        assert_eq!(parse_peer("gpu=http://gpu:8765/"), Ok(("gpu".into(), "http://gpu:8765".into())));
        for bad in ["gpu", "=http://gpu:8765", "gpu box=http://g:1", "-gpu=http://g:1", "local=http://g:1"] {
            assert!(parse_peer(bad).is_err(), "{bad}");
        }
        assert!(parse_peer("ollama=http://g:1").unwrap_err().contains("this machine's"));
        assert!(parse_peer("gpu=ftp://g:1").unwrap_err().contains("http(s) address"));
        assert!(parse_peer("gpu=not a url").unwrap_err().contains("is not a URL"));
    }
}
