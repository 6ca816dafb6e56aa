//! The core's one error shape as an HTTP answer: the same `{code, message}` body, its stable code mapped to a
//! status a program can branch on before reading the body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mm_core::{ErrorCode, ErrorPayload};

/// An error answer: the payload, under the status of its code.
#[derive(Debug)]
pub struct ApiError(pub ErrorPayload);

impl From<ErrorPayload> for ApiError {
    fn from(payload: ErrorPayload) -> ApiError {
        ApiError(payload)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError(ErrorPayload::new(code, message))
    }
}

/// The HTTP status of each code. `auth` is the hub refusing (403: this server knew the caller, the hub did not
/// take the token); a caller this server does not know gets 401 from the token check, before any handler.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::Auth => StatusCode::FORBIDDEN,
        ErrorCode::Permission => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict | ErrorCode::Cancelled => StatusCode::CONFLICT,
        ErrorCode::Network | ErrorCode::ChecksumMismatch => StatusCode::BAD_GATEWAY,
        ErrorCode::InsufficientSpace => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::Io | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.code == ErrorCode::Internal {
            tracing::error!(message = %self.0.message, "internal error");
        }
        (status_of(self.0.code), Json(self.0)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_an_error_status() {
        for code in ErrorCode::ALL {
            let status = status_of(code);
            assert!(status.is_client_error() || status.is_server_error(), "{code} -> {status}");
        }
        assert_eq!(status_of(ErrorCode::InsufficientSpace).as_u16(), 507);
        assert_eq!(status_of(ErrorCode::Conflict).as_u16(), 409);
    }
}
