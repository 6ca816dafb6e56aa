//! The Hugging Face hub cache on disk: where it is ([`location`]), how its folders are named ([`layout`]), and
//! what it holds ([`scan`]).
//!
//! The layout is the one `huggingface_hub` reads and writes, so both tools share the same files:
//!
//! ```text
//! models--{org}--{name}/
//!   refs/{revision}            the commit a branch or tag pointed to
//!   blobs/{hash}               file content, named by sha256 (LFS files) or git blob sha1
//!   blobs/{hash}.incomplete    a download in progress
//!   snapshots/{commit}/{path}  relative symlink to ../../blobs/{hash}
//! ```

pub mod layout;
pub mod location;
pub mod lock;
pub mod scan;
pub mod write;

pub use layout::{RepoId, RepoKind};
pub use location::hub_cache_dir;
pub use scan::{scan, scan_blocking, CacheError, CacheScan, CacheStatus, CachedFile, CachedRepo, CachedRevision};
