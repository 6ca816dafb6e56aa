//! What `mm serve`'s API may not do that the machine's own faces (`mm`, the window) may: choices that name files
//! and programs, or which llama.cpp build runs. A row of the operation table is refused here (403, with where to do
//! it) before it reaches the core:
//!
//! - `set_load_settings` that changes a model's `extraArgs` (llama-server flags can name files and programs);
//! - `get_runtime` that pins a release (only the latest may be got from afar: an older one may carry bugs fixed
//!   since), and `use_runtime` and `rollback_runtime` (which build loads models is the machine owner's choice).

use mm_core::{ErrorCode, ErrorPayload, Manager, Operations};

fn refused(what: &str, how: &str) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::Permission, format!("{what} is chosen on the machine itself, not over the API: {how}"))
}

/// Why the operation `name` with these path parameters and body is the machine's own, if it is.
pub async fn check(
    manager: &Manager,
    name: &str,
    params: &serde_json::Value,
    body: Option<serde_json::Value>,
) -> Result<(), ErrorPayload> {
    let body = body.unwrap_or_default();
    match name {
        "set_load_settings" => {
            let id = params.get("id").and_then(|v| v.as_str()).unwrap_or_default();
            // An unknown model is the core's to answer (404).
            let Ok(kept) = manager.load_settings(id.to_string()).await else { return Ok(()) };
            let asked = body.get("extraArgs").cloned().unwrap_or_else(|| serde_json::json!([]));
            if asked != serde_json::json!(kept.extra_args) {
                return Err(refused("a model's extraArgs", "mm load-settings set MODEL extraArgs=..., or the window"));
            }
            Ok(())
        }
        "get_runtime" if !body.get("release").is_none_or(|r| r.is_null()) => {
            Err(refused("a pinned llama.cpp release", "mm runtime get --release TAG (over the API: the latest)"))
        }
        "use_runtime" | "rollback_runtime" => {
            Err(refused("which llama.cpp build loads models", "mm runtime use NAME / rollback, or the window"))
        }
        _ => Ok(()),
    }
}
