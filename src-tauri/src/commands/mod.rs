//! Tauri commands, one file per area. Commands are generic over the runtime so that tests can drive them
//! through Tauri's mock runtime without a window.

pub mod app;
pub mod discover;
pub mod library;
pub mod machines;
pub mod models;
pub mod operations;
pub mod settings;
pub mod sources;

#[cfg(test)]
pub(crate) mod test_support;

/// Opens `folder` in the desktop's file manager.
pub(crate) fn open_in_file_manager(folder: &std::path::Path) -> Result<(), mm_core::ErrorPayload> {
    std::process::Command::new("xdg-open").arg(folder).spawn().map(|_| ()).map_err(|e| {
        mm_core::ErrorPayload::new(
            mm_core::ErrorCode::of_io(&e),
            format!("cannot open {}: {e} (is xdg-open installed?)", folder.display()),
        )
    })
}
