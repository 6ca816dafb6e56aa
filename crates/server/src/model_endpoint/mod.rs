//! The one model endpoint: every model of this machine by name, loaded on demand, on the same port and under the
//! same token and origin rules as `/mm/v1`, in the wire formats clients already speak:
//!
//! - **OpenAI's** under `/v1`: `GET /v1/models`, and any `POST /v1/...` (chat, completions, embeddings, rerank,
//!   Anthropic's messages: whatever llama-server serves) routed by the body's `model` and streamed through.
//! - **Ollama's** under `/api`: tags, show, ps, chat, generate, embed, version (translated to and from the
//!   runtime's OpenAI API by [`ollama_wire`]). The Hub mirror's `/api/models/...` does not collide.
//!
//! Other machines' models are served beside this one's under `/v1` as `NAME/ID` ([`peers`]).
//!
//! Errors come in each format's own shape, so that clients raise their usual exceptions: OpenAI's
//! `{"error": {"message", "type", "code"}}`, Ollama's `{"error": "..."}`.

mod ollama;
pub(crate) mod ollama_wire;
mod openai;
mod peers;

pub(crate) use peers::Peers;

use crate::Served;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mm_core::{ErrorCode, ErrorPayload};

/// Request bodies of the model endpoint: prompts, images, long contexts.
pub const MAX_BODY_BYTES: usize = 64 << 20;
/// A runtime's whole answer read at once (translated, or an error's): embeddings of a large input at most.
pub(crate) const MAX_ANSWER_BYTES: usize = 256 << 20;

/// The routes of both formats.
pub(crate) fn routes(served: Served) -> Router {
    Router::new()
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{*id}", get(openai::model))
        .route("/v1/{*path}", post(openai::pass_on))
        .route("/api/version", get(ollama::version))
        .route("/api/tags", get(ollama::tags))
        .route("/api/ps", get(ollama::ps))
        .route("/api/show", post(ollama::show))
        .route("/api/chat", post(ollama::chat))
        .route("/api/generate", post(ollama::generate))
        .route("/api/embed", post(ollama::embed))
        .route("/api/embeddings", post(ollama::embeddings))
        .with_state(served)
}

/// A runtime's whole answer, up to [`MAX_ANSWER_BYTES`].
pub(crate) async fn whole(mut body: mm_core::runtime::upstream::ProxyBody) -> Result<axum::body::Bytes, String> {
    use http_body_util::BodyExt;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_ANSWER_BYTES {
                return Err(format!("the runtime's answer is over {} MiB", MAX_ANSWER_BYTES >> 20));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.into())
}

/// Which wire format a path speaks, for its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    OpenAi,
    Ollama,
}

impl Wire {
    /// The model endpoint's format of `path`, if it is one of its paths.
    pub(crate) fn of(path: &str) -> Option<Wire> {
        if path == "/v1" || path.starts_with("/v1/") {
            return Some(Wire::OpenAi);
        }
        let ollama = ["/api/version", "/api/tags", "/api/ps", "/api/show", "/api/chat", "/api/generate", "/api/embed"];
        ollama.iter().any(|p| path == *p || path == "/api/embeddings").then_some(Wire::Ollama)
    }

    /// An error in this format's shape.
    pub(crate) fn error(self, status: StatusCode, message: impl Into<String>) -> Response {
        let message = message.into();
        let body = match self {
            Wire::OpenAi => {
                let kind = match status.as_u16() {
                    400 | 404 | 413 | 422 => "invalid_request_error",
                    401 => "authentication_error",
                    403 => "permission_error",
                    _ => "server_error",
                };
                let code = match status.as_u16() {
                    404 => serde_json::json!("model_not_found"),
                    _ => serde_json::Value::Null,
                };
                serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            }
            Wire::Ollama => serde_json::json!({"error": message}),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // The reason is the answer: the official clients' own retries would only ask for the same load again.
            response.headers_mut().insert("x-should-retry", axum::http::HeaderValue::from_static("false"));
        }
        response
    }

    /// An error to answer in this format.
    pub(crate) fn fail(self, status: StatusCode, message: impl Into<String>) -> WireError {
        WireError { wire: self, status, message: message.into() }
    }

