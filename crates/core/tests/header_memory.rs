//! Crafted model headers cost memory in proportion to their size, not to what they claim: each parser runs under
//! an allocator that counts the bytes held at the peak, on a file of N MB built to make a careless parser keep a
//! million things (a GGUF of 1.5 million tiny keys, a safetensors shape of ten million zeros).

use mm_core::compat::{gguf, safetensors};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// One measurement at a time (the test harness runs tests on several threads).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(held, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes held at once while `f` runs, beyond what was held before it. The caller holds
/// [`ONE_AT_A_TIME`] from before it builds its input, so no other test allocates meanwhile.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

fn gguf_with_keys(keys: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // tensors
    b.extend_from_slice(&(keys + 1).to_le_bytes());
    let mut kv = |key: &str, value: u32| {
        b.extend_from_slice(&(key.len() as u64).to_le_bytes());
        b.extend_from_slice(key.as_bytes());
        b.extend_from_slice(&4u32.to_le_bytes()); // u32
        b.extend_from_slice(&value.to_le_bytes());
    };
    kv("llama.block_count", 2);
    for i in 0..keys {
        kv(&format!("k{i:07}"), 1);
    }
    b
}

#[test]
fn a_gguf_of_a_million_keys_costs_about_its_own_size() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let file = gguf_with_keys(1_500_000);
    let n = file.len();
    assert!(n > 30 << 20, "the crafted header is {n} bytes");
    let (summary, peak) = peak_during(|| gguf::parse(&file, n as u64).unwrap());
    assert_eq!(summary.metadata.len(), 1, "only the key the estimate reads is kept");
    assert!(peak < n / 4, "parsing a {n}-byte header held {peak} bytes at its peak");
}

#[test]
fn a_safetensors_shape_of_ten_million_zeros_costs_about_its_own_size() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let zeros = "0,".repeat(10_000_000);
    let header = format!(
        r#"{{"__metadata__":{{"format":"pt"}},"a":{{"dtype":"F32","shape":[{}],"data_offsets":[0,0]}}}}"#,
        zeros.trim_end_matches(',')
    );
    let n = header.len();
    let (err, peak) = peak_during(|| safetensors::parse_header(header.as_bytes(), n as u64 + 8).unwrap_err());
    assert!(err.to_string().contains("a shape of more than 64 dimensions"), "{err}");
    assert!(peak < n / 4, "parsing a {n}-byte header held {peak} bytes at its peak");
    // The same shape within the bound is read as its element count.
    let header = r#"{"a":{"dtype":"F32","shape":[0,0,0,0,0,0,0,0],"data_offsets":[0,0]}}"#;
    let summary = safetensors::parse_header(header.as_bytes(), header.len() as u64 + 8).unwrap();
    assert_eq!((summary.tensors, summary.parameters), (1, 0));
}

#[test]
fn a_safetensors_header_of_a_million_metadata_entries_keeps_a_few() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let entries: Vec<String> = (0..1_000_000).map(|i| format!(r#""m{i}":"v""#)).collect();
    let header = format!(r#"{{"__metadata__":{{{}}}}}"#, entries.join(","));
    let n = header.len();
    let (summary, peak) = peak_during(|| safetensors::parse_header(header.as_bytes(), n as u64 + 8).unwrap());
    assert_eq!(summary.metadata.len(), 64);
    assert!(peak < n / 4, "parsing a {n}-byte header held {peak} bytes at its peak");
    // A metadata value that is an array of ten million numbers is read past, not built.
    let header =
        format!(r#"{{"__metadata__":{{"x":[{}],"format":"pt"}}}}"#, "0,".repeat(10_000_000).trim_end_matches(','));
    let n = header.len();
    let (summary, peak) = peak_during(|| safetensors::parse_header(header.as_bytes(), n as u64 + 8).unwrap());
    assert_eq!(summary.metadata.get("format").map(String::as_str), Some("pt"));
    assert!(peak < n / 4, "parsing a {n}-byte header held {peak} bytes at its peak");
    let header = r#"{"__metadata__":null}"#;
    assert!(safetensors::parse_header(header.as_bytes(), 100).is_ok(), "a null metadata is no metadata");
}
