//! Requests to a model's runtime, for the faces that pass them on (a type's endpoint, and the model endpoint of
//! `mm serve`): one pooled HTTP/1 client, answers streamed back with their hold on the model kept until the last
//! byte is sent, and the runtime's own CORS headers dropped.

use super::client::ModelHold;
use crate::error::{ErrorCode, ErrorPayload};
use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A body passed on: a request's, or a runtime's answer.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The one client every request to a runtime goes through (its connections kept for the next request).
pub(super) fn client() -> &'static Client<HttpConnector, ProxyBody> {
    static CLIENT: OnceLock<Client<HttpConnector, ProxyBody>> = OnceLock::new();
    CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http())
}

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// Headers of a request that are the connection's, not the request's; and the runtime's key in place of any
/// the client sent.
pub(super) fn for_runtime(headers: &mut HeaderMap, key: Option<&str>) {
    headers.remove(hyper::header::HOST);
    for hop in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"] {
        headers.remove(hop);
    }
    headers.remove(hyper::header::AUTHORIZATION);
    if let Some(value) = key.and_then(|k| hyper::header::HeaderValue::from_str(&format!("Bearer {k}")).ok()) {
        headers.insert(hyper::header::AUTHORIZATION, value);
    }
}

/// The headers of a client's request that its runtime reads: the body's type, what it accepts, who asks, and
/// Anthropic's version marks; never its credentials (the server's token), cookies or anything else.
fn passed_on(headers: &HeaderMap) -> HeaderMap {
    let kept = |name: &hyper::header::HeaderName| {
        matches!(name.as_str(), "content-type" | "accept" | "user-agent") || name.as_str().starts_with("anthropic-")
    };
    headers.iter().filter(|(name, _)| kept(name)).map(|(n, v)| (n.clone(), v.clone())).collect()
}

/// A runtime's answer, its CORS headers (llama-server echoes any `Origin` and allows credentials) dropped and its
/// body holding `hold` until it is sent.
pub(super) fn pass_back<H: Send + Unpin + 'static>(answer: Response<Incoming>, hold: H) -> Response<ProxyBody> {
    let (mut parts, body) = answer.into_parts();
    let cors: Vec<_> =
        parts.headers.keys().filter(|name| name.as_str().starts_with("access-control-")).cloned().collect();
    for name in cors {
        parts.headers.remove(name);
    }
    Response::from_parts(parts, Held { body, _hold: hold }.boxed_unsync())
}

/// A JSON request body with its `model` set to `name` (Ollama serves many models on one port: a request is for
/// the one held, whatever it named); a body that is not a JSON object goes as it is.
pub(super) fn name_model(bytes: Bytes, name: &str) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return bytes };
    match value.as_object_mut() {
        Some(object) => {
            object.insert("model".into(), serde_json::Value::String(name.to_string()));
            Bytes::from(value.to_string())
        }
        None => bytes,
    }
}

/// The `lora` field of a request to a runtime loaded with `adapters`: `chosen` at scale 1, the others at 0 (none
/// without adapters). Every request says every scale: llama-server applies an adapter it loaded unless told not to.
pub(super) fn scales(adapters: &[String], chosen: Option<&str>) -> Option<serde_json::Value> {
    (!adapters.is_empty()).then(|| {
        let scale = |id: &String| if Some(id.as_str()) == chosen { 1.0 } else { 0.0 };
        adapters.iter().enumerate().map(|(i, id)| serde_json::json!({"id": i, "scale": scale(id)})).collect()
    })
}

/// The body with the adapters' scales in its `lora` field, unless it has one (a client's own scales win). The body
/// is only read through (never built into a tree) and the field put first.
pub(super) fn with_lora(bytes: Bytes, lora: &serde_json::Value) -> Bytes {
    #[derive(serde::Deserialize)]
    struct Fields {
        #[serde(default)]
        lora: Option<serde::de::IgnoredAny>,
    }
    let Ok(Fields { lora: None }) = serde_json::from_slice::<Fields>(&bytes) else { return bytes };
    let Some(open) = bytes.iter().position(|b| *b == b'{') else { return bytes };
    let empty = bytes[open + 1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(bytes.len() + 64);
    out.extend_from_slice(&bytes[..=open]);
    out.extend_from_slice(format!("\"lora\":{lora}").as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&bytes[open + 1..]);
    Bytes::from(out)
}

/// Sends one request to the runtime of the model `hold` holds: `path` (with its query) on the runtime, `body` as
/// it came (JSON). The answer streams back as the runtime sends it, holding the model until it is sent.
pub async fn send(
    hold: ModelHold,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response<ProxyBody>, ErrorPayload> {
    let acquired = &hold.acquired;
    let body = match &acquired.ollama_name {
        Some(name) => name_model(body, name),
        None => body,
    };
    let body = match scales(&acquired.adapters, hold.adapter.as_deref()) {
        Some(lora) => with_lora(body, &lora),
        None => body,
    };
    let mut headers = passed_on(&headers);
    for_runtime(&mut headers, acquired.api_key.as_deref());
    let uri = format!("{}{path}", acquired.base.trim_end_matches('/'));
    let mut request = Request::builder().method(method).uri(&uri);
    if let Some(h) = request.headers_mut() {
        *h = headers;
    }
    let request = request
        .body(full(body))
        .map_err(|e| ErrorPayload::new(ErrorCode::InvalidInput, format!("the request for {uri} is not valid: {e}")))?;
    let answer = client().request(request).await.map_err(|e| {
        ErrorPayload::new(ErrorCode::Network, format!("the runtime serving {} did not answer: {e}", acquired.loaded.id))
    })?;
    Ok(pass_back(answer, hold))
}

/// An answer's body that holds its model until it is sent.
struct Held<H> {
    body: Incoming,
    _hold: H,
}

impl<H: Unpin> Body for Held<H> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx).map_err(BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scales_go_first_unless_the_request_has_its_own() {
        let lora = serde_json::json!([{"id": 0, "scale": 1.0}]);
        let put = |body: &str| String::from_utf8(with_lora(Bytes::from(body.to_string()), &lora).to_vec()).unwrap();
        let out: serde_json::Value = serde_json::from_str(&put(r#" {"model": "m", "prompt": "hi"}"#)).unwrap();
        assert_eq!((out["lora"][0]["scale"].as_f64(), out["prompt"].as_str()), (Some(1.0), Some("hi")));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&put("{ }")).unwrap()["lora"], lora);
        let own = r#"{"lora": [], "model": "m"}"#;
        assert_eq!(put(own), own, "the request's own");
        assert_eq!(put("[1, 2]"), "[1, 2]", "not an object: as it came");
    }
}
