//! `mm system` and `mm compat`: the machine, and whether a model (on the hub, on disk, or a file) will run on it.

use crate::output;
use crate::table::Table;
use mm_core::compat::{CompatReport, Fit};
use mm_core::format::bytes;
use mm_core::operations::CompatAsk;
use mm_core::{ErrorPayload, Operations};
use std::path::Path;

#[derive(clap::Args)]
pub struct SystemArgs {
    /// Print the report for a bug report instead (versions, this machine, folders, the settings without the token,
    /// the end of the app's log): what the app's "Copy diagnostics" copies.
    #[arg(long)]
    diagnostics: bool,
}

pub async fn system(args: SystemArgs, json: bool) -> Result<(), ErrorPayload> {
    if args.diagnostics {
        let manager = crate::context::load()?;
        let report = manager.diagnostics(concat!("mm ", env!("CARGO_PKG_VERSION"))).await?;
        match json {
            true => output::json(&serde_json::json!({ "diagnostics": report })),
            false => say!("{report}"),
        }
        return Ok(());
    }
    let machine = crate::context::machine()?;
    let hw = machine.system().await?;
    if json {
        output::json(&hw);
        return Ok(());
    }
    say!(
        "CPU      {} ({} cores, {} threads){}",
        hw.cpu.brand,
        hw.cpu.physical_cores,
        hw.cpu.threads,
        if hw.cpu.features.is_empty() { String::new() } else { format!("; {}", hw.cpu.features.join(" ")) }
    );
    say!("RAM      {} available of {}", bytes(hw.ram_available), bytes(hw.ram_total));
    if hw.gpus.is_empty() {
        say!("GPU      none{}", hw.nvidia_note.as_deref().map(|n| format!(" (NVIDIA: {n})")).unwrap_or_default());
    }
    for g in &hw.gpus {
        let extra: Vec<String> = [
            g.driver.as_ref().map(|d| format!("driver {d}")),
            g.cuda_version.as_ref().map(|c| format!("CUDA {c}")),
            g.compute_capability.as_ref().map(|c| format!("compute {c}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        say!(
            "GPU      {}: {} free of {}{}",
            g.label(),
            bytes(g.vram_free),
            bytes(g.vram_total),
            if extra.is_empty() { String::new() } else { format!(" ({})", extra.join(", ")) }
        );
    }
    say!("OS       {}", hw.os);
    say!("Disk     {} free of {} ({})", bytes(hw.disk_free), bytes(hw.disk_total), machine.place());
    Ok(())
}

#[derive(clap::Args)]
pub struct CompatArgs {
    /// A hub repo (org/name or URL), a model of the library (ollama/NAME too), a model folder, or a
    /// .gguf/.safetensors file.
    target: String,
    /// The hub revision (for a repo).
    #[arg(long, short)]
    revision: Option<String>,
    /// The context length to estimate for (default: the model's, capped at 8192).
    #[arg(long)]
    context: Option<u64>,
}

pub async fn compat(args: CompatArgs, json: bool) -> Result<(), ErrorPayload> {
    let machine = crate::context::machine()?;
    // A file or folder here is assessed as such, whatever the current folder (on another machine, paths are its).
    let path = Path::new(&args.target);
    let target = match path.exists() && machine.is_this_machine() {
        true => std::path::absolute(path).unwrap_or(path.to_path_buf()).display().to_string(),
        false => args.target.clone(),
    };
    let report = machine
        .compat(CompatAsk { target, revision: args.revision.clone(), context: args.context, load_settings: None })
        .await?;
    let hw = machine.system().await?;
    if json {
        output::json(&serde_json::json!({ "report": report, "hardware": hw }));
    } else {
        print!("{}", crate::output::clean(&render(&report)));
    }
    Ok(())
}

fn fit(f: Fit) -> &'static str {
    match f {
        Fit::FitsGpu => "fits GPU",
        Fit::PartialOffload => "partial offload",
        Fit::CpuOnly => "CPU only",
        Fit::TooLarge => "too large",
        Fit::InsufficientDisk => "no disk space",
    }
}

fn render(report: &CompatReport) -> String {
    let mut out = format!("{}\n", report.model);
    let mut table = Table::new(&["FILE", "PARAMS>", "PRECISION", "WEIGHTS>", "KV CACHE>", "NEEDS>", "NOW", "AT BEST"]);
    for e in &report.entries {
        let r = &e.requirements;
        table.row(vec![
            e.file.clone().unwrap_or_else(|| "(all weights)".into()),
            mm_core::format::params(r.parameters),
            r.precision.clone().unwrap_or_else(|| "-".into()),
            bytes(r.weights_bytes),
            format!("{} @{}", bytes(r.kv_cache_bytes), r.context),
            bytes(r.total_bytes),
            fit(e.now.fit).into(),
            fit(e.best.fit).into(),
        ]);
    }
    out.push_str(&table.render());
    if let Some(first) = report.entries.first() {
        out.push_str(&format!("\n{}\n", first.now.summary));
    }
    if report.download_bytes > 0 {
        out.push_str(&format!(
            "Download: {} ({} free on disk)\n",
            bytes(report.download_bytes),
            bytes(report.disk_free)
        ));
    }
    out
}
