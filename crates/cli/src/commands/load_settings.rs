//! `mm load-settings`: how one model is run (its context, GPU layers, KV cache, threads, sampling defaults and
//! more runtime flags), kept in the settings under its id and used by every load of it. On this machine every key
//! may be set; with `--remote`, all but `extraArgs`, which the other machine's owner sets there.

use crate::context::payload;
use crate::output;
use crate::table::Table;
use mm_core::format::bytes;
use mm_core::operations::CompatAsk;
use mm_core::settings::{load_table, LoadSettings};
use mm_core::{ErrorPayload, Operations};

#[derive(clap::Subcommand)]
pub enum Args {
    /// A model's load settings, and its estimate with them.
    Show { model: String },
    /// Set some of a model's load settings: KEY=VALUE... (an empty VALUE unsets it; `mm load-settings keys`
    /// lists the keys).
    Set {
        model: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Unset some of a model's load settings (KEY...), or all of them.
    Reset { model: String, keys: Vec<String> },
    /// Every key, its bounds and its llama-server flag.
    Keys,
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    let machine = crate::context::machine()?;
    let (model, settings) = match args {
        Args::Keys => {
            if json {
                output::json(&load_table());
            } else {
                let mut table = Table::new(&["KEY", "FLAG", "WHAT"]);
                for row in load_table() {
                    table.row(vec![row.key.into(), row.flag.unwrap_or("").into(), row.help.into()]);
                }
                say!("{}", table.render());
            }
            return Ok(());
        }
        Args::Show { model } => {
            let settings = machine.load_settings(model.clone()).await?;
            (model, settings)
        }
        Args::Set { model, pairs } => {
            let mut settings = machine.load_settings(model.clone()).await?;
            for pair in &pairs {
                let Some((key, value)) = pair.split_once('=') else {
                    let message = format!("\"{pair}\" is not KEY=VALUE (such as kvCacheType=q8_0)");
                    return Err(ErrorPayload::new(mm_core::ErrorCode::InvalidInput, message));
                };
                settings.set(key.trim(), value).map_err(payload)?;
            }
            (model.clone(), machine.set_load_settings(model.clone(), settings).await?)
        }
        Args::Reset { model, keys } => {
            let mut settings = machine.load_settings(model.clone()).await?;
            if keys.is_empty() {
                settings = LoadSettings::default();
            }
            for key in &keys {
                settings.set(key, "").map_err(payload)?;
            }
            (model.clone(), machine.set_load_settings(model.clone(), settings).await?)
        }
    };
    let ask = CompatAsk { target: model.clone(), load_settings: Some(settings.clone()), ..Default::default() };
    let estimate = machine.compat(ask).await.ok();
    if json {
        output::json(&serde_json::json!({ "model": model, "settings": settings, "estimate": estimate }));
        return Ok(());
    }
    let mut table = Table::new(&["KEY", "VALUE", "WHAT"]);
    for row in load_table() {
        let value = settings.get(row.key).unwrap_or_default();
        let shown = if value.is_empty() || value == "false" { "(auto)".to_string() } else { value };
        table.row(vec![row.key.into(), shown, row.help.into()]);
    }
    say!("{model}\n{}", table.render());
    if let Some(entry) = estimate.as_ref().and_then(|r| r.entries.first()) {
        let r = &entry.requirements;
        say!(
            "estimate: {} at {} tokens ({} weights + {} {:?} KV cache + {} compute): {}",
            bytes(r.total_bytes),
            r.context,
            bytes(r.weights_bytes),
            bytes(r.kv_cache_bytes),
            r.kv_cache_type,
            bytes(r.compute_bytes),
            entry.now.summary
        );
    }
    Ok(())
}
