//! What a loaded model really took: its runtime's resident memory (`/proc/PID/status`) and the GPU memory NVML
//! says it holds, kept per model and file in `{data}/runtime/measured.json` beside the estimate (the runtime host
//! writes it), so that a verdict can say how far the estimate was off on this machine.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use ts_rs::TS;

/// What a runtime takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryUse {
    /// Resident memory of the runtime's process (for Ollama: the model's size in RAM as the server reports it).
    pub ram: u64,
    /// GPU memory it holds (NVML, or Ollama's report), when there is a GPU.
    pub gpu: Option<u64>,
}

/// One model's estimate against what it took, the last time it was loaded here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    pub id: String,
    /// The weight file it ran from.
    pub file: String,
    pub context: u64,
    pub gpu_layers: u64,
    pub estimate_bytes: u64,
    /// The peak seen while it was loaded.
    pub measured: MemoryUse,
    /// Unix seconds.
    pub at: u64,
}

impl Measurement {
    /// All memory measured (RAM and GPU).
    pub fn measured_bytes(&self) -> u64 {
        self.measured.ram + self.measured.gpu.unwrap_or(0)
    }

    /// How far off the estimate was: measured / estimate − 1 (+0.10: it took 10% more than estimated).
    pub fn error_ratio(&self) -> f64 {
        self.measured_bytes() as f64 / self.estimate_bytes.max(1) as f64 - 1.0
    }

    /// One sentence for a verdict: "Measured here: 1.1 GB against an estimate of 1.0 GB (+10%)".
    pub fn summary(&self) -> String {
        format!(
            "Measured here: {:.2} GB against an estimate of {:.2} GB ({:+.0}%)",
            self.measured_bytes() as f64 / 1e9,
            self.estimate_bytes as f64 / 1e9,
            self.error_ratio() * 100.0
        )
    }
}

/// The resident memory of one process (llama-server runs as one).
pub fn process_ram(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// A process's memory now: resident, and what it holds on every NVIDIA GPU (none without NVML).
pub fn of_process(pid: u32) -> Option<MemoryUse> {
    Some(MemoryUse { ram: process_ram(pid)?, gpu: super::hardware::gpu_memory_of(pid) })
}

/// The larger of two readings, field by field (a peak).
pub fn peak(a: Option<MemoryUse>, b: MemoryUse) -> MemoryUse {
    match a {
        None => b,
        Some(a) => MemoryUse {
            ram: a.ram.max(b.ram),
            gpu: match (a.gpu, b.gpu) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            },
        },
    }
}

fn file(data_dir: &Path) -> PathBuf {
    data_dir.join("runtime").join("measured.json")
}

/// Every measurement kept, one per model and file.
pub fn read_all(data_dir: &Path) -> Vec<Measurement> {
    std::fs::read(file(data_dir)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// The last measurement of a model (any of its files).
pub fn of_model(data_dir: &Path, id: &str) -> Option<Measurement> {
    read_all(data_dir).into_iter().filter(|m| m.id == id).max_by_key(|m| m.at)
}

/// Keeps `m` in place of the one of the same model and file (one writer: the host).
pub fn record(data_dir: &Path, m: Measurement) -> std::io::Result<()> {
    let mut all = read_all(data_dir);
    all.retain(|x| !(x.id == m.id && x.file == m.file));
    all.push(m);
    std::fs::create_dir_all(data_dir.join("runtime"))?;
    crate::disk::write_atomic(&file(data_dir), &serde_json::to_vec_pretty(&all).expect("serialises"), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_resident_memory_and_peaks_keep_the_larger() {
        let now = of_process(std::process::id()).unwrap();
        assert!(now.ram > 1 << 20, "{now:?}");
        let p = peak(Some(MemoryUse { ram: 5, gpu: None }), MemoryUse { ram: 3, gpu: Some(7) });
        assert_eq!(p, MemoryUse { ram: 5, gpu: Some(7) });
        assert_eq!(process_ram(u32::MAX), None);
    }

    #[test]
    fn a_measurement_replaces_the_one_of_the_same_model_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let m = |file: &str, ram, at| Measurement {
            id: "a/b".into(),
            file: file.into(),
            context: 512,
            gpu_layers: 0,
            estimate_bytes: 100,
            measured: MemoryUse { ram, gpu: None },
            at,
        };
        record(dir.path(), m("x.gguf", 110, 1)).unwrap();
        record(dir.path(), m("x.gguf", 90, 2)).unwrap();
        record(dir.path(), m("y.gguf", 120, 3)).unwrap();
        assert_eq!(read_all(dir.path()).len(), 2);
        let last = of_model(dir.path(), "a/b").unwrap();
        assert_eq!(last.file, "y.gguf");
        assert!((last.error_ratio() - 0.2).abs() < 1e-9);
        assert!((read_all(dir.path())[0].error_ratio() + 0.1).abs() < 1e-9);
    }
}
