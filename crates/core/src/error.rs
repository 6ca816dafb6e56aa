//! The closed set of error codes that every surface shows, and the one error shape on the wire.
//!
//! Each module has its own `thiserror` enum; each such enum maps every variant to an [`ErrorCode`] through
//! [`Coded`]. The UI branches on the code and shows the message; the CLI exits with [`ErrorCode::exit_status`].

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What kind of failure this is, stable across releases: the UI and scripts branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The network failed or a server answered with a transient error after all retries.
    Network,
    /// A token is missing or lacks access (gated or private repo).
    Auth,
    /// A repo, revision, file or model does not exist.
    NotFound,
    /// The disk does not have room for what would be written.
    InsufficientSpace,
    /// The operating system refused access to a file or folder.
    Permission,
    /// Downloaded or stored bytes do not match their expected hash or size.
    ChecksumMismatch,
    /// The request itself is malformed: a bad repo id, a hostile path, an unparsable file.
    InvalidInput,
    /// The user cancelled the operation.
    Cancelled,
    /// Another input/output failure, named in the message.
    Io,
    /// The thing is not in a state that allows this (pausing a finished download).
    Conflict,
    /// A bug: something that should not happen happened.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::Network,
        ErrorCode::Auth,
        ErrorCode::NotFound,
        ErrorCode::InsufficientSpace,
        ErrorCode::Permission,
        ErrorCode::ChecksumMismatch,
        ErrorCode::InvalidInput,
        ErrorCode::Cancelled,
        ErrorCode::Io,
        ErrorCode::Conflict,
        ErrorCode::Internal,
    ];

    /// The code as written on the wire and in CLI output, e.g. `not-found`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Network => "network",
            ErrorCode::Auth => "auth",
            ErrorCode::NotFound => "not-found",
            ErrorCode::InsufficientSpace => "insufficient-space",
            ErrorCode::Permission => "permission",
            ErrorCode::ChecksumMismatch => "checksum-mismatch",
            ErrorCode::InvalidInput => "invalid-input",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Io => "io",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Internal => "internal",
        }
    }

    /// The `mm` process exit status for this code; documented in the README and never renumbered.
    pub fn exit_status(self) -> i32 {
        match self {
            ErrorCode::Internal => 1,
            ErrorCode::InvalidInput => 2,
            ErrorCode::NotFound => 3,
            ErrorCode::Auth => 4,
            ErrorCode::Network => 5,
            ErrorCode::InsufficientSpace => 6,
            ErrorCode::Permission => 7,
            ErrorCode::ChecksumMismatch => 8,
            ErrorCode::Cancelled => 9,
            ErrorCode::Io => 10,
            ErrorCode::Conflict => 11,
        }
    }

    /// The code an operating-system error maps to.
    pub fn of_io(err: &std::io::Error) -> ErrorCode {
        match err.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => ErrorCode::Permission,
            std::io::ErrorKind::NotFound => ErrorCode::NotFound,
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => ErrorCode::InsufficientSpace,
            _ => ErrorCode::Io,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error shape that crosses to the UI and to `--json` output: a code to branch on, a message to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct ErrorPayload {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorPayload {
    /// An error with `code`, saying `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorPayload {
        ErrorPayload { code, message: message.into() }
    }
}

/// A module error that knows its [`ErrorCode`].
pub trait Coded: std::error::Error {
    fn code(&self) -> ErrorCode;

    fn payload(&self) -> ErrorPayload {
        ErrorPayload::new(self.code(), self.to_string())
    }
}

impl<E: Coded> From<&E> for ErrorPayload {
    fn from(err: &E) -> Self {
        err.payload()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_and_exit_statuses_are_distinct() {
        let mut statuses = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(statuses.insert(code.exit_status()), "exit status of {code} reused");
            assert_ne!(code.exit_status(), 0);
        }
    }

    #[test]
    fn payload_wire_format_is_code_and_message() {
        let payload = ErrorPayload::new(ErrorCode::NotFound, "gone");
        assert_eq!(serde_json::to_string(&payload).unwrap(), r#"{"code":"not-found","message":"gone"}"#);
    }

    #[test]
    fn io_errors_map_to_codes() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(ErrorCode::of_io(&denied), ErrorCode::Permission);
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(ErrorCode::of_io(&full), ErrorCode::InsufficientSpace);
    }
}
