//! The machine as a model sees it: NVIDIA GPUs through NVML (loaded at run time: without the library or the
//! driver there is simply no NVIDIA GPU), other GPUs sysinfo sees, RAM, CPU and its vector features, the OS, and
//! free space on the cache's disk.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::OnceLock;
use ts_rs::TS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HardwareInfo {
    pub gpus: Vec<GpuInfo>,
    /// Why no NVIDIA GPU was found, when none was (e.g. "libnvidia-ml.so.1 not found").
    pub nvidia_note: Option<String>,
    pub ram_total: u64,
    pub ram_available: u64,
    pub cpu: CpuInfo,
    pub os: String,
    pub disk_free: u64,
    pub disk_total: u64,
    /// How long the probe took, in milliseconds.
    pub probe_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GpuInfo {
    pub name: String,
    pub vendor: String,
    pub vram_total: u64,
    pub vram_free: u64,
    pub driver: Option<String>,
    pub cuda_version: Option<String>,
    pub compute_capability: Option<String>,
}

impl GpuInfo {
    /// The name people know, with the vendor once: NVML says "NVIDIA H100 80GB HBM3", sysinfo may say "Radeon".
    pub fn label(&self) -> String {
        if self.name.to_lowercase().starts_with(&self.vendor.to_lowercase()) {
            self.name.clone()
        } else {
            format!("{} {}", self.vendor, self.name)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuInfo {
    pub brand: String,
    pub physical_cores: u32,
    pub threads: u32,
    /// Vector extensions that matter for CPU inference: avx2, avx512f, fma, f16c, neon, ...
    pub features: Vec<String>,
}

/// NVML, initialised once (loading the library is the slow part); the error text when it is not there.
fn nvml() -> &'static Result<nvml_wrapper::Nvml, String> {
    static NVML: OnceLock<Result<nvml_wrapper::Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| {
        nvml_wrapper::Nvml::init().map_err(|e| match e {
            nvml_wrapper::error::NvmlError::LibloadingError(_) => {
                "no NVIDIA driver (libnvidia-ml.so.1 is not installed)".to_string()
            }
            nvml_wrapper::error::NvmlError::DriverNotLoaded => {
                "the NVIDIA driver is installed but not loaded".to_string()
            }
            other => format!("NVML could not start: {other}"),
        })
    })
}

fn nvidia_gpus() -> Result<Vec<GpuInfo>, String> {
    let nvml = nvml().as_ref().map_err(Clone::clone)?;
    let count = nvml.device_count().map_err(|e| e.to_string())?;
    let driver = nvml.sys_driver_version().ok();
    let cuda = nvml.sys_cuda_driver_version().ok().map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10));
    let mut out = Vec::new();
    for i in 0..count {
        let device = nvml.device_by_index(i).map_err(|e| e.to_string())?;
        let memory = device.memory_info().map_err(|e| e.to_string())?;
        out.push(GpuInfo {
            name: device.name().unwrap_or_else(|_| format!("NVIDIA GPU {i}")),
            vendor: "NVIDIA".into(),
            vram_total: memory.total,
            vram_free: memory.free,
            driver: driver.clone(),
            cuda_version: cuda.clone(),
            compute_capability: device.cuda_compute_capability().ok().map(|c| format!("{}.{}", c.major, c.minor)),
        });
    }
    Ok(out)
}

/// The GPU memory process `pid` holds, summed over every NVIDIA GPU; none without NVML or when it holds none.
pub fn gpu_memory_of(pid: u32) -> Option<u64> {
    use nvml_wrapper::enums::device::UsedGpuMemory;
    let nvml = nvml().as_ref().ok()?;
    let mut total = None;
    for i in 0..nvml.device_count().ok()? {
        let Ok(device) = nvml.device_by_index(i) else { continue };
        // A process may be listed as both; it is counted once per GPU.
        let mut listed = device.running_compute_processes().unwrap_or_default();
        listed.extend(device.running_graphics_processes().unwrap_or_default());
        if let Some(UsedGpuMemory::Used(bytes)) = listed.into_iter().find(|p| p.pid == pid).map(|p| p.used_gpu_memory) {
            total = Some(total.unwrap_or(0) + bytes);
        }
    }
    total
}

