//! TypeScript declarations of every type that crosses into the web UI, generated from the Rust types so that
//! nothing is written twice. `ui/src/lib/bindings.ts` is this output, checked in; the test `bindings` in this
//! crate fails when it is stale, and `UPDATE_BINDINGS=1` rewrites it.

use crate::activation::ActiveEntry;
use crate::cache::scan::{CacheStatus, CachedFile, CachedRepo, CachedRevision, IncompleteBlob, ScanProblem};
use crate::cache::{CacheScan, RepoKind};
use crate::compat::estimate::{CompatReport, FileCompat, Fit, KvCacheType, Requirements, Verdict};
use crate::compat::hardware::{CpuInfo, GpuInfo, HardwareInfo};
use crate::compat::local::ModelFit;
use crate::discover::{
    CatalogEntry, Quantisation, RepoDetails, RepoFile, SearchHit, SearchPage, SearchQuery, SearchSort, StarterCatalog,
};
use crate::download::url::UrlSource;
use crate::download::{
    DownloadEvent, DownloadPreview, DownloadProgress, DownloadRequest, DownloadState, LifecycleKind, ModelLifecycle,
    PreviewFile,
};
use crate::error::{ErrorCode, ErrorPayload};
use crate::library::delete::DeleteReport;
use crate::library::evict::{Eviction, Room};
use crate::library::relocate::MoveReport;
use crate::library::storage::{CleanReport, DetachedRevision, LooseFile, ModelUsage, StorageReport};
use crate::library::verify::{FileCheck, FileStatus, VerifyProgress, VerifyReport};
use crate::library::{
    LibraryModel, LibraryQuery, ModelDetails, ModelFormat, ModelSource, ModelStatus, ModelType, SortKey, TypeOrigin,
};
use crate::local::{ImportOptions, ImportOutcome, ImportPhase, ImportProgress, ImportStatus};
use crate::machine::MachineList;
use crate::manager::{FolderBytes, Statistics};
use crate::model::{Adapter, AdapterFormat, LinkedBy};
use crate::ollama::OllamaStatus;
use crate::operations::{
    Activate, AdapterLink, CancelRepo, CompatAsk, DeleteOptions, GetRuntime, Load, MoveTo, Pull, RepoCancelled,
    Revision, RuntimeRemoved, Runtimes, SearchAsk, Started, TypeChange, Unload, UseRuntime, VerifyOptions,
};
use crate::runtime::builds::{BuildOrigin, GetProgress, RuntimeBuild};
use crate::runtime::{LaunchPlan, LoadedModel, Measurement, MemoryUse, RuntimeChange, RuntimeKind, RuntimeState};
use crate::settings::load::{FlashAttention, LoadKind};
use crate::settings::{Kind, LoadSettingInfo, LoadSettings, MachineEntry, SettingInfo, SettingsPatch, SettingsView};
use ts_rs::{Config, TS};

/// The whole bindings file.
pub fn typescript() -> String {
    // Sizes and times are u64 in Rust; they stay far below 2^53, so TypeScript sees plain numbers.
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types in crates/core (src/bindings.rs). Do not edit by hand:\n\
         // `UPDATE_BINDINGS=1 cargo test -p mm-core --test bindings` rewrites it.\n",
    );
    macro_rules! declare {
        ($($ty:ty),* $(,)?) => {$(
            out.push('\n');
            if let Some(docs) = <$ty as TS>::docs() {
                out.push_str(&docs);
            }
            out.push_str("export ");
            out.push_str(&<$ty as TS>::decl(&cfg));
            out.push('\n');
        )*};
    }
    declare!(
        ErrorCode,
        ErrorPayload,
        RepoKind,
        CacheStatus,
        CacheScan,
        CachedRepo,
        CachedRevision,
        CachedFile,
        IncompleteBlob,
        ScanProblem,
        DownloadRequest,
        DownloadPreview,
        PreviewFile,
        DownloadState,
        DownloadProgress,
        LifecycleKind,
        ModelLifecycle,
        DownloadEvent,
        ModelType,
        TypeOrigin,
        ModelFormat,
        ModelSource,
        ModelStatus,
        LibraryModel,
        Adapter,
        AdapterFormat,
        LinkedBy,
        AdapterLink,
        ModelDetails,
        SortKey,
        LibraryQuery,
        DeleteReport,
        FileStatus,
        FileCheck,
        VerifyReport,
        VerifyProgress,
        StorageReport,
        ModelUsage,
        LooseFile,
        DetachedRevision,
        CleanReport,
        SettingsView,
        SettingsPatch,
        Kind,
        SettingInfo,
        LoadSettings,
        LoadKind,
        LoadSettingInfo,
        FlashAttention,
        KvCacheType,
        ActiveEntry,
        HardwareInfo,
        GpuInfo,
        CpuInfo,
        Requirements,
        Fit,
        Verdict,
        FileCompat,
        CompatReport,
        ModelFit,
        SearchSort,
        SearchQuery,
        SearchHit,
        SearchPage,
        RepoFile,
        Quantisation,
        RepoDetails,
        CatalogEntry,
        StarterCatalog,
        UrlSource,
        ImportOptions,
        ImportStatus,
        ImportOutcome,
        ImportPhase,
        ImportProgress,
        OllamaStatus,
        MachineEntry,
        MachineList,
        RuntimeKind,
        RuntimeState,
        MemoryUse,
        Measurement,
        LaunchPlan,
        LoadedModel,
        RuntimeChange,
        DeleteOptions,
        TypeChange,
        VerifyOptions,
        Started,
        CancelRepo,
        RepoCancelled,
        Activate,
        Load,
        Unload,
        CompatAsk,
        SearchAsk,
        Revision,
        Pull,
        MoveReport,
        MoveTo,
        Statistics,
        FolderBytes,
        Eviction,
        Room,
        RuntimeBuild,
        BuildOrigin,
        GetProgress,
        Runtimes,
        GetRuntime,
        UseRuntime,
        RuntimeRemoved,
    );
    // The operations' names, which the window's one `operation` command takes.
    out.push_str(
        "\n/** The operations of the table (`crates/core/src/operations.rs`), by name. */\nexport type OperationName =",
    );
    for op in crate::operations::OPERATIONS {
        out.push_str(&format!("\n  | '{}'", op.name));
    }
    out.push_str(";\n");
    // The settings table itself, so the window checks the same bounds and shows the same help.
    out.push_str(
        "\n/** Every setting: its kind and bounds, default, whether the API may change it, label and help. */\n",
    );
    out.push_str("export const SETTINGS: SettingInfo[] = ");
    out.push_str(&serde_json::to_string_pretty(&crate::settings::table()).expect("the table serialises"));
    out.push_str(";\n");
    out.push_str("\n/** Every load setting of a model: its kind and bounds, llama-server flag, label and help. */\n");
    out.push_str("export const LOAD_SETTINGS: LoadSettingInfo[] = ");
    out.push_str(&serde_json::to_string_pretty(&crate::settings::load_table()).expect("the table serialises"));
    out.push_str(";\n");
    out
}
