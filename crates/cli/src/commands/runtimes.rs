//! `mm runtime list|get|use|rollback|remove`: the llama.cpp builds that load GGUF models, and getting one from
//! llama.cpp's releases (or the `llamaCppReleases` setting's) without building anything.

use crate::output;
use crate::table::Table;
use mm_core::format::bytes;
use mm_core::operations::{GetRuntime, Runtimes, UseRuntime};
use mm_core::{ErrorPayload, Operations};

#[derive(clap::Subcommand)]
pub enum Args {
    /// The builds of this machine, with version and backend, and the one that loads models.
    List,
    /// Get llama.cpp for this machine (its OS, CPU and GPU), checked against the release's sha256, tried, and made
    /// the default.
    Get {
        /// A release tag (default: the latest).
        #[arg(long)]
        release: Option<String>,
        /// cpu, cuda, vulkan, rocm or metal (default: chosen from the GPUs, the CPU build as the fallback).
        #[arg(long)]
        backend: Option<String>,
    },
    /// Make a build the one that loads models, by its name in the list (`path`: the one on PATH).
    Use { name: String },
    /// Go back to the build that loaded models before the last change.
    Rollback,
    /// Remove a build the app got.
    Remove { name: String },
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    let machine = crate::context::machine()?;
    let runtimes = match args {
        Args::List => machine.runtimes().await?,
        Args::Get { release, backend } => {
            let build = machine
                .get_runtime(GetRuntime { release, backend }, move |p| {
                    if !json && p.stage == "download" && p.total > 0 && p.bytes == p.total {
                        esay!("downloaded {}", bytes(p.total));
                    } else if !json && p.stage != "download" && p.bytes == 0 {
                        esay!("{}…", p.stage);
                    }
                })
                .await?;
            if json {
                output::json(&build);
            } else {
                say!(
                    "{} ({}, {}) is the default now: {}",
                    build.name,
                    build.version.as_deref().unwrap_or("?"),
                    build.backend,
                    build.path
                );
            }
            return Ok(());
        }
        Args::Use { name } => machine.use_runtime(UseRuntime { name }).await?,
        Args::Rollback => machine.rollback_runtime().await?,
        Args::Remove { name } => {
            let removed = machine.remove_runtime(name).await?;
            if json {
                output::json(&removed);
            } else {
                say!("removed {}, freeing {}", removed.name, bytes(removed.bytes_freed));
            }
            return Ok(());
        }
    };
    show(&runtimes, json);
    Ok(())
}

fn show(runtimes: &Runtimes, json: bool) {
    if json {
        output::json(runtimes);
        return;
    }
    if runtimes.builds.is_empty() {
        say!("no llama-server on this machine: `mm runtime get` gets llama.cpp from {}", runtimes.releases);
        return;
    }
    let mut table = Table::new(&["", "NAME", "VERSION", "BACKEND", "FROM", "PATH"]);
    for b in &runtimes.builds {
        let default = if runtimes.default.as_deref() == Some(b.path.as_str()) { "*" } else { "" };
        let version = b.version.clone().or_else(|| b.error.clone()).unwrap_or_default();
        let origin =
            serde_json::to_value(b.origin).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        table.row(vec![default.into(), b.name.clone(), version, b.backend.clone(), origin, b.path.clone()]);
    }
    say!("{}", table.render());
}
