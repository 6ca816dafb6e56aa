//! The text a user pastes into a bug report: versions, this machine, where things are, the settings (never the
//! token) and the end of the log.

use crate::compat::hardware::HardwareInfo;
use crate::format::bytes;
use crate::settings::Settings;
use std::fmt::Write;
use std::path::Path;

/// Log lines at the end of the report.
pub const LOG_LINES: usize = 300;

/// Where the app keeps what a report should name.
pub struct Places<'a> {
    pub cache_dir: &'a Path,
    pub data_dir: &'a Path,
    pub log_dir: &'a Path,
}

/// The report, as plain text. `app` names the program and its version.
pub fn report(app: &str, hardware: &HardwareInfo, settings: &Settings, places: &Places<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{app} (core {})", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "OS: {}", hardware.os);
    let cpu = &hardware.cpu;
    let _ = writeln!(
        out,
        "CPU: {}, {} cores, {} threads; {}",
        cpu.brand,
        cpu.physical_cores,
        cpu.threads,
        cpu.features.join(" ")
    );
    let _ = writeln!(out, "Memory: {} available of {}", bytes(hardware.ram_available), bytes(hardware.ram_total));
    if hardware.gpus.is_empty() {
        let _ = writeln!(out, "GPU: none ({})", hardware.nvidia_note.as_deref().unwrap_or("no NVIDIA GPU found"));
    }
    for gpu in &hardware.gpus {
        let _ = writeln!(
            out,
            "GPU: {}, {} free of {}; driver {}, CUDA {}",
            gpu.label(),
            bytes(gpu.vram_free),
            bytes(gpu.vram_total),
            gpu.driver.as_deref().unwrap_or("?"),
            gpu.cuda_version.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(out, "Disk: {} free of {}", bytes(hardware.disk_free), bytes(hardware.disk_total));
    let _ = writeln!(out, "Cache: {}", places.cache_dir.display());
    let _ = writeln!(out, "Data: {}", places.data_dir.display());
    let _ = writeln!(out, "Logs: {}", places.log_dir.display());
    // What the hub client will use: the settings' endpoint and token, else the environment's.
    let hub = crate::hub::HubConfig::from_settings(settings);
    let _ = writeln!(out, "Hub: {}", crate::logs::redact_url(&hub.endpoint));
    let _ = writeln!(out, "Hub token: {}", if hub.token.is_some() { "set" } else { "not set" });
    // The token is never serialised; the endpoint loses any credentials; the list of imports is only counted (it
    // can be long).
    let mut shown = serde_json::to_value(settings).unwrap_or_default();
    if let Some(map) = shown.as_object_mut() {
        map.remove("imports");
        map.insert("importCount".into(), settings.imports.len().into());
        if let Some(endpoint) = &settings.endpoint {
            map.insert("endpoint".into(), crate::logs::redact_url(endpoint).into());
        }
    }
    let _ = writeln!(out, "Settings: {}", serde_json::to_string_pretty(&shown).unwrap_or_default());
    let _ = writeln!(out, "\nThe last {LOG_LINES} log lines:");
    out.push_str(&crate::logs::tail(places.log_dir, LOG_LINES));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_machine_and_settings_but_never_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("model-manager.2026-12-01.log"), "INFO download: completed\n").unwrap();
        let settings = Settings {
            token: Some("hf_secretsecretsecret".into()),
            endpoint: Some("http://ada:pass@127.0.0.1:9/?token=hf_in_query".into()),
            ..Settings::default()
        };
        let hardware = crate::compat::hardware::probe(dir.path());
        let places = Places { cache_dir: &dir.path().join("hub"), data_dir: dir.path(), log_dir: &logs };
        let text = report("Model Manager 0.1.0", &hardware, &settings, &places);
        for secret in ["hf_secret", "pass", "hf_in_query"] {
            assert!(!text.contains(secret), "{secret} in:\n{text}");
        }
        for expected in
            ["Model Manager 0.1.0", "Hub token: set", "Hub: http://127.0.0.1:9/?…", "importCount", "completed"]
        {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        assert!(text.contains(&format!("OS: {}", hardware.os)));
    }
}
