//! Compatibility: our GGUF and safetensors parsers against files written (and read back) by the reference Python
//! packages, remote estimates through the fake hub equal to local ones, the machine without NVIDIA, and hostile
//! input that must give errors, never panics or hangs.

use fake_hub::{FakeHub, HubFile};
use mm_core::compat::{gguf, hardware, local, remote, safetensors, CompatError, Fit};
use mm_core::hub::{HubClient, HubConfig};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    let path = std::env::var_os("MM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python"));
    assert!(path.exists(), "{} is missing: run `scripts/setup test`", path.display());
    path
}

/// Writes the reference files into a temporary folder and returns it with the reference readings.
fn reference_files() -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/write_model_files.py");
    let out = Command::new(python()).arg(script).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference = serde_json::from_slice(&out.stdout).unwrap();
    (dir, reference)
}

#[test]
fn gguf_fields_match_the_reference_reader() {
    let (dir, reference) = reference_files();
    let r = &reference["gguf"];
    let s = local::read_gguf(&dir.path().join("model.gguf")).unwrap();
    assert_eq!(s.version, 3);
    assert_eq!(s.tensors, r["tensors"].as_u64().unwrap());
    assert_eq!(s.parameters, r["parameters"].as_u64().unwrap());
    assert_eq!(s.data_bytes, r["dataBytes"].as_u64().unwrap());
    assert_eq!(s.architecture.as_deref(), r["architecture"].as_str());
    assert_eq!(s.name.as_deref(), r["name"].as_str());
    assert_eq!(s.block_count, r["blockCount"].as_u64());
    assert_eq!(s.context_length, r["contextLength"].as_u64());
    assert_eq!(s.embedding_length, r["embeddingLength"].as_u64());
    assert_eq!(s.head_count, r["headCount"].as_u64());
    assert_eq!(s.head_count_kv, r["headCountKv"].as_u64());
    assert_eq!(s.file_type.as_deref(), Some("MOSTLY_F16"));
    assert_eq!(s.quantization.as_deref(), Some("F16"));
    assert!(!s.metadata.contains_key("tokenizer.ggml.tokens"), "arrays are skipped, not kept");
}

#[test]
fn safetensors_fields_match_the_reference_reader() {
    let (dir, reference) = reference_files();
    let r = &reference["safetensors"];
    let s = local::read_safetensors(&dir.path().join("model.safetensors")).unwrap();
    assert_eq!(s.tensors, r["tensors"].as_u64().unwrap());
    assert_eq!(s.parameters, r["parameters"].as_u64().unwrap());
    assert_eq!(s.data_bytes, r["dataBytes"].as_u64().unwrap());
    assert_eq!(s.metadata["format"], r["metadata"]["format"].as_str().unwrap());
    assert_eq!(s.parameters_by_dtype["F16"], 300 * 64 + 64);
    assert_eq!(s.parameters_by_dtype["F32"], 64 * 64);
}

fn hw(vram: u64, ram: u64) -> hardware::HardwareInfo {
    let mut h = hardware::probe(Path::new("/"));
    h.gpus = if vram > 0 {
        vec![hardware::GpuInfo {
            name: "Test GPU".into(),
            vendor: "NVIDIA".into(),
            vram_total: vram,
            vram_free: vram,
            driver: None,
            cuda_version: None,
            compute_capability: None,
        }]
    } else {
        vec![]
    };
    h.ram_available = ram;
    h.ram_total = ram;
    h.disk_free = u64::MAX / 2;
    h
}

