//! `mm`: Model Manager's command line. Every command calls the same core as the app, prints a readable result on
//! a terminal or one JSON document with `--json`, and on failure exits with the error code's stable status.

// First, so that its `say!` and `esay!` are in scope everywhere below.
#[macro_use]
mod output;
mod commands;
mod context;
mod table;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "mm", version, about = "Find, download, verify and manage local AI models")]
struct Cli {
    /// Print one JSON document (or JSON lines for progress) instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// Log what the core does (requests, retries, refusals) to stderr; `MM_LOG` sets a finer filter.
    #[arg(short, long, global = true)]
    verbose: bool,

    /// Run the command on another machine, through its `mm serve` (http://host:8765). Its token comes from
    /// `MM_REMOTE_TOKEN` or --remote-token-file.
    #[arg(long, global = true, env = "MM_REMOTE", value_name = "URL")]
    remote: Option<String>,

    /// A file holding the remote machine's token.
    #[arg(long, global = true, value_name = "FILE")]
    remote_token_file: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the models on this machine (the Hugging Face cache and library folders), with filters.
    List(commands::list::Args),
    /// Everything about one model: type, format, location, revisions, files and hashes, card.
    Info(commands::library::InfoArgs),
    /// Delete a model or one revision of it, keeping blobs other revisions use.
    Rm(commands::library::RmArgs),
    /// Re-hash a model's files against their hashes; --repair downloads the bad ones again.
    Verify(commands::library::VerifyArgs),
    /// Disk use per model, free space, and what can be reclaimed (--clean reclaims it).
    Du(commands::library::DuArgs),
    /// Remember a model's type (or `auto` for the inferred one).
    Type(commands::library::TypeArgs),
    /// The machine's figures: models by type, status and source, bytes per folder, downloads, loaded models and
    /// their requests, mirror hits.
    Stats,
    /// Move a model to another of the library's folders (another disk) and back.
    Move(commands::library::MoveArgs),
    /// Pin a model: nothing removes it to make room under the storage limit.
    Pin(commands::library::PinArgs),
    /// Unpin a model: a storage limit may remove it when nobody uses it.
    Unpin(commands::library::PinArgs),
    /// Link an adapter (a LoRA) to the base it runs on (or `auto` for the one it names or fits).
    Link(commands::library::LinkArgs),
    /// Make a model the active one of its type (switching from the one before).
    Activate(commands::activation::ActivateArgs),
    /// Clear the active model of a type.
    Deactivate(commands::activation::DeactivateArgs),
    /// Show the active model of each type, or one type's path (`--path`) for scripts.
    Active(commands::activation::ActiveArgs),
    /// This machine: GPUs and VRAM (NVML), RAM, CPU and its features, OS, free disk.
    System(commands::compat::SystemArgs),
    /// Will a model run here? A hub repo, a library model, a folder or a .gguf/.safetensors file.
    Compat(commands::compat::CompatArgs),
    /// Read or change settings (shared with the app).
    #[command(subcommand)]
    Config(commands::config::Args),
    /// The other machines whose models this machine's endpoint serves as NAME/ID (the window's Settings → Machines).
    #[command(subcommand)]
    Machines(commands::machines::Args),
    /// Download a hub repo into the Hugging Face cache, or a file from a URL into the models folder; verified and
    /// resumable.
    Download(commands::download::Args),
    /// Stop a running download of a repo and delete its partial files.
    Cancel(commands::cancel::Args),
    /// Search the hub's models by words, task, library, author and tags.
    Search(commands::discover::SearchArgs),
    /// The starter catalog: a few small, well-known models per type, marked when installed.
    Catalog(commands::discover::CatalogArgs),
    /// Bring model files or folders from elsewhere on disk into the library (referenced in place, or --copy).
    Import(commands::sources::ImportArgs),
    /// The local Ollama server's models: list, pull, rm.
    #[command(subcommand)]
    Ollama(commands::sources::OllamaArgs),
    /// Serve the active model of a type (default text-generation), or activate a model and serve it, on a local
    /// OpenAI-compatible endpoint; returns once it answers and leaves it running.
    Load(commands::runtime::LoadArgs),
    /// How a model is run: context, GPU layers, KV cache type, threads, sampling defaults, more runtime flags.
    #[command(subcommand, name = "load-settings")]
    LoadSettings(commands::load_settings::Args),
    /// The llama.cpp builds that load models: list, get (from llama.cpp's releases), use, rollback, remove.
    #[command(subcommand)]
    Runtime(commands::runtimes::Args),
    /// Stop serving a type or model, or everything loaded.
    Unload(commands::runtime::UnloadArgs),
    /// The loaded models: state, endpoint, memory measured beside the estimate, requests.
    Ps(commands::runtime::PsArgs),
    /// Serve the same operations as an HTTP API (REST, live events, OpenAPI at /openapi.json) until SIGTERM.
    Serve(commands::serve::Args),
}

