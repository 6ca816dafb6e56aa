//! Where the core's `tracing` events go, and how a bug report reads them back. The core logs a span per download
//! and per file (repo, file, transport, attempt), and its retries, fallbacks, refusals and errors with their codes;
//! the app writes them to a daily file in its log folder ([`to_file`]), `mm` to stderr when asked ([`to_stderr`]).
//! `MM_LOG` (a `tracing` filter such as `debug` or `mm_core=trace`) overrides either's level.
//!
//! Nothing secret is logged: tokens are never a field, and URLs are logged through [`redact_url`], without their
//! query (signed URLs carry their signature there) or credentials.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tracing_subscriber::EnvFilter;

/// The environment variable that sets the log filter.
pub const LOG_ENV: &str = "MM_LOG";
/// Log files are `model-manager.YYYY-MM-DD.log`; this many days are kept.
const FILE_PREFIX: &str = "model-manager";
const FILE_SUFFIX: &str = "log";
const KEEP_DAYS: usize = 7;
/// What the app's file holds unless `MM_LOG` says otherwise: the core's and the shell's own events in detail,
/// other libraries' warnings.
const FILE_FILTER: &str = "warn,mm_core=debug,model_manager_lib=debug";
/// What `mm -v` prints.
const VERBOSE_FILTER: &str = "warn,mm_core=debug,mm=debug";

/// The app's log folder in its data folder (`{app data}/logs`, where Tauri's `app_log_dir` is on Linux).
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default))
}

/// Sends this process's logs to a daily file in `dir` (a private folder, created if missing), keeping a week.
/// Fails when the folder cannot be made or a logger is already set.
pub fn to_file(dir: &Path) -> io::Result<()> {
    crate::paths::private_dir(dir)?;
    let appender = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(FILE_PREFIX)
        .filename_suffix(FILE_SUFFIX)
        .max_log_files(KEEP_DAYS)
        .build(dir)
        .map_err(io::Error::other)?;
    tracing_subscriber::fmt()
        .with_env_filter(filter(FILE_FILTER))
        .with_writer(appender)
        .with_ansi(false)
        .try_init()
        .map_err(io::Error::other)
}

/// Sends this process's logs to stderr: with `verbose`, the core's debug events; else only what `MM_LOG` asks for
/// (nothing when it is unset: `mm` prints its own results and errors).
pub fn to_stderr(verbose: bool) {
    let filter = match (verbose, std::env::var_os(LOG_ENV)) {
        (_, Some(_)) => filter(VERBOSE_FILTER),
        (true, None) => EnvFilter::new(VERBOSE_FILTER),
        (false, None) => return,
    };
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr).with_ansi(false).try_init();
}

/// The last `lines` lines of the newest log file in `dir` (at most its last 256 KiB), or an empty string when
/// there is none.
pub fn tail(dir: &Path, lines: usize) -> String {
    const MAX_BYTES: u64 = 256 * 1024;
    let newest = fs::read_dir(dir).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(FILE_PREFIX) && n.ends_with(FILE_SUFFIX))
            // The date in the name sorts as text.
            .max()
    });
    let Some(mut file) = newest.and_then(|n| fs::File::open(dir.join(n)).ok()) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES))).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    // A cut at the 256 KiB mark leaves a partial first line: it goes.
    let skip_partial = usize::from(len > MAX_BYTES);
    let from = all.len().saturating_sub(lines).max(skip_partial.min(all.len()));
    all[from..].join("\n")
}

/// A URL as logs may show it: scheme, host, port and path, without credentials or query (a signed URL's
/// signature, a token someone put there) or fragment.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            let had_query = u.query().is_some();
            u.set_query(None);
            u.set_fragment(None);
            if had_query {
                format!("{u}?…")
            } else {
                u.to_string()
            }
        }
        Err(_) => "(a URL that does not parse)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact_url("https://ada:secret@cdn.example/a/b.gguf?X-Amz-Signature=abc&token=hf_x#frag"),
            "https://cdn.example/a/b.gguf?…"
        );
        assert_eq!(redact_url("http://127.0.0.1:9/m.gguf"), "http://127.0.0.1:9/m.gguf");
        assert!(!redact_url("not a url hf_secret").contains("hf_secret"));
    }

    #[test]
    fn the_tail_is_read_from_the_newest_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(tail(dir.path(), 10), "");
        fs::write(dir.path().join("model-manager.2026-11-30.log"), "old\n").unwrap();
        let lines: String = (1..=500).map(|i| format!("line {i}\n")).collect();
        fs::write(dir.path().join("model-manager.2026-12-01.log"), lines).unwrap();
        fs::write(dir.path().join("other.txt"), "not a log\n").unwrap();
        let tail = tail(dir.path(), 3);
        assert_eq!(tail, "line 498\nline 499\nline 500");
    }

    #[test]
    fn a_huge_log_is_read_from_its_end_only() {
        let dir = tempfile::tempdir().unwrap();
        let line = "x".repeat(999) + "\n";
        fs::write(dir.path().join("model-manager.2026-12-01.log"), line.repeat(1000)).unwrap();
        let tail = tail(dir.path(), 10_000);
        // 256 KiB of 1000-byte lines, the partial first one dropped.
        assert_eq!(tail.lines().count(), 262);
        assert!(tail.lines().all(|l| l.len() == 999));
    }
}
