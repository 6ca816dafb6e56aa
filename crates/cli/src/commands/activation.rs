//! `mm activate`, `mm deactivate`, `mm active`: which model each type uses, shared with the app and readable by
//! any program through `active.json` and the `active/{type}` links in the app's data folder.

use crate::context::payload;
use crate::output;
use crate::table::Table;
use mm_core::activation::{parse_type, ActiveEntry};
use mm_core::operations::Activate;
use mm_core::{ErrorCode, ErrorPayload, Operations};
use std::collections::BTreeMap;

#[derive(clap::Args)]
pub struct ActivateArgs {
    /// The model id, org/name.
    id: String,
    /// The type it serves (default: its own type).
    #[arg(long = "type", value_name = "TYPE")]
    model_type: Option<String>,
    /// The revision (default: the main one).
    #[arg(long, short)]
    revision: Option<String>,
}

pub async fn activate(args: ActivateArgs, json: bool) -> Result<(), ErrorPayload> {
    let machine = crate::context::machine()?;
    let model_type = args.model_type.as_deref().map(parse_type).transpose().map_err(payload)?;
    let before = machine.active().await?;
    let ask = Activate { id: args.id, revision: args.revision, model_type: None };
    let entry = match model_type {
        Some(model_type) => machine.activate_as(model_type, ask).await?,
        None => machine.activate(ask).await?,
    };
    let replaced = before.get(&entry.model_type).filter(|old| old.id != entry.id).map(|old| old.id.clone());
    if json {
        output::json(&serde_json::json!({ "active": entry, "replaced": replaced }));
    } else {
        if let Some(old) = replaced {
            say!("{old} is no longer the active {} model", entry.model_type);
        }
        say!("{} is the active {} model\n  {} -> {}", entry.id, entry.model_type, entry.link, entry.path);
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct DeactivateArgs {
    /// The type to clear, e.g. text-generation.
    model_type: String,
}

pub async fn deactivate(args: DeactivateArgs, json: bool) -> Result<(), ErrorPayload> {
    let model_type = parse_type(&args.model_type).map_err(payload)?;
    let machine = crate::context::machine()?;
    let was = machine.active().await?.remove(&model_type).map(|old| old.id);
    machine.deactivate(model_type).await?;
    if json {
        output::json(&serde_json::json!({ "deactivated": model_type, "was": was }));
    } else {
        match was {
            Some(old) => say!("No {model_type} model is active now (was {old})"),
            None => say!("No {model_type} model is active now"),
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ActiveArgs {
    /// One type only, e.g. text-generation.
    model_type: Option<String>,
    /// Print only the model's folder (with a type), for scripts: `llama-server -m "$(mm active text-generation --path)/..."`.
    #[arg(long)]
    path: bool,
}

pub async fn active(args: ActiveArgs, json: bool) -> Result<(), ErrorPayload> {
    let manifest: BTreeMap<String, ActiveEntry> =
        crate::context::machine()?.active().await?.into_iter().map(|(t, e)| (t.as_str().to_string(), e)).collect();
    let Some(t) = args.model_type else {
        if args.path {
            return Err(ErrorPayload::new(
                ErrorCode::InvalidInput,
                "--path needs a type, e.g. `mm active text-generation --path`",
            ));
        }
        if json {
            output::json(&manifest);
        } else if manifest.is_empty() {
            say!("No model is active. Activate one with `mm activate ORG/NAME`.");
        } else {
            let mut table = Table::new(&["TYPE", "MODEL", "REVISION", "PATH"]);
            for (t, e) in &manifest {
                table.row(vec![
                    t.clone(),
                    e.id.clone(),
                    e.revision[..7.min(e.revision.len())].to_string(),
                    e.path.clone(),
                ]);
            }
            print!("{}", crate::output::clean(&table.render()));
        }
        return Ok(());
    };
    let model_type = parse_type(&t).map_err(payload)?;
    let entry = manifest.get(model_type.as_str()).ok_or_else(|| {
        ErrorPayload::new(
            ErrorCode::NotFound,
            format!("no {model_type} model is active: activate one with `mm activate ORG/NAME`"),
        )
    })?;
    if args.path {
        say!("{}", entry.path);
    } else if json {
        output::json(entry);
    } else {
        say!("{} ({}) at {}", entry.id, &entry.revision[..7.min(entry.revision.len())], entry.path);
    }
    Ok(())
}
