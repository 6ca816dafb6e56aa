//! `mm cancel REPO`: stops a running `mm download` of the repo and deletes the partial files it leaves.

use crate::output;
use mm_core::hub::parse_repo_reference;
use mm_core::machine::Machine;
use mm_core::{format, ErrorCode, ErrorPayload};

#[derive(clap::Args)]
pub struct Args {
    /// org/name or a hub URL.
    repo: String,
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    let manager = match crate::context::machine()? {
        Machine::Local(manager) => manager,
        remote => {
            let (repo, _) = parse_repo_reference(&args.repo)
                .map_err(|e| ErrorPayload::new(ErrorCode::InvalidInput, e.to_string()))?;
            return cancel_there(&remote, &repo.to_string(), json).await;
        }
    };
    let cancelled = manager.cancel_repo(&args.repo).await?;
    let (repo, stopped, freed) = (cancelled.repo, cancelled.stopped, cancelled.bytes_freed);
    if json {
        output::json(&serde_json::json!({
            "repo": repo,
            "stoppedPid": stopped.first(),
            "stoppedPids": stopped,
            "bytesFreed": freed,
        }));
    } else {
        let pids = stopped.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        match stopped.len() {
            1 => say!("Cancelled the download of {repo} (process {pids}); freed {}", format::bytes(freed)),
            2.. => say!("Cancelled the downloads of {repo} (processes {pids}); freed {}", format::bytes(freed)),
            _ if freed > 0 => {
                say!("No download of {repo} was running; deleted {} of partial files", format::bytes(freed))
            }
            _ => say!("No download of {repo} was running and nothing partial was left"),
        }
    }
    Ok(())
}

/// On another machine: cancels its unfinished downloads of `repo` (which delete their partial files there).
async fn cancel_there(machine: &Machine, repo: &str, json: bool) -> Result<(), ErrorPayload> {
    let running: Vec<u64> = machine
        .downloads()
        .await?
        .into_iter()
        .filter(|d| d.repo == repo && !d.state.is_finished())
        .map(|d| d.id)
        .collect();
    for id in &running {
        machine.cancel(*id).await?;
    }
    if json {
        output::json(&serde_json::json!({ "repo": repo, "machine": machine.name(), "cancelled": running }));
    } else if running.is_empty() {
        say!("No download of {repo} was running on {}", machine.name());
    } else {
        say!(
            "Cancelled {} download{} of {repo} on {}",
            running.len(),
            if running.len() == 1 { "" } else { "s" },
            machine.name()
        );
    }
    Ok(())
}
