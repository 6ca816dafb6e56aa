//! `mm config get [KEY]` and `mm config set KEY VALUE`: the settings the app uses, from the same file.

use crate::context::payload;
use crate::output;
use mm_core::settings::Settings;
use mm_core::ErrorPayload;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Show one setting, or all of them with what each is (the token masked).
    Get { key: Option<String> },
    /// Change a setting; an empty value resets it. `mm config get` lists the keys.
    Set { key: String, value: String },
}

pub async fn run(args: Args, json: bool) -> Result<(), ErrorPayload> {
    let manager = crate::context::load()?;
    let settings = manager.settings();
    match args {
        Args::Get { key: Some(key) } => {
            let value = settings.get(&key).map_err(payload)?;
            if json {
                output::json(&serde_json::json!({ key: value }));
            } else {
                say!("{value}");
            }
        }
        Args::Get { key: None } => {
            if json {
                output::json(&settings.view(None));
            } else {
                say!("token = {}", settings.get("token").unwrap_or_default());
                for setting in mm_core::settings::table() {
                    let value = settings.get(setting.key).unwrap_or_default();
                    say!("{} = {value}    # {} ({})", setting.key, setting.help, setting.env_var());
                }
                say!("(file: {})", manager.store().path().display());
            }
        }
        Args::Set { key, value } => {
            let patch = Settings::patch_from_text(&key, &value).map_err(payload)?;
            let view = manager.update_settings(patch)?;
            if json {
                output::json(&view);
            } else {
                say!("{key} = {}", manager.settings().get(&key).unwrap_or_default());
            }
        }
    }
    Ok(())
}
