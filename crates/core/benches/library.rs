//! Benchmarks for the library's speed targets, run by `scripts/bench` (or `cargo bench -p mm-core`):
//! scanning a cache of 1,000 repos (target: well under a second), the hardware probe (target: well under 100 ms),
//! and reading a GGUF header. Prints the median of several runs. With `MM_BENCH_CACHE=DIR` the scanned cache is
//! left there so that scripts/bench can time huggingface_hub's scan_cache_dir on the very same folder.

use mm_core::cache::write::{link_snapshot, write_ref};
use std::path::Path;
use std::time::{Duration, Instant};

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn make_cache(root: &Path, repos: usize) {
    for i in 0..repos {
        let repo = root.join(format!("models--org{i}--model-{i}"));
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        let commit = format!("{i:040x}");
        for (j, name) in ["config.json", "tokenizer.json", "model.safetensors"].iter().enumerate() {
            let blob = format!("{:064x}", i * 8 + j);
            std::fs::write(repo.join("blobs").join(&blob), format!("{i}-{j}")).unwrap();
            link_snapshot(&repo, &commit, name, &blob).unwrap();
        }
        write_ref(&repo, "main", &commit).unwrap();
    }
}

fn main() {
    let kept = std::env::var_os("MM_BENCH_CACHE").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let cache = kept.clone().unwrap_or_else(|| tmp.path().join("hub"));
    let _ = std::fs::remove_dir_all(&cache);
    make_cache(&cache, 1000);

    let scan = time(7, || {
        let s = mm_core::cache::scan_blocking(&cache).unwrap();
        assert_eq!(s.repos.len(), 1000);
    });
    let library = time(7, || {
        let models = mm_core::library::list::list(&cache, &Default::default(), &[]).unwrap();
        assert_eq!(models.len(), 1000);
    });
    let probe = time(7, || {
        std::hint::black_box(mm_core::compat::hardware::probe(&cache));
    });
    println!("scan 1000 repos (3 files each)      {:>8.1} ms", scan.as_secs_f64() * 1e3);
    println!("library list of 1000 repos          {:>8.1} ms", library.as_secs_f64() * 1e3);
    println!("hardware probe                      {:>8.1} ms", probe.as_secs_f64() * 1e3);
}
