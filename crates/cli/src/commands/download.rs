//! `mm download REPO`: a repo (or hub URL) into the Hugging Face cache, with a progress bar on a terminal or
//! JSON lines with `--json`. Ctrl-C stops and keeps the partial files: the same command resumes. `mm cancel`
//! from another terminal stops it and deletes them.

use crate::output;
use mm_core::download::url::UrlSource;
use mm_core::download::{marker, DownloadEvent, DownloadOptions, DownloadProgress, DownloadRequest, DownloadState};
use mm_core::hub::{parse_repo_reference, HubConfig};
use mm_core::machine::Machine;
use mm_core::{cache, format, ErrorCode, ErrorPayload, Manager, Operations};

use std::io::{IsTerminal, Write};
use tokio::signal::unix::{signal, SignalKind};

#[derive(clap::Args)]
pub struct Args {
    /// org/name, org/name@revision, or a hub URL.
    repo: String,
    /// Branch, tag or commit (default: main, or the one in the URL).
    #[arg(long, short)]
    revision: Option<String>,
    /// Only files matching this glob (repeatable), e.g. --include '*.json' --include '*Q4_K_M.gguf'.
    #[arg(long)]
    include: Vec<String>,
    /// Skip files matching this glob (repeatable).
    #[arg(long)]
    exclude: Vec<String>,
    /// Files fetched at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// For a direct URL: the sha256 the file must have (checked while streaming).
    #[arg(long, conflicts_with = "md5")]
    sha256: Option<String>,
    /// For a direct URL: the md5 the file must have.
    #[arg(long)]
    md5: Option<String>,
    /// For a direct URL: the file name to store it under (default: from the server or the URL).
    #[arg(long)]
    name: Option<String>,
    /// Past the storage limit or the free-space floor: remove the least recently used models nobody uses to make
    /// room (the refusal without it names them).
    #[arg(long)]
    evict: bool,
}

/// A direct download: an http(s) URL that is not a hub page, or any URL with a checksum or name given.
fn is_direct_url(args: &Args, endpoint: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(&args.repo) else { return false };
    if args.sha256.is_some() || args.md5.is_some() || args.name.is_some() {
        return true;
    }
    let hub_hosts = [reqwest::Url::parse(endpoint).ok().and_then(|e| e.host_str().map(str::to_owned))];
    let host = url.host_str().unwrap_or("").to_string();
    !(host == "huggingface.co" || host == "hf.co" || hub_hosts.iter().flatten().any(|h| *h == host))
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    if let Some(remote) = crate::context::remote() {
        return run_there(&Machine::Remote(remote), args, json).await;
    }
    let options = DownloadOptions { files_in_parallel: args.parallel.max(1), ..Default::default() };
    let manager = crate::context::with(options)?;
    if is_direct_url(&args, &HubConfig::from_settings(&manager.settings()).endpoint) {
        let source = UrlSource { url: args.repo.clone(), sha256: args.sha256, md5: args.md5, name: args.name };
        let request = DownloadRequest { repo: String::new(), url: Some(source), ..DownloadRequest::default() };
        let done = follow(&manager, request, json).await?;
        let models = mm_core::local::models_dir(manager.data_dir());
        if !json {
            say!("Downloaded {} ({}) into {}", done.repo, format::bytes(done.bytes_total), models.display());
        }
        return Ok(());
    }
    let (repo, url_revision) =
        parse_repo_reference(&args.repo).map_err(|e| ErrorPayload::new(ErrorCode::InvalidInput, e.to_string()))?;
    let cache_dir = manager.cache_dir().to_path_buf();
    let request = DownloadRequest {
        repo: repo.to_string(),
        revision: args.revision.or(url_revision),
        include: args.include,
        exclude: args.exclude,
        files: Vec::new(),
        url: None,
        evict: args.evict,
    };
    let _marker = marker::mark(&cache_dir, &repo).map_err(|e| {
        ErrorPayload::new(ErrorCode::of_io(&e), format!("cannot write to the cache {}: {e}", cache_dir.display()))
    })?;
    let done = follow(&manager, request, json).await?;
    if !json {
        let path = cache_dir
            .join(repo.folder_name(cache::RepoKind::Model))
            .join("snapshots")
            .join(done.commit.as_deref().unwrap_or(""));
        say!(
            "Downloaded {} ({} file{}, {}) to {}",
            done.repo,
            done.files_total,
            if done.files_total == 1 { "" } else { "s" },
            format::bytes(done.bytes_total),
            path.display()
        );
    }
    Ok(())
}

