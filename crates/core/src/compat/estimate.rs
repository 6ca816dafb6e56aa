//! From a model's numbers to a verdict. The estimate, stated in the README:
//!
//! ```text
//! weights  = the bytes of the tensors (from the headers: shapes × dtype or quantisation)
//! kv_cache = 2 × layers × context × kv_heads × head_dim × bytes  (f16: 2; q8_0: 34/32; q4_0: 18/32)
//! compute  = max(256 MiB, 5% of weights)             (activations and scratch)
//! need     = weights + kv_cache + compute             (+ 512 MiB per GPU for the driver's context)
//! ```
//!
//! with the context the model's own, capped at 8192 for the headline (or what the caller asks). The verdict:
//! `fits-gpu` when `need + reserve` fits the GPU with the most free memory; `partial-offload` when some layers fit
//! it and the rest fit in RAM; `cpu-only` when `need` fits in available RAM; `too-large` otherwise; and
//! `insufficient-disk` first when a download would not fit on the disk. Each verdict is given against the memory
//! free now and against the total (what closing other programs would give).

use super::gguf::GgufSummary;
use super::hardware::HardwareInfo;
use super::safetensors::SafetensorsSummary;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub const HEADLINE_CONTEXT: u64 = 8192;
pub const GPU_RESERVE: u64 = 512 << 20;
const MIN_COMPUTE: u64 = 256 << 20;

/// What one model (or one GGUF file of a repo) needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    /// "gguf" or "safetensors".
    pub format: String,
    pub architecture: Option<String>,
    pub parameters: u64,
    /// The quantisation (GGUF) or main dtype (safetensors).
    pub precision: Option<String>,
    pub weights_bytes: u64,
    pub layers: Option<u64>,
    pub max_context: Option<u64>,
    /// The context the estimate uses.
    pub context: u64,
    pub kv_heads: Option<u64>,
    pub head_dim: Option<u64>,
    /// The KV cache's type the estimate uses (a model's load settings may name one).
    #[serde(default)]
    pub kv_cache_type: KvCacheType,
    pub kv_cache_bytes: u64,
    pub compute_bytes: u64,
    /// weights + KV cache + compute (a GPU adds its reserve).
    pub total_bytes: u64,
}

/// The type of a KV cache's elements: f16, or llama.cpp's 8- and 4-bit blocks (32 values in 34 or 18 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub enum KvCacheType {
    #[default]
    #[serde(rename = "f16")]
    F16,
    #[serde(rename = "q8_0")]
    Q8_0,
    #[serde(rename = "q4_0")]
    Q4_0,
}

impl KvCacheType {
    /// Bytes per 32 values.
    fn bytes_per_32(self) -> u64 {
        match self {
            KvCacheType::F16 => 64,
            KvCacheType::Q8_0 => 34,
            KvCacheType::Q4_0 => 18,
        }
    }

    /// The bytes of `values` cache values of this type.
    pub fn bytes(self, values: u64) -> u64 {
        values.saturating_mul(self.bytes_per_32()) / 32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    FitsGpu,
    PartialOffload,
    CpuOnly,
    TooLarge,
    InsufficientDisk,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub fit: Fit,
    /// For partial offload: how many layers fit on the GPU, of how many.
    pub gpu_layers: Option<u64>,
    pub layers: Option<u64>,
    /// The GPU it is measured against (the one with the most memory).
    pub gpu: Option<String>,
    /// The memory it is measured against.
    pub vram: u64,
    pub ram: u64,
    /// One sentence with the numbers.
    pub summary: String,
}

/// The verdict for one model or file, now and at best.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileCompat {
    /// The GGUF file, when the repo offers several; none for a whole (safetensors) model.
    pub file: Option<String>,
    pub file_bytes: u64,
    pub requirements: Requirements,
    /// Against the memory free now.
    pub now: Verdict,
    /// Against the total memory.
    pub best: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatReport {
    pub model: String,
    pub entries: Vec<FileCompat>,
    /// Bytes still to download (0 for a model on disk).
    pub download_bytes: u64,
    pub disk_free: u64,
}

/// What `config.json` adds to what the weights say.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ModelConfig {
    #[serde(alias = "n_layer", alias = "num_layers")]
    pub num_hidden_layers: Option<u64>,
    #[serde(alias = "n_head")]
    pub num_attention_heads: Option<u64>,
    pub num_key_value_heads: Option<u64>,
    #[serde(alias = "n_embd", alias = "d_model")]
    pub hidden_size: Option<u64>,
    pub head_dim: Option<u64>,
    #[serde(alias = "n_positions", alias = "max_seq_len")]
    pub max_position_embeddings: Option<u64>,
    pub model_type: Option<String>,
    pub torch_dtype: Option<String>,
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Multimodal configs keep the language model's numbers here.
    pub text_config: Option<Box<ModelConfig>>,
}

