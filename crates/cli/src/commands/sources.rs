//! `mm import` (files and folders from elsewhere on disk) and `mm ollama` (the local Ollama server's models).

use crate::context::payload;
use crate::output;
use mm_core::format::bytes;
use mm_core::library::ModelType;
use mm_core::local::{ImportOptions, ImportPhase, ImportStatus};
use mm_core::{ErrorCode, ErrorPayload};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Model files (GGUF, safetensors, ONNX, PyTorch) or model folders (with config.json).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Copy into the app's models folder instead of referencing the files where they are.
    #[arg(long)]
    copy: bool,
    /// The type to give them (default: guessed from their content).
    #[arg(long = "type")]
    model_type: Option<String>,
}

pub async fn import(args: ImportArgs, json: bool) -> Result<(), ErrorPayload> {
    let manager = crate::context::load()?;
    let model_type = match args.model_type.as_deref() {
        Some(t) => Some(t.parse::<ModelType>().map_err(|e| mm_core::error::Coded::payload(&e))?),
        None => None,
    };
    let options = ImportOptions { copy: args.copy, model_type };
    let tty = std::io::stderr().is_terminal() && !json;
    // Ctrl-C stops the file being read or copied (its partial copy removed) and skips the rest.
    let on_interrupt = manager.clone();
    // Listening starts here, before any byte is read (`ctrl_c()` would start only when first polled).
    #[cfg(unix)]
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    let interrupt = tokio::spawn(async move {
        #[cfg(unix)]
        if let Some(signals) = interrupts.as_mut() {
            signals.recv().await;
            return on_interrupt.cancel_imports();
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel_imports();
        }
    });
    let on_progress = move |p: &mm_core::local::ImportProgress| {
        if tty {
            let pct = (p.bytes_done * 100).checked_div(p.bytes_total).unwrap_or(100);
            let doing = match p.phase {
                ImportPhase::Hashing => "hashing",
                ImportPhase::Copying => "copying",
            };
            eprint!("\r\x1b[2K[{}/{}] {doing} {} {pct:>3}%", p.index, p.count, crate::output::clean(&p.path));
            let _ = std::io::stderr().flush();
        }
    };
    let outcomes = manager.import(args.paths, Some(options), on_progress).await;
    interrupt.abort();
    if tty {
        eprint!("\r\x1b[2K");
    }
    let failed = outcomes.iter().filter(|o| o.status == ImportStatus::Failed).count();
    let cancelled = outcomes.iter().filter(|o| o.status == ImportStatus::Cancelled).count();
    if json {
        output::json(&outcomes);
    } else {
        for o in &outcomes {
            match (o.status, &o.error) {
                (ImportStatus::Imported, _) => say!("imported   {} as {}", o.path, o.id.as_deref().unwrap_or("")),
                (status, Some(e)) => say!(
                    "{:<10} {}",
                    match status {
                        ImportStatus::Duplicate => "duplicate",
                        ImportStatus::Cancelled => "cancelled",
                        _ => "failed",
                    },
                    e.message
                ),
                _ => {}
            }
        }
    }
    if cancelled > 0 {
        let done = outcomes.iter().filter(|o| o.status == ImportStatus::Imported).count();
        return Err(ErrorPayload::new(
            ErrorCode::Cancelled,
            format!("the import was cancelled: {done} imported before it stopped, {cancelled} not imported"),
        ));
    }
    // The batch fails when nothing in it could be imported; each problem is listed either way.
    if failed > 0 && failed == outcomes.len() {
        let first = outcomes[0].error.clone().expect("a failed outcome has its error");
        return Err(ErrorPayload::new(first.code, format!("nothing was imported: {}", first.message)));
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum OllamaArgs {
    /// The models of the Ollama server at OLLAMA_HOST.
    List,
    /// Pull a model (e.g. llama3.2:1b) with progress.
    Pull { name: String },
    /// Delete a model from the server.
    Rm { name: String },
}

pub async fn ollama(args: OllamaArgs, json: bool) -> Result<(), ErrorPayload> {
    let manager = crate::context::load()?;
    let server = manager.ollama();
    match args {
        OllamaArgs::List => {
            let models = server.models(&manager.settings()).await;
            if server.available() == Some(false) {
                // Says why nothing is listed.
                server.tags().await.map_err(payload)?;
            }
            if json {
                output::json(&models);
            } else {
                for m in &models {
                    say!("{}  {}", m.id, bytes(m.size));
                }
            }
        }
        OllamaArgs::Pull { name } => {
            let tty = std::io::stderr().is_terminal();
            server
                .pull(
                    &name,
                    |p| {
                        if json {
                            output::json_line(&serde_json::json!({ "event": "progress", "progress": p }));
                        } else if tty {
                            let amount = if p.total > 0 {
                                format!(" {} / {}", bytes(p.completed), bytes(p.total))
                            } else {
                                String::new()
                            };
                            eprint!("\r\x1b[2K{}{amount}", crate::output::clean(&p.status));
                        }
                    },
                    Default::default(),
                )
                .await
                .map_err(payload)?;
            if tty && !json {
                eprint!("\r\x1b[2K");
            }
            if !json {
                say!("Pulled {name} into Ollama at {}", server.host());
            }
        }
        OllamaArgs::Rm { name } => {
            server.delete(&name).await.map_err(payload)?;
            if json {
                output::json(&serde_json::json!({ "deleted": name }));
            } else {
                say!("Deleted {name} from Ollama at {}", server.host());
            }
        }
    }
    Ok(())
}
