//! The Hugging Face Hub over HTTP: configuration from the environment ([`config`]), repo metadata and file
//! lists ([`client`]), and the hub's errors told apart ([`error`]).
//!
//! The token is only ever sent to the endpoint's own origin: redirects are followed by hand, and a request to
//! any other host (the CDN a large file redirects to) goes without it.

pub mod client;
pub mod config;
pub mod error;
pub mod retry;

pub use reference::parse_repo_reference;
mod reference;

pub use client::{GitRef, GitRefs, HubClient, RangeBody, RemoteFile, RepoInfo};
pub use config::HubConfig;
pub use error::HubError;
pub use retry::RetryPolicy;