/// Runs one download to its end with a progress bar (JSON lines with `--json`); Ctrl-C pauses and keeps the
/// partial files, SIGTERM cancels and deletes them.
async fn follow(manager: &Manager, request: DownloadRequest, json: bool) -> Result<DownloadProgress, ErrorPayload> {
    let mut events = manager.subscribe();
    // Before anything that takes time: `mm cancel` may ask as soon as the marker is there.
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    // The checked queue, as on another machine: what does not exist or does not fit is refused before it is queued.
    let (id, _) = manager.queue(request).await?;
    let mut bar = Bar::new(json);
    let wait = manager.wait(id);
    tokio::pin!(wait);
    let result = loop {
        tokio::select! {
            result = &mut wait => break result,
            Ok(event) = events.recv() => if let DownloadEvent::Progress(p) = event { bar.show(&p) },
            _ = interrupt.recv() => {
                let _ = manager.pause(id);
                let _ = (&mut wait).await;
                bar.clear();
                return Err(ErrorPayload::new(ErrorCode::Cancelled, "interrupted; the partial files are kept: run the same command to resume"));
            }
            _ = terminate.recv() => {
                let _ = manager.cancel(id);
                let _ = (&mut wait).await;
                bar.clear();
                return Err(ErrorPayload::new(ErrorCode::Cancelled, "cancelled; the partial files were deleted"));
            }
        }
    };
    bar.clear();
    let done = result?;
    bar.show(&done);
    if json {
        output::json_line(&serde_json::json!({ "event": "done", "progress": done }));
    }
    Ok(done)
}

/// The same download on another machine: started there, followed through its events (and, between them, its
/// state), until it ends. Ctrl-C pauses it there (its partial files stay), SIGTERM cancels it.
async fn run_there(machine: &Machine, args: Args, json: bool) -> Result<(), ErrorPayload> {
    let request = if is_direct_url(&args, mm_core::hub::config::DEFAULT_ENDPOINT) {
        let source = UrlSource { url: args.repo.clone(), sha256: args.sha256, md5: args.md5, name: args.name };
        DownloadRequest { repo: String::new(), url: Some(source), ..DownloadRequest::default() }
    } else {
        let (repo, url_revision) =
            parse_repo_reference(&args.repo).map_err(|e| ErrorPayload::new(ErrorCode::InvalidInput, e.to_string()))?;
        DownloadRequest {
            repo: repo.to_string(),
            revision: args.revision.or(url_revision),
            include: args.include,
            exclude: args.exclude,
            ..DownloadRequest::default()
        }
    };
    let mut events = machine.subscribe();
    let id = machine.start(request).await?.id;
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut bar = Bar::new(json);
    loop {
        tokio::select! {
            Ok(DownloadEvent::Progress(p)) = events.recv() => {
                if p.id == id {
                    bar.show(&p);
                }
            }
            // The events may lag or drop: the download's own state says when it ended.
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            _ = interrupt.recv() => {
                let _ = machine.pause(id).await;
                bar.clear();
                return Err(ErrorPayload::new(ErrorCode::Cancelled, format!("interrupted; the download is paused on {}: run the same command to resume", machine.name())));
            }
            _ = terminate.recv() => {
                let _ = machine.cancel(id).await;
                bar.clear();
                return Err(ErrorPayload::new(ErrorCode::Cancelled, format!("cancelled on {}; its partial files were deleted", machine.name())));
            }
        }
        let now = machine.download(id).await?;
        if now.state.is_finished() {
            bar.clear();
            bar.show(&now);
            return match now.state {
                DownloadState::Completed => {
                    if json {
                        output::json_line(&serde_json::json!({ "event": "done", "progress": now }));
                    } else {
                        say!("Downloaded {} ({}) on {}", now.repo, format::bytes(now.bytes_total), machine.name());
                    }
                    Ok(())
                }
                DownloadState::Cancelled => Err(ErrorPayload::new(
                    ErrorCode::Cancelled,
                    format!("the download of {} was cancelled on {}", now.repo, machine.name()),
                )),
                _ => Err(now.error.unwrap_or(ErrorPayload::new(
                    ErrorCode::Internal,
                    format!("the download of {} failed on {}", now.repo, machine.name()),
                ))),
            };
        }
    }
}

/// The progress bar on a terminal, JSON lines with `--json`, nothing when stderr is not a terminal.
struct Bar {
    json: bool,
    tty: bool,
    drawn: bool,
}

impl Bar {
    fn new(json: bool) -> Bar {
        Bar { json, tty: std::io::stderr().is_terminal(), drawn: false }
    }

    fn show(&mut self, p: &DownloadProgress) {
        if self.json {
            output::json_line(&serde_json::json!({ "event": "progress", "progress": p }));
            return;
        }
        if !self.tty {
            return;
        }
        let fraction = if p.bytes_total == 0 { 0.0 } else { p.bytes_done as f64 / p.bytes_total as f64 };
        let width = 24;
        let filled = (fraction * width as f64).round() as usize;
        let eta = p.eta_seconds.map(|s| format!("  ETA {}", format::duration(s))).unwrap_or_default();
        let speed =
            if p.bytes_per_second > 0 { format!("  {}/s", format::bytes(p.bytes_per_second)) } else { String::new() };
        let line = format!(
            "\r\x1b[2K{}  [{}{}] {:>3.0}%  {} / {}  {}/{} files{speed}{eta}  {:?}",
            p.repo,
            "█".repeat(filled),
            "░".repeat(width - filled),
            fraction * 100.0,
            format::bytes(p.bytes_done),
            format::bytes(p.bytes_total),
            p.files_done,
            p.files_total,
            p.state,
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }
}
