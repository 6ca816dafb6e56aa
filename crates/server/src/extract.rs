//! axum's extractors, answering a body, query or path that does not parse in the API's own error shape
//! (`400 invalid-input` with a message), as every other error.

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use mm_core::ErrorCode;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(err: JsonRejection) -> ApiError {
        if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            let message = format!("the request body is larger than {} bytes", crate::MAX_BODY_BYTES);
            return ApiError::new(ErrorCode::InvalidInput, message);
        }
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("the request body is not what this endpoint takes: {}", err.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(err: QueryRejection) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("the query is not what this endpoint takes: {}", err.body_text()),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(err: PathRejection) -> ApiError {
        ApiError::new(ErrorCode::InvalidInput, format!("the path is not what this endpoint takes: {}", err.body_text()))
    }
}