    /// The core's error as this format's.
    pub(crate) fn payload(self, e: &ErrorPayload) -> WireError {
        let status = match e.code {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::Auth | ErrorCode::Permission => StatusCode::FORBIDDEN,
            // A model that cannot load now, or whose runtime failed: the service is what is unavailable.
            ErrorCode::InsufficientSpace
            | ErrorCode::Network
            | ErrorCode::Io
            | ErrorCode::Cancelled
            | ErrorCode::Conflict
            | ErrorCode::ChecksumMismatch => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        self.fail(status, e.message.clone())
    }
}

/// An error of the model endpoint, answered in its format's shape.
#[derive(Debug)]
pub(crate) struct WireError {
    wire: Wire,
    status: StatusCode,
    message: String,
}

impl IntoResponse for WireError {
    fn into_response(self) -> Response {
        self.wire.error(self.status, self.message)
    }
}

/// The request's `model`: 400 when it is missing or not a string.
pub(crate) fn model_of(body: &serde_json::Value, wire: Wire) -> Result<String, WireError> {
    match body.get("model") {
        Some(serde_json::Value::String(m)) if !m.trim().is_empty() => Ok(m.trim().to_string()),
        Some(serde_json::Value::String(_) | serde_json::Value::Null) | None => Err(wire.fail(
            StatusCode::BAD_REQUEST,
            "the request names no model: give \"model\" (GET /v1/models lists the names)",
        )),
        Some(_) => Err(wire.fail(StatusCode::BAD_REQUEST, "\"model\" must be a string (a model's name)")),
    }
}

/// A JSON body: 400 naming what is wrong with it.
pub(crate) fn json_of(bytes: &[u8], wire: Wire) -> Result<serde_json::Value, WireError> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(wire.fail(StatusCode::BAD_REQUEST, "the request body must be a JSON object")),
        Err(e) => Err(wire.fail(StatusCode::BAD_REQUEST, format!("the request body is not JSON: {e}"))),
    }
}

/// Ollama's `keep_alive`: seconds (a number), or a duration (`"5m"`, `"1h30m"`, `"-1"`); negative keeps it.
pub(crate) fn keep_alive_of(body: &serde_json::Value) -> Result<Option<i64>, String> {
    let bad = |v: &serde_json::Value| format!("keep_alive {v} is not a duration (e.g. 300, \"5m\", \"-1\")");
    match body.get("keep_alive") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            n.as_f64().map(|s| Some(s as i64)).ok_or_else(|| bad(&body["keep_alive"]))
        }
        Some(serde_json::Value::String(s)) => duration(s).map(Some).ok_or_else(|| bad(&body["keep_alive"])),
        Some(other) => Err(bad(other)),
    }
}

/// Go's duration text (`300ms`, `5m`, `1h30m`, `-1s`), or plain seconds, in whole seconds.
fn duration(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Some(seconds as i64);
    }
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    let seconds = total.ceil() as i64;
    Some(if negative { -seconds.max(1) } else { seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_reads_seconds_and_go_durations() {
        let k = |v: serde_json::Value| keep_alive_of(&serde_json::json!({ "keep_alive": v }));
        assert_eq!(k(serde_json::json!(300)), Ok(Some(300)));
        assert_eq!(k(serde_json::json!("5m")), Ok(Some(300)));
        assert_eq!(k(serde_json::json!("1h30m")), Ok(Some(5400)));
        assert_eq!(k(serde_json::json!("-1")), Ok(Some(-1)));
        assert_eq!(k(serde_json::json!("-1m")), Ok(Some(-60)));
        assert_eq!(k(serde_json::json!(0)), Ok(Some(0)));
        assert_eq!(k(serde_json::json!("500ms")), Ok(Some(1)));
        assert!(k(serde_json::json!("soon")).is_err());
        assert_eq!(keep_alive_of(&serde_json::json!({})), Ok(None));
    }

    #[test]
    fn errors_come_in_each_format_s_shape() {
        assert_eq!(Wire::of("/v1/chat/completions"), Some(Wire::OpenAi));
        assert_eq!(Wire::of("/api/chat"), Some(Wire::Ollama));
        assert_eq!(Wire::of("/api/models/org/name"), None, "the Hub mirror's");
        assert_eq!(Wire::of("/mm/v1/models"), None);
    }
}
