//! `mm search` and `mm catalog`: find models on the hub, and the starter catalog, before downloading anything.

use crate::output;
use crate::table::Table;
use mm_core::discover::{SearchQuery, SearchSort};
use mm_core::format::{bytes, count};
use mm_core::{ErrorCode, ErrorPayload};

#[derive(clap::Args)]
pub struct SearchArgs {
    /// Words to look for in model ids (empty: the most popular models).
    #[arg(default_value = "")]
    query: String,
    /// Only models for this task (pipeline tag), e.g. text-generation, automatic-speech-recognition.
    #[arg(long)]
    task: Option<String>,
    /// Only models of this library, e.g. gguf, transformers, diffusers, sentence-transformers.
    #[arg(long)]
    library: Option<String>,
    /// Only models of this user or organisation.
    #[arg(long)]
    author: Option<String>,
    /// Only models with this tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// downloads, likes, trending or updated.
    #[arg(long, default_value = "downloads")]
    sort: String,
    /// Results per page, 1 to 100.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// The next page: the `next` value a previous `--json` answer gave.
    #[arg(long)]
    next: Option<String>,
}

pub async fn search(args: SearchArgs, json: bool) -> Result<(), ErrorPayload> {
    let manager = crate::context::load()?;
    let Some(sort) = SearchSort::parse(&args.sort) else {
        return Err(ErrorPayload::new(
            ErrorCode::InvalidInput,
            format!("--sort {} is not one of downloads, likes, trending, updated", args.sort),
        ));
    };
    let query = SearchQuery {
        text: args.query,
        author: args.author,
        task: args.task,
        library: args.library,
        tags: args.tags,
        sort,
        limit: Some(args.limit),
    };
    let page = manager.search(&query, args.next.as_deref()).await?;
    if json {
        output::json(&page);
        return Ok(());
    }
    if page.models.is_empty() {
        say!("No models match.");
        return Ok(());
    }
    let mut table = Table::new(&["MODEL", "TASK", "LIBRARY", "DOWNLOADS>", "LIKES>", "UPDATED", "NOTE"]);
    for m in &page.models {
        let note = [m.gated.then_some("gated"), m.installed.then_some("installed")];
        table.row(vec![
            m.id.clone(),
            m.task.clone().unwrap_or_default(),
            m.library.clone().unwrap_or_default(),
            count(m.downloads),
            count(m.likes),
            m.last_modified.as_deref().map(|d| d.chars().take(10).collect()).unwrap_or_default(),
            note.into_iter().flatten().collect::<Vec<_>>().join(", "),
        ]);
    }
    print!("{}", crate::output::clean(&table.render()));
    if let Some(next) = &page.next {
        say!("More results: add --next '{next}'");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct CatalogArgs {}

pub async fn catalog(_args: CatalogArgs, json: bool) -> Result<(), ErrorPayload> {
    let starter = crate::context::load()?.catalog().await?;
    if json {
        output::json(&starter);
        return Ok(());
    }
    let mut table = Table::new(&["MODEL", "TYPE", "SIZE>", "", "PURPOSE"]);
    for e in &starter.entries {
        table.row(vec![
            e.id.clone(),
            e.model_type.label().to_string(),
            bytes(e.size),
            if e.installed { "installed".into() } else { String::new() },
            e.purpose.clone(),
        ]);
    }
    print!("{}", crate::output::clean(&table.render()));
    say!("Get one with `mm download MODEL --include FILE...` for the files `mm catalog --json` lists.");
    Ok(())
}
