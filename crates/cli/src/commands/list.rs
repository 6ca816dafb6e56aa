//! `mm list`: every model on the machine, with filters; `--revisions` shows each cached revision instead.

use crate::output;
use crate::table::Table;
use mm_core::cache::{self, CacheScan, CacheStatus};
use mm_core::library::{LibraryModel, LibraryQuery, ModelSource, ModelStatus, ModelType, SortKey};
use mm_core::{format, ErrorCode, ErrorPayload, Operations};

#[derive(clap::Args)]
pub struct Args {
    /// Only this type: text-generation, text-to-image, image-to-text, audio-to-text, text-to-audio, embedding,
    /// classification, other.
    #[arg(long = "type", value_name = "TYPE")]
    model_type: Option<String>,
    /// Only this status: queued, downloading, available, partial, error, active.
    #[arg(long)]
    status: Option<String>,
    /// Only this source: hugging-face, folder.
    #[arg(long)]
    source: Option<String>,
    /// Only models whose id, task, library or architecture contains this.
    #[arg(long, short)]
    search: Option<String>,
    /// Order by name, size or date.
    #[arg(long, default_value = "name")]
    sort: String,
    /// Largest, newest or last name first.
    #[arg(long)]
    desc: bool,
    /// One row per cached revision of every repo in the cache, with commits and completeness.
    #[arg(long)]
    revisions: bool,
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, value: &str, known: &str) -> Result<T, ErrorPayload> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| {
        ErrorPayload::new(ErrorCode::InvalidInput, format!("\"{value}\" is not a {what}: use one of {known}"))
    })
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    if args.revisions {
        let scan = crate::context::load()?.scan_cache().await?;
        if json {
            output::json(&scan);
        } else {
            print!("{}", crate::output::clean(&render_revisions(&scan, format::now_unix())));
        }
        for problem in &scan.problems {
            esay!("warning: {}: {}", problem.path, problem.message);
        }
        return Ok(());
    }
    let query = LibraryQuery {
        model_type: args
            .model_type
            .as_deref()
            .map(|t| t.parse::<ModelType>().map_err(|e| mm_core::error::Coded::payload(&e)))
            .transpose()?,
        status: args
            .status
            .as_deref()
            .map(|s| parse::<ModelStatus>("status", s, "queued, downloading, available, partial, error, active"))
            .transpose()?,
        source: args
            .source
            .as_deref()
            .map(|s| parse::<ModelSource>("source", s, "hugging-face, folder, imported, url, ollama"))
            .transpose()?,
        text: args.search,
        sort: parse::<SortKey>("sort order", &args.sort, "name, size, date, used")?,
        descending: args.desc,
    };
    let machine = crate::context::machine()?;
    let models = machine.models(query).await?;
    let place = machine.place();
    if json {
        output::json(&serde_json::json!({ "cacheDir": place, "machine": machine.name(), "models": models }));
    } else {
        print!("{}", crate::output::clean(&render(&models, &place, format::now_unix())));
    }
    Ok(())
}

fn render(models: &[LibraryModel], cache_dir: &str, now: u64) -> String {
    if models.is_empty() {
        return format!("No models (cache: {cache_dir}).\n");
    }
    let mut table = Table::new(&["MODEL", "TYPE", "FORMAT", "SIZE>", "STATUS", "REVISION", "DOWNLOADED"]);
    for m in models {
        let status = serde_json::to_value(m.status).unwrap().as_str().unwrap_or("").to_string();
        let format = serde_json::to_value(m.format).unwrap().as_str().unwrap_or("").to_string();
        let revision = match (&m.revision, &m.commit) {
            (Some(r), Some(c)) => format!("{r} ({})", &c[..7.min(c.len())]),
            (None, Some(c)) => c[..7.min(c.len())].to_string(),
            (Some(r), None) => r.clone(),
            (None, None) => "-".into(),
        };
        table.row(vec![
            m.id.clone(),
            m.model_type.to_string(),
            format,
            format::bytes(m.size),
            status,
            revision,
            m.downloaded_at.map(|t| format::ago(t, now)).unwrap_or_else(|| "-".into()),
        ]);
    }
    let total: u64 = models.iter().map(|m| m.size).sum();
    format!(
        "{}\n{} model{}, {} on disk\n",
        table.render(),
        models.len(),
        if models.len() == 1 { "" } else { "s" },
        format::bytes(total)
    )
}

/// The per-revision listing of the cache.
fn render_revisions(scan: &CacheScan, now: u64) -> String {
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
