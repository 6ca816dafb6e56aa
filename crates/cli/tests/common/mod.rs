//! What every `mm` process test starts from: the binary with a cache and a home of the test's own, and nothing of
//! the machine's (no token, no HF_HOME, no offline flag, no Ollama: `OLLAMA_HOST` points at a closed port; no keyring).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `mm` over the cache `cache`, with `home` as HOME and its hidden `.mm-data` as XDG_DATA_HOME (hidden, so that a
/// home inside the cache is not taken for a cache entry).
pub fn mm(cache: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mm"));
    cmd.env("HF_HUB_CACHE", cache)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join(".mm-data"))
        .env("OLLAMA_HOST", "127.0.0.1:9")
        // The machine's own keyring stays out of it (tests/keyring.rs starts a Secret Service of its own).
        .env("MM_KEYRING", "0")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HOME")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_ENDPOINT");
    cmd
}

/// Runs `cmd` off the async runtime (the fake servers keep serving meanwhile).
pub async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

/// The Python with `huggingface_hub` that `scripts/setup test` installs into target/py-venv (or MM_TEST_PYTHON).
pub fn python() -> PathBuf {
    let path = std::env::var_os("MM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python"));
    assert!(path.exists(), "{} is missing: run `scripts/setup test` to install huggingface_hub", path.display());
    path
}