impl ModelConfig {
    /// The language model's numbers, from `text_config` when the top level lacks them.
    fn text(&self) -> ModelConfig {
        let inner = self.text_config.as_deref().cloned().unwrap_or_default();
        ModelConfig {
            num_hidden_layers: self.num_hidden_layers.or(inner.num_hidden_layers),
            num_attention_heads: self.num_attention_heads.or(inner.num_attention_heads),
            num_key_value_heads: self.num_key_value_heads.or(inner.num_key_value_heads),
            hidden_size: self.hidden_size.or(inner.hidden_size),
            head_dim: self.head_dim.or(inner.head_dim),
            max_position_embeddings: self.max_position_embeddings.or(inner.max_position_embeddings),
            model_type: self.model_type.clone().or(inner.model_type),
            torch_dtype: self.torch_dtype.clone().or(inner.torch_dtype),
            architectures: self.architectures.clone(),
            text_config: None,
        }
    }
}

fn finish(mut r: Requirements, context: Option<u64>) -> Requirements {
    r.context = context.or(r.max_context.map(|c| c.min(HEADLINE_CONTEXT))).unwrap_or(HEADLINE_CONTEXT.min(4096)).max(1);
    r.kv_cache_bytes = match (r.layers, r.kv_heads, r.head_dim) {
        (Some(l), Some(h), Some(d)) => {
            r.kv_cache_type.bytes(2u64.saturating_mul(l).saturating_mul(r.context).saturating_mul(h).saturating_mul(d))
        }
        _ => 0,
    };
    r.compute_bytes = (r.weights_bytes / 20).max(MIN_COMPUTE);
    r.total_bytes = r.weights_bytes.saturating_add(r.kv_cache_bytes).saturating_add(r.compute_bytes);
    r
}

/// The same model's needs at another context.
pub fn with_context(r: &Requirements, context: u64) -> Requirements {
    finish(r.clone(), Some(context))
}

/// The same model's needs with another KV cache type, at `context` (none: the headline one).
pub fn with_cache(r: &Requirements, context: Option<u64>, kv_cache_type: KvCacheType) -> Requirements {
    finish(Requirements { kv_cache_type, ..r.clone() }, context)
}

pub fn from_gguf(s: &GgufSummary, context: Option<u64>) -> Requirements {
    let head_dim = match (s.embedding_length, s.head_count) {
        (Some(e), Some(h)) if h > 0 => Some(e / h),
        _ => None,
    };
    finish(
        Requirements {
            format: "gguf".into(),
            architecture: s.architecture.clone(),
            parameters: s.parameters,
            precision: s
                .file_type
                .clone()
                .map(|f| f.trim_start_matches("MOSTLY_").to_string())
                .or(s.quantization.clone()),
            weights_bytes: s.data_bytes,
            layers: s.block_count,
            max_context: s.context_length,
            context: 0,
            kv_heads: s.head_count_kv,
            head_dim,
            kv_cache_type: KvCacheType::F16,
            kv_cache_bytes: 0,
            compute_bytes: 0,
            total_bytes: 0,
        },
        context,
    )
}

pub fn from_safetensors(s: &SafetensorsSummary, config: &ModelConfig, context: Option<u64>) -> Requirements {
    let c = config.text();
    let head_dim = c.head_dim.or(match (c.hidden_size, c.num_attention_heads) {
        (Some(e), Some(h)) if h > 0 => Some(e / h),
        _ => None,
    });
    finish(
        Requirements {
            format: "safetensors".into(),
            architecture: c.architectures.first().cloned().or(c.model_type.clone()),
            parameters: s.parameters,
            precision: s.parameters_by_dtype.iter().max_by_key(|(_, n)| **n).map(|(d, _)| d.clone()),
            weights_bytes: s.data_bytes,
            layers: c.num_hidden_layers,
            max_context: c.max_position_embeddings,
            context: 0,
            kv_heads: c.num_key_value_heads.or(c.num_attention_heads),
            head_dim,
            kv_cache_type: KvCacheType::F16,
            kv_cache_bytes: 0,
            compute_bytes: 0,
            total_bytes: 0,
        },
        context,
    )
}

