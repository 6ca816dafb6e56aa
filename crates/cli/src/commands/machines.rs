//! `mm machines`: the other machines' `mm serve` this machine knows (what the window's Settings → Machines keeps),
//! their tokens kept like the hub token. Their models are served by this machine's endpoint as `NAME/ID`.

use crate::output;
use mm_core::{ErrorCode, ErrorPayload};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Args {
    /// The machines added, by name and address.
    List,
    /// Add (or update) a machine, once it answers with its token.
    Add {
        /// What to call it: the NAME of its models here (NAME/ID).
        name: String,
        /// Its `mm serve`, as it printed it (http://gpu:8765).
        url: String,
        /// A file holding its token (its `serve-token`); `MM_MACHINE_TOKEN` gives it too.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Forget a machine and its token.
    Remove { url: String },
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    let manager = crate::context::load()?;
    match args {
        Args::List => {
            let machines = manager.settings().machines;
            if json {
                output::json(&machines);
            } else if machines.is_empty() {
                say!("No machines added (mm machines add NAME URL --token-file FILE)");
            } else {
                for m in machines {
                    say!("{}\t{}", m.name, m.url);
                }
            }
        }
        Args::Add { name, url, token_file } => {
            let token = match token_file {
                Some(file) => Some(std::fs::read_to_string(&file).map_err(|e| {
                    ErrorPayload::new(ErrorCode::of_io(&e), format!("cannot read {}: {e}", file.display()))
                })?),
                None => std::env::var("MM_MACHINE_TOKEN").ok(),
            };
            let entry = manager.add_machine(&name, &url, token.as_deref().map(str::trim)).await?;
            if json {
                output::json(&entry);
            } else {
                say!("Added {} ({}): its models are NAME/ID on this machine's endpoint", entry.name, entry.url);
            }
        }
        Args::Remove { url } => {
            manager.remove_machine(url.trim_end_matches('/'))?;
            if json {
                output::json(&serde_json::json!({ "removed": url }));
            } else {
                say!("Removed {url}");
            }
        }
    }
    Ok(())
}
