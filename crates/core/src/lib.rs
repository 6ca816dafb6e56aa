//! Model Manager's core: everything the app, `mm` and `mm serve` do, as plain Rust with no UI and no web framework.
//!
//! The Tauri shell (`src-tauri/`), the CLI (`crates/cli`) and the HTTP face (`crates/server`) are thin callers of
//! one facade, [`Manager`]; [`remote::Remote`] offers the same operations for another machine's `mm serve`, and
//! [`machine::Machine`] is either. Each module is one concept, and the import graph is a tree: [`model`] (the
//! domain types) and the foundations ([`error`], [`disk`], [`cache`], ...) at the bottom, [`settings`] above them,
//! each source ([`hub`], [`compat`], [`local`], [`ollama`], [`download`]), the [`library`] merging them,
//! [`activation`] and [`discover`], [`runtime`] (loading the active models), and [`manager`] on top. [`bindings`] declares the types that cross into the
//! web UI in TypeScript.

pub mod activation;
pub mod bindings;
pub mod cache;
pub mod compat;
pub mod diagnostics;
pub mod discover;
pub mod disk;
pub mod download;
pub mod error;
pub mod file_events;
pub mod format;
pub mod http;
pub mod hub;
pub mod library;
pub mod listen;
pub mod local;
pub mod logs;
pub mod machine;
pub mod manager;
pub mod model;
pub mod models_folder;
pub mod ollama;
pub mod operations;
pub mod paths;
pub mod proxy;
pub mod remote;
pub mod runtime;
pub mod secret;
pub mod settings;

pub use error::{ErrorCode, ErrorPayload};
pub use manager::{Manager, ManagerConfig, ServedModel};
pub use operations::Operations;
