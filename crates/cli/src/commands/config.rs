//! `mm config get [KEY]` and `mm config set KEY VALUE`: the settings the app uses, from the same file.

use crate::context::payload;
use crate::output;
use mm_core::settings::Settings;
use mm_core::ErrorPayload;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Show one setting, or all of them (the token masked).
    Get { key: Option<String> },
    /// Change a setting; an empty value resets it.
    Set { key: String, value: String },
}

const KEYS: [&str; 7] =
    ["cacheDir", "libraryFolders", "endpoint", "token", "maxConcurrentDownloads", "bandwidthLimit", "verifyOnDownload"];

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
                for key in KEYS {
                    say!("{key} = {}", settings.get(key).unwrap_or_default());
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
