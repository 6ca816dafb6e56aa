//! `mm info`, `mm rm`, `mm verify`, `mm du`, `mm type`: what one does with models already on the machine.

use crate::output;
use crate::table::Table;
use mm_core::library::verify::FileStatus;
use mm_core::operations::{DeleteOptions, TypeChange, VerifyOptions};
use mm_core::{format, ErrorPayload, Operations};

#[derive(clap::Args)]
pub struct InfoArgs {
    /// The model id, org/name.
    id: String,
}

pub async fn info(args: InfoArgs, json: bool) -> Result<(), ErrorPayload> {
    let details = crate::context::machine()?.model(args.id.clone()).await?;
    if json {
        output::json(&details);
        return Ok(());
    }
    let m = &details.model;
    say!("{}", m.id);
    say!("  type       {} ({:?})", m.model_type, m.type_origin);
    say!("  status     {}", serde_json::to_value(m.status).unwrap().as_str().unwrap_or(""));
    say!("  format     {}", serde_json::to_value(m.format).unwrap().as_str().unwrap_or(""));
    say!("  size       {}", format::bytes(m.size));
    say!("  location   {}", m.path);
    if let Some(tag) = &m.pipeline_tag {
        say!("  task       {tag}");
    }
    if !m.architectures.is_empty() {
        say!("  arch       {}", m.architectures.join(", "));
    }
    if let Some(card) = details.card.as_ref().and_then(|c| c.as_object()) {
        for key in ["license", "base_model", "language"] {
            if let Some(value) = card.get(key) {
                say!("  {key:<10} {}", value.to_string().trim_matches('"'));
            }
        }
    }
    for r in &details.revisions {
        let refs = if r.refs.is_empty() { String::new() } else { format!(" ({})", r.refs.join(", ")) };
        say!("\nrevision {}{refs}: {} files, {}", r.commit, r.files.len(), format::bytes(r.size_on_disk));
        let mut table = Table::new(&["FILE", "SIZE>", "HASH"]);
        for f in &r.files {
            table.row(vec![f.path.clone(), format::bytes(f.size), f.blob.clone().unwrap_or_else(|| "-".into())]);
        }
        for path in &r.missing {
            table.row(vec![path.clone(), "-".into(), "missing".into()]);
        }
        print!("{}", crate::output::clean(&table.render()));
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// The model id, org/name.
    id: String,
    /// Remove only this revision (branch, tag or commit); blobs other revisions use stay.
    #[arg(long, short)]
    revision: Option<String>,
    /// Say what would be freed, and delete nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn rm(args: RmArgs, json: bool) -> Result<(), ErrorPayload> {
    let report = crate::context::machine()?
        .delete(args.id.clone(), DeleteOptions { revision: args.revision.clone(), dry_run: args.dry_run })
        .await?;
    if !json && !report.adapters.is_empty() {
        let verb = if report.dry_run { "would lose" } else { "lost" };
        esay!("warning: its adapters {verb} their base: {}", report.adapters.join(", "));
    }
    // A model outside the Hugging Face cache: its file goes when the app owns it, else it is only forgotten.
    let outside_cache = [mm_core::local::LOCAL_PREFIX, mm_core::local::FOLDER_PREFIX, mm_core::ollama::OLLAMA_PREFIX];
    if outside_cache.iter().any(|p| args.id.starts_with(p)) {
        let verb = match (args.dry_run, report.bytes_freed > 0) {
            (true, true) => "Would delete",
            (false, true) => "Deleted",
            (true, false) => "Would forget (the file stays where it is)",
            (false, false) => "Forgot (the file stays where it is)",
        };
        match json {
            true => output::json(&report),
            false => say!("{verb} {} ({})", args.id, format::bytes(report.bytes_freed)),
        }
        return Ok(());
    }
    if json {
        output::json(&report);
    } else {
        let what = match &report.revision {
            Some(r) => format!("{} revision {r}", report.id),
            None => report.id.clone(),
        };
        let verb = if report.dry_run { "Would free" } else { "Freed" };
        say!(
            "{verb} {} ({} blob{}) by deleting {what}: {} before, {} after",
            format::bytes(report.bytes_freed),
            report.blobs_removed,
            if report.blobs_removed == 1 { "" } else { "s" },
            format::bytes(report.bytes_before),
            format::bytes(report.bytes_after),
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The model id, org/name.
    id: String,
    /// The revision to check (default: the main one).
    #[arg(long, short)]
    revision: Option<String>,
    /// Download the corrupt or missing files again.
    #[arg(long)]
    repair: bool,
}

pub async fn verify(args: VerifyArgs, json: bool) -> Result<(), ErrorPayload> {
    let on_progress = move |p| {
        if json {
            output::json_line(&serde_json::json!({ "event": "progress", "progress": p }));
        }
    };
    // Another machine verifies (and repairs) there, and says only how it ended.
    let options = VerifyOptions { revision: args.revision.clone(), repair: args.repair };
    let report = crate::context::machine()?.verify(args.id.clone(), options, on_progress).await?;
    if json {
        output::json_line(&serde_json::json!({ "event": "done", "report": report }));
    } else {
        for f in report.bad() {
            let what = match f.status {
                FileStatus::Corrupt => format!(
                    "corrupt: expected {}, got {}",
                    f.blob.as_deref().unwrap_or("?"),
                    f.actual.as_deref().unwrap_or("?")
                ),
                _ => "missing".into(),
            };
            say!("{}: {what}", f.path);
        }
        let (bad, repaired) = (report.bad().count(), report.repaired.len());
        if repaired > 0 {
            say!("{}: repaired {repaired} file{}", report.id, if repaired == 1 { "" } else { "s" });
        }
        match bad {
            0 => say!(
                "{}: all {} files match their hashes ({} checked)",
                report.id,
                report.files.len(),
                format::bytes(report.bytes_checked)
            ),
            n => say!(
                "{}: {n} bad file{}; run `mm verify {} --repair` to download them again",
                report.id,
                if n == 1 { "" } else { "s" },
                report.id
            ),
        }
    }
    if !report.ok {
        return Err(ErrorPayload::new(
            mm_core::ErrorCode::ChecksumMismatch,
            format!("{} has {} bad files", report.id, report.bad().count()),
        ));
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct DuArgs {
    /// Delete orphan blobs and partial downloads that no one is resuming.
    #[arg(long)]
    clean: bool,
}

pub async fn du(args: DuArgs, json: bool) -> Result<(), ErrorPayload> {
    let machine = crate::context::machine()?;
    let report = machine.storage().await?;
    let cleaned = if args.clean { Some(machine.clean().await?) } else { None };
    if json {
        output::json(&serde_json::json!({ "storage": report, "cleaned": cleaned }));
        return Ok(());
    }
    let mut table = Table::new(&["MODEL", "SIZE>"]);
    for m in &report.models {
        table.row(vec![m.id.clone(), format::bytes(m.bytes)]);
    }
    print!("{}", crate::output::clean(&table.render()));
    say!(
        "\n{} in {}; disk: {} free of {}",
        format::bytes(report.cache_bytes),
        report.cache_dir,
        format::bytes(report.disk_free),
        format::bytes(report.disk_total)
    );
    if report.reclaimable_bytes > 0 {
        say!(
            "{} reclaimable: {} orphan blob{}, {} partial download{}, {} detached revision{}",
            format::bytes(report.reclaimable_bytes),
            report.orphan_blobs.len(),
            if report.orphan_blobs.len() == 1 { "" } else { "s" },
            report.partial_downloads.len(),
            if report.partial_downloads.len() == 1 { "" } else { "s" },
            report.detached_revisions.len(),
            if report.detached_revisions.len() == 1 { "" } else { "s" },
        );
        for r in &report.detached_revisions {
            say!(
                "  {}@{} (no branch or tag names it): {}",
                r.repo,
                &r.commit[..r.commit.len().min(7)],
                format::bytes(r.bytes)
            );
        }
    }
    match cleaned {
        Some(c) => say!(
            "Cleaned up {} file{} and {} detached revision{}, freed {}",
            c.files_removed,
            if c.files_removed == 1 { "" } else { "s" },
            c.revisions_removed,
            if c.revisions_removed == 1 { "" } else { "s" },
            format::bytes(c.bytes_freed)
        ),
        None if report.reclaimable_bytes > 0 => say!("Run `mm du --clean` to reclaim it."),
        None => {}
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct TypeArgs {
    /// The model id, org/name.
    id: String,
    /// The type to remember, or `auto` to go back to the inferred one.
    model_type: String,
}

pub async fn set_type(args: TypeArgs, json: bool) -> Result<(), ErrorPayload> {
    let chosen = (args.model_type != "auto").then_some(args.model_type.as_str());
    let model_type = chosen.map(mm_core::activation::parse_type).transpose().map_err(crate::context::payload)?;
    crate::context::machine()?.set_type(args.id.clone(), TypeChange { model_type }).await?;
    if json {
        output::json(&serde_json::json!({ "id": args.id, "type": chosen }));
    } else {
        say!("{}: type {}", args.id, chosen.unwrap_or("inferred from the model again"));
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct LinkArgs {
    /// The adapter's id.
    adapter: String,
    /// The base it runs on; `auto` goes back to the base it names or fits.
    base: String,
}

pub async fn link(args: LinkArgs, json: bool) -> Result<(), ErrorPayload> {
    let base = (args.base != "auto").then(|| args.base.clone());
    let link = mm_core::operations::AdapterLink { base };
    let model = crate::context::machine()?.link_adapter(args.adapter.clone(), link).await?;
    if json {
        output::json(&model);
        return Ok(());
    }
    let Some(adapter) = model.adapter else { return Ok(()) };
    match (&adapter.base, &adapter.problem) {
        (Some(base), None) => say!("{} runs on {base}: clients name it {base}+{}", model.id, model.id),
        (_, Some(problem)) => say!("{}: {problem}", model.id),
        (None, None) => say!("{} has no base", model.id),
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct PinArgs {
    /// The model id.
    id: String,
}

/// `mm pin` / `mm unpin`: never removed to make room under the storage limit, or again removable.
pub async fn pin(args: PinArgs, pinned: bool, json: bool) -> Result<(), ErrorPayload> {
    crate::context::machine()?.pin_model(args.id.clone(), mm_core::operations::Pin { pinned }).await?;
    if json {
        output::json(&serde_json::json!({ "id": args.id, "pinned": pinned }));
    } else if pinned {
        say!("{} is pinned: nothing removes it to make room", args.id);
    } else {
        say!("{} is no longer pinned: a storage limit may remove it when nobody uses it", args.id);
    }
    Ok(())
}

/// `mm stats`: the machine's figures.
pub async fn stats(json: bool) -> Result<(), ErrorPayload> {
    let stats = crate::context::machine()?.stats().await?;
    if json {
        output::json(&stats);
        return Ok(());
    }
    let counts = |m: &std::collections::BTreeMap<String, u32>| {
        m.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
    };
    say!("{} models: {}", stats.models, counts(&stats.by_type));
    say!("  by status: {}", counts(&stats.by_status));
    say!("  by source: {}", counts(&stats.by_source));
    for f in &stats.folders {
        say!("  {}  {}", format::bytes(f.bytes), f.path);
    }
    say!("downloads: {} running, {} queued", stats.downloads_running, stats.downloads_queued);
    say!("loaded: {}", stats.models_loaded);
    for (id, n) in &stats.requests {
        say!("  {id}: {n} requests");
    }
    say!("mirror: {} files served", stats.mirror_hits);
    Ok(())
}

#[derive(clap::Args)]
pub struct MoveArgs {
    /// The model id.
    id: String,
    /// One of the library's folders: the cache, or a library folder (`mm config get libraryFolders`).
    folder: String,
}

/// `mm move MODEL FOLDER`: to another disk and back, never with less than one whole copy.
pub async fn move_model(args: MoveArgs, json: bool) -> Result<(), ErrorPayload> {
    let report = crate::context::machine()?
        .move_model(args.id.clone(), mm_core::operations::MoveTo { folder: args.folder.clone() })
        .await?;
    if json {
        output::json(&report);
    } else {
        say!("Moved {} to {} ({} copied and checked)", report.id, report.to, format::bytes(report.bytes_copied));
    }
    Ok(())
}
