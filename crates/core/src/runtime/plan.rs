//! How a GGUF model is started: the context and the layers on the GPU from this app's own estimate
//! ([`crate::compat::estimate`]) against the memory free now, and the `llama-server` command line.
//!
//! ```text
//! per_token = 2 × layers × kv_heads × head_dim × bytes            (the KV cache of one token, f16 unless set)
//! room      = free − weights − compute (− the GPU reserve)        (GPU memory when all layers fit, else RAM)
//! context   = min(the model's own, the max-context setting, room / per_token), in steps of 256, at least 256
//! gpu       = every layer when weights + KV cache + compute fit the GPU, else the layers the verdict names
//! ```
//!
//! A model's load settings ([`LoadSettings`]) win: their context replaces the computed one, their GPU layers the
//! chosen ones (0: the CPU only), their KV cache type sizes the cache; their other settings become flags.

use crate::compat::estimate::{self, KvCacheType, Requirements, GPU_RESERVE};
use crate::compat::{Fit, HardwareInfo};
use crate::model::ModelType;
use crate::settings::load::Named as _;
use crate::settings::LoadSettings;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Contexts are chosen in steps of this many tokens.
const CONTEXT_STEP: u64 = 256;

/// What a model is started with, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchPlan {
    pub context: u64,
    /// Layers on the GPU (0: the CPU only).
    pub gpu_layers: u64,
    pub layers: Option<u64>,
    /// What the estimate says the model takes at this context: weights + KV cache + compute.
    pub estimate_bytes: u64,
    /// One sentence: where it runs and why this context.
    pub reason: String,
    /// How an embedding model whose file names no pooling pools its tokens (`mean`).
    #[serde(default)]
    pub pooling: Option<String>,
    /// The model's load settings it was planned with (a change to them starts it again on its next request).
    #[serde(default)]
    pub load: LoadSettings,
}

/// The plan for a model whose requirements were read from its file, run with its load settings; `asked` is a
/// context a load named (it wins over the settings').
pub fn plan(
    model: &Requirements,
    hw: &HardwareInfo,
    max_context: u64,
    asked: Option<u64>,
    load: &LoadSettings,
) -> Result<LaunchPlan, String> {
    // llama.cpp stores a quantised cache in blocks of 32 values along each head.
    if let (KvCacheType::Q8_0 | KvCacheType::Q4_0, Some(width)) = (load.kv_cache(), model.head_dim) {
        if width % 32 != 0 {
            return Err(format!(
                "a {} KV cache needs heads whose width is a multiple of 32, and this model's are {width} wide: set \
                 kvCacheType to f16",
                load.kv_cache().name()
            ));
        }
    }
    let mut plan =
        plan_for(&estimate::with_cache(model, None, load.kv_cache()), hw, max_context, asked.or(load.context), load)?;
    if let Some(layers) = load.gpu_layers.filter(|n| *n > 0) {
        plan.gpu_layers = layers;
        plan.reason = format!("{layers} layers on the GPU, as its load settings say");
    }
    plan.load = load.clone();
    Ok(plan)
}

