//! PEFT adapters (a LoRA trained with Hugging Face's `peft`): a folder with `adapter_config.json` beside
//! `adapter_model.safetensors`. The config says which model the adapter was trained on and its rank.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use ts_rs::TS;

/// What `adapter_config.json` says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PeftAdapter {
    /// `base_model_name_or_path`: a hub repo ("meta-llama/Llama-3.1-8B") or the trainer's local path.
    pub base_model: Option<String>,
    /// `r`, the LoRA rank.
    pub rank: Option<u64>,
    /// `lora_alpha`: the product is scaled by alpha / rank.
    pub alpha: Option<f64>,
    /// `peft_type`, e.g. "LORA".
    pub peft_type: Option<String>,
    /// `target_modules`, e.g. ["q_proj", "v_proj"]; a single text (a pattern or "all-linear") is one entry.
    pub target_modules: Vec<String>,
}

/// An adapter config is a few hundred bytes; a larger file is not one.
const MAX_CONFIG: u64 = 1 << 20;

/// The PEFT adapter in `dir`: `None` when `dir/adapter_config.json` is missing, unreadable, larger than 1 MB or
/// not a JSON object.
pub fn read_peft_adapter(dir: &Path) -> Option<PeftAdapter> {
    let mut bytes = Vec::new();
    std::fs::File::open(dir.join("adapter_config.json")).ok()?.take(MAX_CONFIG + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > MAX_CONFIG {
        return None;
    }
    let Value::Object(config) = serde_json::from_slice::<Value>(&bytes).ok()? else { return None };
    let text = |key: &str| config.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    Some(PeftAdapter {
        base_model: text("base_model_name_or_path"),
        rank: config.get("r").and_then(|r| {
            r.as_u64().or_else(|| r.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
        }),
        alpha: config.get("lora_alpha").and_then(Value::as_f64),
        peft_type: text("peft_type"),
        target_modules: match config.get("target_modules") {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peft_adapter_config_is_read() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_peft_adapter(dir.path()), None);
        let config = r#"{
            "alpha_pattern": {}, "base_model_name_or_path": "meta-llama/Llama-3.1-8B", "bias": "none",
            "fan_in_fan_out": false, "inference_mode": true, "lora_alpha": 32, "lora_dropout": 0.05,
            "peft_type": "LORA", "r": 16, "target_modules": ["v_proj", "q_proj"], "task_type": "CAUSAL_LM"
        }"#;
        std::fs::write(dir.path().join("adapter_config.json"), config).unwrap();
        assert_eq!(
            read_peft_adapter(dir.path()),
            Some(PeftAdapter {
                base_model: Some("meta-llama/Llama-3.1-8B".into()),
                rank: Some(16),
                alpha: Some(32.0),
                peft_type: Some("LORA".into()),
                target_modules: vec!["v_proj".into(), "q_proj".into()],
            })
        );
        // Fields of other kinds, or missing, are left out; a pattern is one module.
        let config =
            r#"{"lora_alpha": 8.5, "r": "sixteen", "target_modules": "all-linear", "base_model_name_or_path": null}"#;
        std::fs::write(dir.path().join("adapter_config.json"), config).unwrap();
        assert_eq!(
            read_peft_adapter(dir.path()),
            Some(PeftAdapter { alpha: Some(8.5), target_modules: vec!["all-linear".into()], ..Default::default() })
        );
        for bad in ["[1, 2]", "{not json", ""] {
            std::fs::write(dir.path().join("adapter_config.json"), bad).unwrap();
            assert_eq!(read_peft_adapter(dir.path()), None, "{bad}");
        }
    }
}
