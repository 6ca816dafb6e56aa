//! `mm`: Model Manager's command line. Every command calls the same core as the app, prints a readable result on
//! a terminal or one JSON document with `--json`, and on failure exits with the error code's stable status.

mod commands;
mod output;
mod table;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "mm", version, about = "Find, download, verify and manage local AI models")]
struct Cli {
    /// Print one JSON document (or JSON lines for progress) instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the models in the Hugging Face cache (HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).
    List(commands::list::Args),
    /// Download a repo from the Hugging Face Hub into the cache, verified and resumable.
    Download(commands::download::Args),
    /// Stop a running download of a repo and delete its partial files.
    Cancel(commands::cancel::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            return output::fail(
                &mm_core::ErrorPayload { code: mm_core::ErrorCode::Internal, message: err.to_string() },
                cli.json,
            )
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::List(args) => commands::list::run(args, cli.json).await,
            Command::Download(args) => commands::download::run(args, cli.json).await,
            Command::Cancel(args) => commands::cancel::run(args, cli.json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => output::fail(&err, cli.json),
    }
}
