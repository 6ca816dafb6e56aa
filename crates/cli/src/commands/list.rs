//! `mm list`: the models in the Hugging Face cache.

use crate::output;
use crate::table::Table;
use mm_core::cache::{self, CacheScan, CacheStatus};
use mm_core::error::Coded;
use mm_core::{format, ErrorPayload};

#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, json: bool) -> Result<(), ErrorPayload> {
    let scan = cache::scan(cache::hub_cache_dir()).await.map_err(|e| e.payload())?;
    if json {
        output::json(&scan);
    } else {
        print!("{}", render(&scan, format::now_unix()));
        for problem in &scan.problems {
            eprintln!("warning: {}: {}", problem.path, problem.message);
        }
    }
    Ok(())
}

/// The text listing: one row per cached revision, then a summary line.
fn render(scan: &CacheScan, now: u64) -> String {
    if scan.repos.is_empty() {
        let why = if scan.exists { "is empty" } else { "does not exist yet" };
        return format!("No models: the Hugging Face cache at {} {why}.\n", scan.cache_dir);
    }
    let mut table = Table::new(&["MODEL", "REVISION", "FILES>", "SIZE>", "STATUS", "MODIFIED"]);
    for repo in &scan.repos {
        let name = match repo.kind {
            cache::RepoKind::Model => repo.repo_id.clone(),
            other => format!("{} ({})", repo.repo_id, serde_json::to_value(other).unwrap().as_str().unwrap_or("")),
        };
        let status = |s: CacheStatus, missing: usize| match s {
            CacheStatus::Complete => "complete".to_string(),
            CacheStatus::Partial if missing > 0 => format!("partial ({missing} missing)"),
            CacheStatus::Partial => "partial".to_string(),
        };
        if repo.revisions.is_empty() {
            table.row(vec![
                name,
                "-".into(),
                "0".into(),
                format::bytes(repo.size_on_disk),
                status(repo.status, 0),
                "-".into(),
            ]);
            continue;
        }
        for revision in &repo.revisions {
            let short = &revision.commit[..revision.commit.len().min(7)];
            let label = if revision.refs.is_empty() {
                short.to_string()
            } else {
                format!("{} ({short})", revision.refs.join(", "))
            };
            // A repo with an interrupted download is partial even when each snapshot is whole.
            let revision_status = if repo.incomplete.is_empty() { revision.status } else { CacheStatus::Partial };
            table.row(vec![
                name.clone(),
                label,
                revision.files.len().to_string(),
                format::bytes(revision.size_on_disk),
                status(revision_status, revision.missing.len()),
                revision.last_modified.map(|t| format::ago(t, now)).unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    let count = scan.repos.len();
    format!(
        "{}\n{count} repo{}, {} on disk in {}\n",
        table.render(),
        if count == 1 { "" } else { "s" },
        format::bytes(scan.size_on_disk),
        scan.cache_dir
    )
}
