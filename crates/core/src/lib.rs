//! Model Manager's core: everything the app and the `mm` command line do, as plain Rust with no UI.
//!
//! The Tauri shell (`src-tauri/`) and the CLI (`crates/cli`) are thin callers of this crate. Each module is one
//! concept: [`cache`] is the Hugging Face cache on disk, [`error`] the error codes every surface shows, and
//! [`bindings`] the TypeScript declarations of the types that cross into the web UI.

pub mod activation;
pub mod bindings;
pub mod cache;
pub mod compat;
pub mod diagnostics;
pub mod discover;
pub mod disk;
pub mod download;
pub mod error;
pub mod format;
pub mod http;
pub mod hub;
pub mod library;
pub mod local;
pub mod logs;
pub mod machine;
pub mod manager;
pub mod model;
pub mod ollama;
pub mod paths;
pub mod remote;
pub mod secret;
pub mod settings;

pub use error::{ErrorCode, ErrorPayload};
pub use manager::{Manager, ManagerConfig};