/// The verdict for `r` against memory: `vram`/`ram` are free (now) or total (at best) figures.
pub fn judge(r: &Requirements, gpu: Option<(&str, u64)>, ram: u64, download: u64, disk_free: u64) -> Verdict {
    let gib = |b: u64| format!("{:.1} GB", b as f64 / 1e9);
    let (gpu_name, vram) = gpu.map(|(n, v)| (Some(n.to_string()), v)).unwrap_or((None, 0));
    let verdict = |fit, gpu_layers, summary: String| Verdict {
        fit,
        gpu_layers,
        layers: r.layers,
        gpu: gpu_name.clone(),
        vram,
        ram,
        summary,
    };
    if download > disk_free {
        return verdict(
            Fit::InsufficientDisk,
            None,
            format!("Needs {} of disk to download, {} free", gib(download), gib(disk_free)),
        );
    }
    let need_gpu = r.total_bytes.saturating_add(GPU_RESERVE);
    if vram > 0 && need_gpu <= vram {
        // Name the runtime's share: the figure people compare with is the model's need shown beside it.
        return verdict(
            Fit::FitsGpu,
            None,
            format!(
                "Fits on the GPU: needs {} of {} VRAM ({} model + {} GPU runtime)",
                gib(need_gpu),
                gib(vram),
                gib(r.total_bytes),
                gib(GPU_RESERVE)
            ),
        );
    }
    if vram > GPU_RESERVE + r.compute_bytes {
        if let Some(layers) = r.layers.filter(|l| *l > 0) {
            let per_layer = (r.weights_bytes + r.kv_cache_bytes) / layers;
            let room = vram - GPU_RESERVE - r.compute_bytes;
            // It did not fit whole, so at least one layer stays on the CPU.
            let on_gpu = (room / per_layer.max(1)).min(layers - 1);
            let in_ram = r.total_bytes.saturating_sub(on_gpu * per_layer);
            if on_gpu > 0 && in_ram <= ram {
                return verdict(
                    Fit::PartialOffload,
                    Some(on_gpu),
                    format!(
                        "{on_gpu} of {layers} layers fit on the GPU ({} VRAM); the rest needs {} of {} RAM",
                        gib(vram),
                        gib(in_ram),
                        gib(ram)
                    ),
                );
            }
        }
    }
    if r.total_bytes <= ram {
        let why = if vram > 0 { "too large for the GPU, " } else { "" };
        return verdict(
            Fit::CpuOnly,
            None,
            format!("Runs on the CPU ({why}needs {} of {} RAM)", gib(r.total_bytes), gib(ram)),
        );
    }
    let has = if vram > 0 {
        format!("{} VRAM and {} RAM", gib(vram), gib(ram))
    } else {
        format!("no GPU and {} RAM", gib(ram))
    };
    verdict(Fit::TooLarge, None, format!("Too large: needs {}, this machine has {has}", gib(r.total_bytes)))
}

/// Both verdicts for `r` on `hw`: against free memory now, and against the totals.
pub fn assess(file: Option<String>, file_bytes: u64, r: Requirements, hw: &HardwareInfo, download: u64) -> FileCompat {
    let best_free = hw.gpus.iter().max_by_key(|g| g.vram_free).map(|g| (g.name.as_str(), g.vram_free));
    let best_total = hw.gpus.iter().max_by_key(|g| g.vram_total).map(|g| (g.name.as_str(), g.vram_total));
    let now = judge(&r, best_free, hw.ram_available, download, hw.disk_free);
    let best = judge(&r, best_total, hw.ram_total, download, hw.disk_free);
    FileCompat { file, file_bytes, requirements: r, now, best }
}

/// How a model is to be run, as far as the estimate cares: its context (none: the headline one), its KV cache's
/// type, whether no layer goes to the GPU, and the adapters' weights beside its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizing {
    pub context: Option<u64>,
    pub kv_cache_type: KvCacheType,
    pub cpu_only: bool,
    /// Weights loaded beside the model's own (its LoRA adapters).
    pub extra_weights: u64,
}