fn plan_for(
    model: &Requirements,
    hw: &HardwareInfo,
    max_context: u64,
    asked: Option<u64>,
    load: &LoadSettings,
) -> Result<LaunchPlan, String> {
    let own = model.max_context.unwrap_or(model.context).max(1);
    let per_token = match (model.layers, model.kv_heads, model.head_dim) {
        (Some(l), Some(h), Some(d)) => model.kv_cache_type.bytes(2 * l * h * d),
        _ => 0,
    };
    let at = |context: u64| estimate::with_context(model, context);
    // Load settings that put no layer on the GPU plan for the CPU alone.
    let gpu = hw
        .gpus
        .iter()
        .filter(|_| load.gpu_layers != Some(0))
        .max_by_key(|g| g.vram_free)
        .map(|g| (g.label(), g.vram_free));
    let cap = own.min(max_context.max(CONTEXT_STEP));
    // The largest context within `free` for a model of `base` bytes before its cache.
    let fitting = |free: u64, base: u64| -> u64 {
        let room = free.saturating_sub(base);
        let tokens = room.checked_div(per_token).unwrap_or(cap);
        (tokens.min(cap) / CONTEXT_STEP * CONTEXT_STEP).min(cap)
    };
    if let Some(context) = asked {
        if context == 0 || context > own {
            return Err(format!("a context of {context} tokens is outside what the model takes (1 to {own})"));
        }
    }
    let small = at(CONTEXT_STEP.min(cap));
    if let Some((name, vram)) = &gpu {
        let base = small.weights_bytes + small.compute_bytes + GPU_RESERVE;
        let context = asked.unwrap_or_else(|| fitting(*vram, base));
        let r = at(context.max(1));
        if context >= CONTEXT_STEP.min(cap) && r.total_bytes + GPU_RESERVE <= *vram {
            let layers = r.layers.unwrap_or(0);
            return Ok(LaunchPlan {
                context: r.context,
                gpu_layers: layers.max(1) + 1,
                layers: r.layers,
                estimate_bytes: r.total_bytes,
                reason: format!("every layer on {name}, the largest context that fits its free memory"),
                pooling: None,
                load: LoadSettings::default(),
            });
        }
    }
    let ram = hw.ram_available;
    let base = small.weights_bytes + small.compute_bytes;
    let context =
        asked.unwrap_or_else(|| fitting(ram + gpu.as_ref().map_or(0, |g| g.1.saturating_sub(GPU_RESERVE)), base));
    if context == 0 {
        return Err(format!(
            "it needs {:.1} GB before any context and this machine has {:.1} GB of RAM free",
            base as f64 / 1e9,
            ram as f64 / 1e9
        ));
    }
    let r = at(context);
    let verdict = estimate::judge(&r, gpu.as_ref().map(|(n, v)| (n.as_str(), *v)), ram, 0, u64::MAX);
    let (gpu_layers, reason) = match (verdict.fit, verdict.gpu_layers) {
        (Fit::PartialOffload, Some(n)) => {
            (n, format!("{n} of {} layers on the GPU, the rest in RAM", r.layers.unwrap_or(0)))
        }
        (Fit::TooLarge, _) => return Err(verdict.summary),
        _ => (0, "on the CPU, the largest context that fits the RAM free now".to_string()),
    };
    Ok(LaunchPlan {
        context: r.context,
        gpu_layers,
        layers: r.layers,
        estimate_bytes: r.total_bytes,
        reason,
        pooling: None,
        load: LoadSettings::default(),
    })
}

/// The `llama-server` arguments for `target`'s file, named by its id, served on `port` of this machine only, to
/// the holders of the key in `key_file` (its `/health` and model list excepted), without its slots' monitor; an
/// embedding model serves embeddings and a classifier reranks (llama-server serves one or the other, by its
/// flags). The plan's load settings follow (`knows`: whether this runtime has a flag), their extra arguments, then
/// the target's LoRA adapters loaded without being applied (each request says their scales).
pub fn llama_server_args(
    target: &super::Target,
    port: u16,
    plan: &LaunchPlan,
    key_file: &str,
    knows: impl Fn(&str) -> bool,
) -> Vec<String> {
    let (file, alias, model_type) = (target.file.as_deref().unwrap_or_default(), target.id.as_str(), target.model_type);
    let adapters: Vec<&String> = target.adapters.iter().map(|(_, file)| file).collect();
    let parallel = plan.load.parallel.unwrap_or(1).to_string();
    [
        "--model",
        file,
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--ctx-size",
        &plan.context.to_string(),
        "--n-gpu-layers",
        &plan.gpu_layers.to_string(),
        "--alias",
        alias,
        "--parallel",
        &parallel,
        "--api-key-file",
        key_file,
        "--no-slots",
    ]
    .iter()
    .chain(role(model_type))
    .map(|s| s.to_string())
    .chain(plan.pooling.iter().flat_map(|p| ["--pooling".to_string(), p.clone()]))
    .chain(plan.load.mlock_args(knows))
    .chain(plan.load.args())
    .chain(adapters.iter().flat_map(|file| ["--lora".to_string(), file.to_string()]))
    .chain((!adapters.is_empty()).then(|| "--lora-init-without-apply".to_string()))
    .collect()
}