#[tokio::test]
async fn remote_estimates_through_the_hub_equal_local_ones() {
    let (dir, _) = reference_files();
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let hub = FakeHub::start().await;
    hub.add_repo("acme/gguf", vec![HubFile::new("model.gguf", read("model.gguf"), true)]);
    hub.add_repo(
        "acme/st",
        vec![
            HubFile::new("config.json", read("config.json"), false),
            HubFile::new("model.safetensors", read("model.safetensors"), true),
        ],
    );
    let client =
        HubClient::new(HubConfig { endpoint: hub.endpoint(), token: None, offline: false, ..HubConfig::default() })
            .unwrap();
    let machine = hw(8_000_000_000, 16_000_000_000);
    let cache = tempfile::tempdir().unwrap();

    let remote_gguf = remote::assess_repo(&client, cache.path(), "acme/gguf", None, None, &machine).await.unwrap();
    let local_gguf = local::assess_path(&dir.path().join("model.gguf"), None, &machine).unwrap();
    assert_eq!(remote_gguf.entries[0].requirements, local_gguf.entries[0].requirements);
    assert_eq!(remote_gguf.entries[0].now.fit, Fit::FitsGpu);
    assert_eq!(remote_gguf.download_bytes, read("model.gguf").len() as u64);

    std::fs::remove_file(dir.path().join("model.gguf")).unwrap();
    hub.clear_requests();
    let remote_st = remote::assess_repo(&client, cache.path(), "acme/st", None, Some(1024), &machine).await.unwrap();
    let local_st = local::assess_path(dir.path(), Some(1024), &machine).unwrap();
    assert_eq!(remote_st.entries[0].requirements, local_st.entries[0].requirements);
    let r = &local_st.entries[0].requirements;
    assert_eq!(
        (r.layers, r.kv_heads, r.head_dim, r.context),
        (Some(1), Some(2), Some(16), 1024),
        "config.json fills in the shape"
    );
    assert_eq!(r.kv_cache_bytes, 2 * 1024 * 2 * 16 * 2);
    // Only header bytes crossed the wire for the weights: two small ranges.
    let weights: Vec<_> = hub.requests().into_iter().filter(|q| q.host == fake_hub::Host::Cdn).collect();
    assert_eq!(weights.len(), 2);
    assert!(weights.iter().all(|q| q.range.is_some() && q.sent < 2000), "{weights:?}");
}

/// `nvidia-smi`'s view of the GPUs (name, total MiB, driver, compute capability), when it runs here.
fn nvidia_smi() -> Option<Vec<(String, u64, String, String)>> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total,driver_version,compute_cap", "--format=csv,noheader,nounits"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?;
    let rows = text.lines().filter(|l| !l.trim().is_empty()).map(|line| {
        let f: Vec<&str> = line.split(", ").map(str::trim).collect();
        (f[0].to_string(), f[1].parse().expect("MiB"), f[2].to_string(), f[3].to_string())
    });
    Some(rows.collect())
}

/// Both branches of the NVML probe: where the NVIDIA driver runs, NVML's answer equals `nvidia-smi`'s (checked on
/// an H100); where it does not, there is simply no NVIDIA GPU, said quietly, and the rest is still described.
#[test]
fn nvidia_gpus_are_what_nvidia_smi_sees_and_without_a_driver_there_is_none() {
    let h = hardware::probe(Path::new("/"));
    let nvidia: Vec<_> = h.gpus.iter().filter(|g| g.vendor == "NVIDIA").collect();
    match nvidia_smi() {
        Some(smi) => {
            assert_eq!(nvidia.len(), smi.len(), "{nvidia:?} vs {smi:?}");
            for (gpu, (name, mib, driver, cc)) in nvidia.iter().zip(&smi) {
                assert_eq!(&gpu.name, name);
                assert_eq!(gpu.vram_total / (1024 * 1024), *mib, "{gpu:?}");
                assert!(gpu.vram_free <= gpu.vram_total && gpu.vram_free > 0, "{gpu:?}");
                assert_eq!(gpu.driver.as_deref(), Some(driver.as_str()));
                assert_eq!(gpu.compute_capability.as_deref(), Some(cc.as_str()));
                assert!(gpu.cuda_version.as_deref().is_some_and(|v| v.contains('.')), "{gpu:?}");
            }
            assert!(h.nvidia_note.is_none(), "{:?}", h.nvidia_note);
        }
        None if Path::new("/proc/driver/nvidia").exists() => {
            // A driver without nvidia-smi: at least NVML must have found a GPU with memory.
            assert!(!nvidia.is_empty() && nvidia.iter().all(|g| g.vram_total > 0), "{h:?}");
        }
        None => {
            assert!(nvidia.is_empty(), "{nvidia:?}");
            assert!(h.nvidia_note.as_deref().unwrap_or("").len() > 5, "{:?}", h.nvidia_note);
        }
    }
    assert!(h.ram_total > 0 && h.ram_available > 0 && h.ram_available <= h.ram_total);
    assert!(h.cpu.threads >= 1);
    assert!(h.disk_total >= h.disk_free && h.disk_total > 0);
}