fn cpu_features() -> Vec<String> {
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! check {
            ($($f:tt),*) => {$(if std::arch::is_x86_feature_detected!($f) { out.push($f.to_string()); })*};
        }
        check!("sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vnni", "avx512bf16");
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! check {
            ($($f:tt),*) => {$(if std::arch::is_aarch64_feature_detected!($f) { out.push($f.to_string()); })*};
        }
        check!("neon", "fp16", "dotprod", "i8mm", "sve");
    }
    out
}

/// Probes the machine; `cache_dir` names the disk whose free space counts.
pub fn probe(cache_dir: &Path) -> HardwareInfo {
    let started = std::time::Instant::now();
    let (mut gpus, nvidia_note) = match nvidia_gpus() {
        Ok(gpus) if !gpus.is_empty() => (gpus, None),
        Ok(_) => (Vec::new(), Some("NVML found no NVIDIA GPU".to_string())),
        Err(e) => (Vec::new(), Some(e)),
    };
    // Other GPUs sysinfo can see (it may list the NVIDIA ones again: those are skipped).
    if let Ok(others) = sysinfo::Gpus::new_with_refreshed_list() {
        for gpu in others.iter() {
            let vendor = gpu.vendor().unwrap_or("unknown").to_string();
            if vendor.to_lowercase().contains("nvidia") && !gpus.is_empty() {
                continue;
            }
            let total = gpu.total_memory().unwrap_or(0);
            gpus.push(GpuInfo {
                name: gpu.model().unwrap_or("GPU").to_string(),
                vendor,
                vram_total: total,
                vram_free: total.saturating_sub(gpu.used_memory().unwrap_or(0)),
                driver: None,
                cuda_version: None,
                compute_capability: None,
            });
        }
    }
    let mut system = sysinfo::System::new_with_specifics(
        sysinfo::RefreshKind::nothing()
            .with_memory(sysinfo::MemoryRefreshKind::nothing().with_ram())
            .with_cpu(sysinfo::CpuRefreshKind::nothing()),
    )
    .ok();
    if let Some(s) = system.as_mut() {
        s.refresh_memory();
    }
    let (ram_total, ram_available) =
        system.as_ref().map(|s| (s.total_memory(), s.available_memory())).unwrap_or((0, 0));
    let cpus = system.as_ref().map(|s| s.cpus()).unwrap_or(&[]);
    let cpu = CpuInfo {
        brand: cpus
            .first()
            .map(|c| c.brand().trim().to_string())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        physical_cores: sysinfo::System::physical_core_count().ok().map(|n| n as u32).unwrap_or(cpus.len() as u32),
        threads: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
        features: cpu_features(),
    };
    let os = sysinfo::System::long_os_version()
        .or_else(|_| sysinfo::System::name())
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    let (disk_free, disk_total) = crate::disk::usage(cache_dir).unwrap_or((0, 0));
    HardwareInfo {
        gpus,
        nvidia_note,
        ram_total,
        ram_available,
        cpu,
        os,
        disk_free,
        disk_total,
        probe_ms: started.elapsed().as_millis() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str, vendor: &str) -> GpuInfo {
        GpuInfo {
            name: name.into(),
            vendor: vendor.into(),
            vram_total: 0,
            vram_free: 0,
            driver: None,
            cuda_version: None,
            compute_capability: None,
        }
    }

    #[test]
    fn the_label_names_the_vendor_once() {
        // What NVML says on an H100, and what older drivers and sysinfo say.
        assert_eq!(gpu("NVIDIA H100 80GB HBM3", "NVIDIA").label(), "NVIDIA H100 80GB HBM3");
        assert_eq!(gpu("Tesla V100-SXM2-16GB", "NVIDIA").label(), "NVIDIA Tesla V100-SXM2-16GB");
        assert_eq!(gpu("Radeon RX 7900", "AMD").label(), "AMD Radeon RX 7900");
    }
}
