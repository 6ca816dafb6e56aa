//! Tauri commands, one file per area. Commands are generic over the runtime so that tests can drive them
//! through Tauri's mock runtime without a window.

pub mod activation;
pub mod app;
pub mod compat;
pub mod discover;
pub mod downloads;
pub mod library;
pub mod models;
pub mod settings;
pub mod sources;

#[cfg(test)]
pub(crate) mod test_support;