fn main() -> ExitCode {
    // Started by a load as the runtime host: that is all this process does.
    mm_core::runtime::host::run_if_asked();
    let cli = Cli::parse();
    mm_core::logs::to_stderr(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            return output::fail(&mm_core::ErrorPayload::new(mm_core::ErrorCode::Internal, err.to_string()), cli.json)
        }
    };
    if let Err(err) = context::choose_remote(cli.remote.as_deref(), cli.remote_token_file.as_deref()) {
        return output::fail(&err, cli.json);
    }
    let result = runtime.block_on(async {
        match cli.command {
            Command::List(args) => commands::list::run(args, cli.json).await,
            Command::Info(args) => commands::library::info(args, cli.json).await,
            Command::Rm(args) => commands::library::rm(args, cli.json).await,
            Command::Verify(args) => commands::library::verify(args, cli.json).await,
            Command::Du(args) => commands::library::du(args, cli.json).await,
            Command::Type(args) => commands::library::set_type(args, cli.json).await,
            Command::Link(args) => commands::library::link(args, cli.json).await,
            Command::Move(args) => commands::library::move_model(args, cli.json).await,
            Command::Stats => commands::library::stats(cli.json).await,
            Command::Pin(args) => commands::library::pin(args, true, cli.json).await,
            Command::Unpin(args) => commands::library::pin(args, false, cli.json).await,
            Command::Activate(args) => commands::activation::activate(args, cli.json).await,
            Command::Deactivate(args) => commands::activation::deactivate(args, cli.json).await,
            Command::Active(args) => commands::activation::active(args, cli.json).await,
            Command::System(args) => commands::compat::system(args, cli.json).await,
            Command::Compat(args) => commands::compat::compat(args, cli.json).await,
            Command::Config(args) => commands::config::run(args, cli.json).await,
            Command::Machines(args) => commands::machines::run(args, cli.json).await,
            Command::LoadSettings(args) => commands::load_settings::run(args, cli.json).await,
            Command::Runtime(args) => commands::runtimes::run(args, cli.json).await,
            Command::Download(args) => commands::download::run(args, cli.json).await,
            Command::Cancel(args) => commands::cancel::run(args, cli.json).await,
            Command::Search(args) => commands::discover::search(args, cli.json).await,
            Command::Catalog(args) => commands::discover::catalog(args, cli.json).await,
            Command::Import(args) => commands::sources::import(args, cli.json).await,
            Command::Ollama(args) => commands::sources::ollama(args, cli.json).await,
            Command::Load(args) => commands::runtime::load(args, cli.json).await,
            Command::Unload(args) => commands::runtime::unload(args, cli.json).await,
            Command::Ps(args) => commands::runtime::ps(args, cli.json).await,
            Command::Serve(args) => commands::serve::run(args, cli.json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => output::fail(&err, cli.json),
    }
}
