//! One module per `mm` command.

pub mod activation;
pub mod cancel;
pub mod compat;
pub mod config;
pub mod discover;
pub mod download;
pub mod library;
pub mod list;
pub mod load_settings;
pub mod machines;
pub mod runtime;
pub mod runtimes;
pub mod serve;
pub mod sources;
