//! `mm activate`, `mm deactivate`, `mm active`: which model each type uses, shared with the app and readable by
//! any program through `active.json` and the `active/{type}` links in the app's data folder.

use crate::context::payload;
use crate::output;
use crate::table::Table;
use mm_core::activation::{parse_type, read_manifest};
use mm_core::download::LifecycleKind;
use mm_core::machine::Machine;
use mm_core::{ErrorCode, ErrorPayload};

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
    let (entry, events) = match crate::context::machine()? {
        Machine::Local(manager) => {
            manager.activate(&args.id, args.model_type.as_deref(), args.revision.as_deref()).await?
        }
        remote => (remote.activate(&args.id, args.model_type.as_deref(), args.revision.as_deref()).await?, Vec::new()),
    };
    if json {
        output::json(&serde_json::json!({ "active": entry, "events": events }));
    } else {
        if let Some(old) = events.iter().find(|e| e.kind == LifecycleKind::Deactivated) {
            say!("{} is no longer the active {} model", old.repo, entry.model_type);
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
    let events = match crate::context::machine()? {
        Machine::Local(manager) => manager.deactivate(model_type.as_str()).await?,
        remote => {
            remote.deactivate(model_type.as_str()).await?;
            Vec::new()
        }
    };
    if json {
        output::json(&serde_json::json!({ "events": events }));
    } else {
        match events.first() {
            Some(old) => say!("No {model_type} model is active now (was {})", old.repo),
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
    let manifest = match crate::context::machine()? {
        Machine::Local(manager) => {
            // Reading is also when a model deleted behind our back loses its mark.
            manager.reconcile_activation()?;
            read_manifest(manager.data_dir())
        }
        remote => remote.active().await?.into_iter().map(|(t, e)| (t.as_str().to_string(), e)).collect(),
    };
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
