//! The price of the hash a download pays: the time to sha256 `MM_BENCH_BYTES` bytes (default 1 GiB) from memory
//! with the same `sha2` code and the same 256 KiB updates as a download's writer, median of 5 runs. scripts/bench
//! sets the plain hub's bytes against it: `mm download` cannot be faster than this on one core per file.

use sha2::Digest as _;
use std::time::Instant;

fn main() {
    let bytes: usize = std::env::var("MM_BENCH_BYTES").ok().and_then(|b| b.parse().ok()).unwrap_or(1 << 30);
    let chunk: Vec<u8> = (0..256 << 10).map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let mut runs: Vec<f64> = (0..6)
        .map(|_| {
            let t = Instant::now();
            let mut h = sha2::Sha256::new();
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                h.update(&chunk[..n]);
                left -= n;
            }
            std::hint::black_box(h.finalize());
            t.elapsed().as_secs_f64()
        })
        .skip(1)
        .collect();
    runs.sort_by(f64::total_cmp);
    let t = runs[runs.len() / 2];
    println!("sha256 from memory, {} MiB: {t:.3} s ({:.0} MB/s)", bytes >> 20, bytes as f64 / 1e6 / t);
}