#[test]
fn a_model_too_large_for_everything_is_said_so_with_numbers() {
    let (dir, _) = reference_files();
    let tiny = hw(0, 100_000_000);
    let report = local::assess_path(&dir.path().join("model.gguf"), None, &tiny).unwrap();
    let v = &report.entries[0].now;
    assert_eq!(v.fit, Fit::TooLarge, "{v:?}");
    assert!(v.summary.starts_with("Too large: needs 0.3 GB, this machine has no GPU and 0.1 GB RAM"), "{}", v.summary);
    assert!(matches!(local::assess_path(&dir.path().join("nope.gguf"), None, &tiny), Err(CompatError::NotFound(_))));
}

/// A valid GGUF to mutate: magic, version 3, one tensor, two metadata entries.
fn small_gguf() -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    let string = |b: &mut Vec<u8>, s: &str| {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    };
    string(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    string(&mut b, "llama");
    string(&mut b, "llama.block_count");
    b.extend(4u32.to_le_bytes());
    b.extend(2u32.to_le_bytes());
    string(&mut b, "w");
    b.extend(1u32.to_le_bytes());
    b.extend(16u64.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend([0u8; 64]);
    b
}

#[test]
fn the_hand_built_gguf_parses_and_hostile_counts_are_refused() {
    let good = small_gguf();
    let s = gguf::parse(&good, good.len() as u64).unwrap();
    assert_eq!(
        (s.architecture.as_deref(), s.block_count, s.parameters, s.data_bytes),
        (Some("llama"), Some(2), 16, 64)
    );
    // A 2^60-element array in a tiny file: refused at once, nothing allocated.
    let mut hostile = b"GGUF".to_vec();
    hostile.extend(3u32.to_le_bytes());
    hostile.extend(0u64.to_le_bytes());
    hostile.extend(1u64.to_le_bytes());
    hostile.extend(1u64.to_le_bytes());
    hostile.push(b'k');
    hostile.extend(9u32.to_le_bytes());
    hostile.extend(0u32.to_le_bytes());
    hostile.extend((1u64 << 60).to_le_bytes());
    let err = gguf::parse(&hostile, hostile.len() as u64).unwrap_err();
    assert!(err.to_string().contains("claims 1152921504606846976 elements"), "{err}");
    let mut huge_string = good[..24].to_vec();
    huge_string.extend((1u64 << 60).to_le_bytes());
    assert!(gguf::parse(&huge_string, huge_string.len() as u64)
        .unwrap_err()
        .to_string()
        .contains("past the end of the file"));
    assert!(gguf::parse(b"GGML\x03\0\0\0", 8).unwrap_err().to_string().contains("magic"));
    // A prefix cut short of a longer file asks for more instead of failing.
    assert!(matches!(gguf::parse(&good[..30], good.len() as u64), Err(CompatError::NeedMore { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn gguf_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), extra in 0u64..1_000_000) {
        let _ = gguf::parse(&bytes, bytes.len() as u64 + extra);
        let mut with_magic = b"GGUF\x03\0\0\0".to_vec();
        with_magic.extend(&bytes);
        let _ = gguf::parse(&with_magic, with_magic.len() as u64);
    }

    #[test]
    fn gguf_never_panics_on_mutated_or_truncated_files(at in 0usize..200, value in any::<u8>(), cut in 0usize..200) {
        let mut f = small_gguf();
        let i = at % f.len();
        f[i] = value;
        let _ = gguf::parse(&f, f.len() as u64);
        let cut = cut % f.len();
        let _ = gguf::parse(&f[..cut], cut as u64);
    }

    #[test]
    fn safetensors_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), len in any::<u64>()) {
        let _ = safetensors::parse(&bytes, bytes.len() as u64);
        let mut framed = len.to_le_bytes().to_vec();
        framed.extend(&bytes);
        let _ = safetensors::parse(&framed, framed.len() as u64);
        let json = format!(r#"{{"t":{{"dtype":"F32","shape":[{len},{len}],"data_offsets":[0,{len}]}}}}"#);
        let _ = safetensors::parse_header(json.as_bytes(), 1 << 40);
    }
}
