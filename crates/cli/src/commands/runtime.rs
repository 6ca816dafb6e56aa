//! `mm load`, `mm unload`, `mm ps`: the active models served by a local runtime (llama-server, Ollama), shared
//! with the app through the runtime host. `mm load` returns once the model answers and leaves it running.

use crate::output;
use crate::table::Table;
use mm_core::format::bytes;
use mm_core::operations::{Load, Unload};
use mm_core::runtime::LoadedModel;
use mm_core::{ErrorPayload, Operations};

#[derive(clap::Args)]
pub struct LoadArgs {
    /// A model type (its active model; default text-generation) or a model id (activated, then loaded).
    target: Option<String>,
    /// The context in tokens (default: the largest that fits the memory free now, up to the maxContext setting).
    #[arg(long, short)]
    context: Option<u64>,
    /// Never unload it for another model (until it is unloaded).
    #[arg(long)]
    pin: bool,
}

pub async fn load(args: LoadArgs, json: bool) -> Result<(), ErrorPayload> {
    let machine = crate::context::machine()?;
    let loaded = machine.load(Load { target: args.target.clone(), context: args.context, pin: args.pin }).await?;
    if json {
        output::json(&loaded);
        return Ok(());
    }
    match &loaded.endpoint {
        Some(endpoint) => say!("{} is serving {} on {endpoint}", loaded.id, loaded.model_type),
        None => say!("{} is loaded", loaded.id),
    }
    if loaded.pinned {
        say!("  pinned: it is not unloaded for another model until you unload it");
    }
    if let Some(plan) = &loaded.plan {
        say!(
            "  context {} tokens, {} GPU layers, estimate {} ({})",
            plan.context,
            plan.gpu_layers,
            bytes(plan.estimate_bytes),
            plan.reason
        );
    }
    if let Some(command) = &loaded.command {
        say!("  {command}");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct UnloadArgs {
    /// A model type or a loaded model's id (default: everything loaded).
    target: Option<String>,
}

pub async fn unload(args: UnloadArgs, json: bool) -> Result<(), ErrorPayload> {
    let unloaded = crate::context::machine()?.unload(Unload { target: args.target.clone() }).await?;
    if json {
        output::json(&unloaded);
    } else if unloaded.is_empty() {
        say!("Nothing was loaded");
    } else {
        for m in &unloaded {
            say!("Unloaded {} ({})", m.id, m.model_type);
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct PsArgs {}

pub async fn ps(_args: PsArgs, json: bool) -> Result<(), ErrorPayload> {
    let loaded = crate::context::machine()?.loaded().await?;
    if json {
        output::json(&loaded);
        return Ok(());
    }
    if loaded.is_empty() {
        say!("Nothing is loaded. Load the active model with `mm load`.");
        return Ok(());
    }
    let mut table = Table::new(&["TYPE", "MODEL", "STATE", "ENDPOINT", "MEMORY", "ESTIMATE", "REQUESTS", "UP"]);
    for m in &loaded {
        table.row(vec![
            m.model_type.to_string(),
            m.id.clone(),
            state(m),
            m.endpoint.clone().unwrap_or_else(|| "-".into()),
            m.measured.map(|u| bytes(u.ram + u.gpu.unwrap_or(0))).unwrap_or_else(|| "-".into()),
            if m.estimate_bytes > 0 { bytes(m.estimate_bytes) } else { "-".into() },
            m.requests.to_string(),
            mm_core::format::duration(mm_core::format::now_unix().saturating_sub(m.loaded_at)),
        ]);
    }
    print!("{}", crate::output::clean(&table.render()));
    Ok(())
}

fn state(m: &LoadedModel) -> String {
    let mut state = serde_json::to_value(m.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    if m.busy > 0 {
        state.push_str(&format!(", {} busy", m.busy));
    }
    if m.pinned {
        state.push_str(", pinned");
    }
    match &m.error {
        Some(e) => format!("{state}: {e}"),
        None => state,
    }
}