/// The flags that make llama-server serve a type: embeddings, or reranking.
pub fn role(model_type: ModelType) -> &'static [&'static str] {
    match model_type {
        ModelType::Embedding => &["--embeddings"],
        ModelType::Classification => &["--reranking"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::hardware::{CpuInfo, GpuInfo};

    const GB: u64 = 1_000_000_000;

    fn model() -> Requirements {
        let s = crate::compat::gguf::GgufSummary {
            architecture: Some("llama".into()),
            block_count: Some(32),
            context_length: Some(32768),
            embedding_length: Some(4096),
            head_count: Some(32),
            head_count_kv: Some(8),
            data_bytes: 4 * GB,
            ..Default::default()
        };
        estimate::from_gguf(&s, None)
    }

    fn machine(vram_free: Option<u64>, ram: u64) -> HardwareInfo {
        HardwareInfo {
            gpus: vram_free
                .map(|v| GpuInfo {
                    name: "H100".into(),
                    vendor: "NVIDIA".into(),
                    vram_total: v,
                    vram_free: v,
                    driver: None,
                    cuda_version: None,
                    compute_capability: None,
                })
                .into_iter()
                .collect(),
            nvidia_note: None,
            ram_total: ram,
            ram_available: ram,
            cpu: CpuInfo { brand: String::new(), physical_cores: 1, threads: 1, features: vec![] },
            os: String::new(),
            disk_free: 0,
            disk_total: 0,
            probe_ms: 0,
        }
    }

    #[test]
    fn a_roomy_gpu_takes_every_layer_and_the_capped_context() {
        let p = plan(&model(), &machine(Some(80 * GB), 64 * GB), 8192, None, &none()).unwrap();
        assert_eq!((p.context, p.gpu_layers), (8192, 33), "{p:?}");
        let p = plan(&model(), &machine(Some(80 * GB), 64 * GB), 65536, None, &none()).unwrap();
        assert_eq!(p.context, 32768, "the model's own context caps the setting");
    }

    #[test]
    fn the_context_shrinks_to_the_free_memory() {
        // 4 GB of weights + 256 MiB compute; the KV cache is 128 KiB a token: 1 GB free after them is ~7.6k tokens.
        let r = model();
        let free = r.weights_bytes + r.compute_bytes + GB;
        let p = plan(&r, &machine(None, free), 32768, None, &none()).unwrap();
        assert_eq!(p.gpu_layers, 0);
        assert_eq!(p.context % CONTEXT_STEP, 0);
        assert!(p.context >= 7168 && p.context <= 7680, "{p:?}");
        assert!(p.estimate_bytes <= free, "the plan fits what it measured against");
    }

    #[test]
    fn too_little_memory_or_an_impossible_context_says_why() {
        let err = plan(&model(), &machine(None, GB), 8192, None, &none()).unwrap_err();
        assert!(err.contains("before any context"), "{err}");
        let err = plan(&model(), &machine(None, 64 * GB), 8192, Some(100_000), &none()).unwrap_err();
        assert!(err.contains("outside what the model takes (1 to 32768)"), "{err}");
        assert_eq!(plan(&model(), &machine(None, 64 * GB), 8192, Some(1000), &none()).unwrap().context, 1000);
    }

    fn none() -> LoadSettings {
        LoadSettings::default()
    }

    #[test]
    fn load_settings_set_the_context_the_cache_and_the_layers() {
        let r = model();
        let free = r.weights_bytes + r.compute_bytes + GB;
        let auto = plan(&r, &machine(None, free), 32768, None, &none()).unwrap();
        let q8 = LoadSettings { kv_cache_type: Some(KvCacheType::Q8_0), ..none() };
        let small = plan(&r, &machine(None, free), 32768, None, &q8).unwrap();
        assert!(small.context > auto.context * 17 / 10, "a q8_0 cache holds nearly twice the tokens: {small:?}");
        let set = LoadSettings { context: Some(2048), ..q8.clone() };
        let p = plan(&r, &machine(None, free), 32768, None, &set).unwrap();
        assert_eq!(p.context, 2048, "the settings' context replaces the computed one");
        assert_eq!(plan(&r, &machine(None, free), 32768, Some(1024), &set).unwrap().context, 1024, "a load's wins");
        let cpu = LoadSettings { gpu_layers: Some(0), ..none() };
        assert_eq!(plan(&r, &machine(Some(80 * GB), 64 * GB), 8192, None, &cpu).unwrap().gpu_layers, 0);
        let some = LoadSettings { gpu_layers: Some(7), ..none() };
        let p = plan(&r, &machine(Some(80 * GB), 64 * GB), 8192, None, &some).unwrap();
        assert_eq!((p.gpu_layers, p.load.gpu_layers), (7, Some(7)), "{p:?}");
        let target = crate::runtime::Target {
            id: "a".into(),
            model: "a".into(),
            model_type: ModelType::TextGeneration,
            file: Some("m.gguf".into()),
            format: crate::model::ModelFormat::Gguf,
            runtime: crate::runtime::RuntimeKind::LlamaServer,
            adapters: vec![("l".into(), "l.gguf".into())],
            adapter: None,
        };
        let args = llama_server_args(&target, 1, &p, "k", |_| true);
        assert!(args.ends_with(&["--lora".into(), "l.gguf".into(), "--lora-init-without-apply".into()]), "{args:?}");
        assert!(args.windows(2).any(|w| w == ["--n-gpu-layers", "7"]), "{args:?}");
    }

    #[test]
    fn a_small_gpu_takes_part_of_the_layers() {
        let p = plan(&model(), &machine(Some(3 * GB), 64 * GB), 4096, None, &none()).unwrap();
        assert!(p.gpu_layers > 0 && p.gpu_layers < 32, "{p:?}");
        assert!(p.reason.contains("layers on the GPU"));
    }
}
