//! `mm cancel REPO`: stops every download of the repo on the machine (its own, and a running `mm download`) and
//! deletes the partial files they leave.

use crate::output;
use mm_core::operations::CancelRepo;
use mm_core::{format, ErrorPayload, Operations};

#[derive(clap::Args)]
pub struct Args {
    /// org/name or a hub URL.
    repo: String,
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    let machine = crate::context::machine()?;
    let cancelled = machine.cancel_repo(CancelRepo { repo: args.repo }).await?;
    let (repo, stopped, freed) = (&cancelled.repo, &cancelled.stopped, cancelled.bytes_freed);
    if json {
        output::json(&serde_json::json!({
            "repo": repo,
            "machine": machine.name(),
            "stoppedPid": stopped.first(),
            "stoppedPids": stopped,
            "cancelled": cancelled.cancelled,
            "bytesFreed": freed,
        }));
        return Ok(());
    }
    let pids = stopped.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let on = if machine.is_this_machine() { String::new() } else { format!(" on {}", machine.name()) };
    match (stopped.len(), cancelled.cancelled.len()) {
        (1, _) => say!("Cancelled the download of {repo} (process {pids}){on}; freed {}", format::bytes(freed)),
        (2.., _) => say!("Cancelled the downloads of {repo} (processes {pids}){on}; freed {}", format::bytes(freed)),
        (0, 1..) => say!("Cancelled the download of {repo}{on}; freed {}", format::bytes(freed)),
        _ if freed > 0 => {
            say!("No download of {repo} was running{on}; deleted {} of partial files", format::bytes(freed))
        }
        _ => say!("No download of {repo} was running{on} and nothing partial was left"),
    }
    Ok(())
}