/// `report` again for `sizing`: each entry's needs and verdicts. A context asked for (`asked`) wins over the
/// sizing's.
pub fn resized(mut report: CompatReport, sizing: Sizing, asked: Option<u64>, hw: &HardwareInfo) -> CompatReport {
    if sizing == Sizing::default() {
        return report;
    }
    let cpu = HardwareInfo { gpus: Vec::new(), ..hw.clone() };
    let hw = if sizing.cpu_only { &cpu } else { hw };
    let download = report.download_bytes;
    report.entries = report
        .entries
        .into_iter()
        .map(|e| {
            let weights =
                Requirements { weights_bytes: e.requirements.weights_bytes + sizing.extra_weights, ..e.requirements };
            let r = with_cache(&weights, asked.or(sizing.context), sizing.kv_cache_type);
            assess(e.file, e.file_bytes, r, hw, download)
        })
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(weights: u64, layers: u64) -> Requirements {
        finish(
            Requirements {
                format: "gguf".into(),
                architecture: Some("llama".into()),
                parameters: weights,
                precision: None,
                weights_bytes: weights,
                layers: Some(layers),
                max_context: Some(32768),
                context: 0,
                kv_heads: Some(8),
                head_dim: Some(128),
                kv_cache_type: KvCacheType::F16,
                kv_cache_bytes: 0,
                compute_bytes: 0,
                total_bytes: 0,
            },
            None,
        )
    }

    const GB: u64 = 1_000_000_000;

    #[test]
    fn the_formula_as_stated() {
        let r = req(8 * GB, 32);
        assert_eq!(r.context, 8192, "the model's 32k is capped at 8k for the headline");
        assert_eq!(r.kv_cache_bytes, 2 * 32 * 8192 * 8 * 128 * 2);
        assert_eq!(r.compute_bytes, 8 * GB / 20);
        assert_eq!(r.total_bytes, 8 * GB + r.kv_cache_bytes + r.compute_bytes);
        assert_eq!(finish(r.clone(), Some(2048)).kv_cache_bytes, r.kv_cache_bytes / 4);
        assert_eq!(req(100, 1).compute_bytes, 256 << 20, "compute has a floor");
        let q8 = with_cache(&r, None, KvCacheType::Q8_0);
        assert_eq!(q8.kv_cache_bytes, r.kv_cache_bytes / 64 * 34, "a q8_0 cache: 34 bytes per 32 values");
        assert_eq!(with_cache(&r, Some(2048), KvCacheType::Q4_0).kv_cache_bytes, r.kv_cache_bytes / 4 / 64 * 18);
    }

    #[test]
    fn verdict_boundaries_with_injected_hardware() {
        let r = req(8 * GB, 32); // total ≈ 9.47 GB
        let need_gpu = r.total_bytes + GPU_RESERVE;
        assert_eq!(judge(&r, Some(("A", need_gpu)), 0, 0, u64::MAX).fit, Fit::FitsGpu, "exactly enough VRAM fits");
        let short = judge(&r, Some(("A", need_gpu - 1)), 64 * GB, 0, u64::MAX);
        assert_eq!(short.fit, Fit::PartialOffload, "one byte short offloads part");
        assert_eq!(short.layers, Some(32));
        assert_eq!(short.gpu_layers, Some(31), "all but one layer: {short:?}");
        let half = judge(&r, Some(("A", need_gpu / 2)), 64 * GB, 0, u64::MAX);
        assert!((12..=16).contains(&half.gpu_layers.unwrap()), "{half:?}");
        assert_eq!(
            judge(&r, Some(("A", GB)), r.total_bytes, 0, u64::MAX).fit,
            Fit::CpuOnly,
            "a GPU too small for one layer"
        );
        assert_eq!(judge(&r, None, r.total_bytes, 0, u64::MAX).fit, Fit::CpuOnly, "no GPU, enough RAM");
        assert_eq!(judge(&r, None, r.total_bytes - 1, 0, u64::MAX).fit, Fit::TooLarge);
        let disk = judge(&r, Some(("A", 80 * GB)), 64 * GB, 5 * GB, 4 * GB);
        assert_eq!(disk.fit, Fit::InsufficientDisk);
        assert_eq!(disk.summary, "Needs 5.0 GB of disk to download, 4.0 GB free");
        let fits = judge(&r, Some(("H100", 80 * GB)), 0, 0, u64::MAX);
        // The runtime's share is named, so the sum agrees with the model's need shown beside it.
        assert_eq!(fits.summary, "Fits on the GPU: needs 10.0 GB of 80.0 GB VRAM (9.5 GB model + 0.5 GB GPU runtime)");
    }
}
