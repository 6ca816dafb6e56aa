//! "Will it run here?": the machine's memory ([`hardware`]), a model's needs read from its own headers
//! ([`safetensors`], [`gguf`], `config.json`), and a verdict people understand ([`estimate`]), before a download
//! (ranged reads from the hub, [`remote`]) and after it (the files on disk, [`local`]); and, once a model was
//! loaded, what it really took beside the estimate ([`measured`]).

pub mod estimate;
pub mod gguf;
pub mod hardware;
pub mod local;
pub mod measured;
pub mod peft;
pub mod remote;
pub mod safetensors;

pub use estimate::{CompatReport, FileCompat, Fit, Requirements, Verdict};
pub use hardware::HardwareInfo;

use crate::error::{Coded, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    #[error("not a valid {format} file: {reason}")]
    Invalid { format: &'static str, reason: String },
    /// The header goes on past the bytes read so far; read at least this many from the start.
    #[error("the header needs at least {at_least} bytes")]
    NeedMore { at_least: u64 },
    #[error("{0} has no weights this app can read (safetensors or GGUF)")]
    NoWeights(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    #[error(transparent)]
    InvalidRepoId(#[from] crate::cache::layout::InvalidRepoId),
    #[error(transparent)]
    Ollama(#[from] crate::ollama::OllamaError),
    /// An Ollama model whose file the server names but this machine cannot read.
    #[error("{id} runs from {path}, which is not readable from here: Ollama may be on another machine")]
    OllamaFile { id: String, path: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl CompatError {
    pub(crate) fn invalid(format: &'static str, reason: impl Into<String>) -> CompatError {
        CompatError::Invalid { format, reason: reason.into() }
    }
}

impl Coded for CompatError {
    fn code(&self) -> ErrorCode {
        match self {
            CompatError::Invalid { .. }
            | CompatError::NeedMore { .. }
            | CompatError::NoWeights(_)
            | CompatError::InvalidRepoId(_) => ErrorCode::InvalidInput,
            CompatError::NotFound(_) => ErrorCode::NotFound,
            CompatError::Hub(e) => e.code(),
            CompatError::Ollama(e) => e.code(),
            CompatError::OllamaFile { .. } => ErrorCode::Permission,
            CompatError::Io { source, .. } => ErrorCode::of_io(source),
        }
    }
}
