//! A loaded type's endpoint: every HTTP request to its port goes to the runtime serving the type when it arrives
//! (streamed both ways, so token streams stay streams). A request holds its runtime until its answer is sent, so
//! a runtime swapped out stops only after its last answer. While the first runtime of a type is still loading,
//! requests wait for it; with nothing to serve them, they get a 503 whose JSON names the problem.

use super::slot::{Backend, Slot};
use crate::listen::IdleBody;
use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// How long a request waits for a type's first runtime to finish loading.
const WAIT_FOR_LOAD: Duration = Duration::from_secs(300);
/// The largest request body rewritten for Ollama (its `model` field named).
const MAX_REWRITE: usize = 16 << 20;

/// Serves `slot`'s endpoint on `listener` until the slot is gone (its drop aborts this task), slow clients cut off
/// and connections capped as on every port of this app ([`crate::listen`]).
pub(super) async fn serve(listener: tokio::net::TcpListener, slot: std::sync::Weak<Slot>) {
    let client: Client<HttpConnector, ProxyBody> = Client::builder(TokioExecutor::new()).build_http();
    let service = hyper::service::service_fn(move |req| forward(slot.clone(), client.clone(), req));
    crate::listen::serve(
        listener,
        crate::listen::Limits::default(),
        tokio_util::sync::CancellationToken::new(),
        service,
    )
    .await;
}

fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// An OpenAI-style error answer.
fn refuse(status: StatusCode, message: String) -> Response<ProxyBody> {
    let body = serde_json::json!({"error": {"message": message, "type": "unavailable", "code": status.as_u16()}});
    let mut res = Response::new(full(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("a valid header"));
    res
}

async fn forward(
    slot: std::sync::Weak<Slot>,
    client: Client<HttpConnector, ProxyBody>,
    req: Request<IdleBody>,
) -> Result<Response<ProxyBody>, std::convert::Infallible> {
    // Programs of this machine only, as `mm serve` without a token: no page of another site (an `Origin` other than
    // this endpoint's own, as llama-server's web UI sends; a browser's cross-site marks), no rebound name.
    let headers = req.headers();
    let own_page = |origin: &hyper::header::HeaderValue| {
        let host = headers.get(hyper::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        origin.to_str().is_ok_and(|o| o.strip_prefix("http://") == Some(host))
    };
    if !crate::listen::is_loopback_host(headers)
        || headers.get(hyper::header::ORIGIN).is_some_and(|o| !own_page(o))
        || crate::listen::from_another_site(headers)
    {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "this endpoint answers programs of this machine by a loopback address, not web pages of other sites".into(),
        ));
    }
    let Some(slot) = slot.upgrade() else {
        return Ok(refuse(StatusCode::SERVICE_UNAVAILABLE, "this endpoint's model was unloaded".into()));
    };
    let counted = !matches!(req.uri().path(), "/health" | "/v1/health");
    if counted {
        slot.touch();
    }
    let Some(backend) = slot.wait_for_backend(WAIT_FOR_LOAD).await else {
        return Ok(refuse(StatusCode::SERVICE_UNAVAILABLE, slot.unavailable_reason()));
    };
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    parts.uri = match format!("{}{}", backend.base.trim_end_matches('/'), path).parse() {
        Ok(uri) => uri,
        Err(e) => return Ok(refuse(StatusCode::BAD_REQUEST, format!("the request path {path:?} is not valid: {e}"))),
    };
    parts.headers.remove(hyper::header::HOST);
    for hop in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"] {
        parts.headers.remove(hop);
    }
    let body = match &backend.ollama_name {
        // Ollama serves many models on one port: the request is for the one loaded here, whatever it names.
        Some(name) if json(&parts.headers) => match rename_model(body, name).await {
            Ok(bytes) => {
                parts.headers.remove(hyper::header::CONTENT_LENGTH);
                full(bytes)
            }
            Err(message) => return Ok(refuse(StatusCode::BAD_REQUEST, message)),
        },
        _ => body.boxed_unsync(),
    };
    let answer = match client.request(Request::from_parts(parts, body)).await {
        Ok(answer) => answer,
        Err(e) => {
            return Ok(refuse(
                StatusCode::BAD_GATEWAY,
                format!("the runtime serving {} did not answer: {e}", backend.id),
            ))
        }
    };
    if counted {
        slot.served();
    }
    let (mut parts, body) = answer.into_parts();
    // The runtime's own CORS answer (llama-server echoes any `Origin` and allows credentials) never leaves here.
    let cors: Vec<_> =
        parts.headers.keys().filter(|name| name.as_str().starts_with("access-control-")).cloned().collect();
    for name in cors {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, Held { body, _backend: backend }.boxed_unsync()))
}

fn json(headers: &hyper::HeaderMap) -> bool {
    headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"))
}

async fn rename_model(body: IdleBody, name: &str) -> Result<Bytes, String> {
    let limited = http_body_util::Limited::new(body, MAX_REWRITE);
    let bytes = limited.collect().await.map_err(|e| format!("the request body could not be read: {e}"))?.to_bytes();
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Ok(bytes) };
    match value.get_mut("model") {
        Some(model) => *model = serde_json::Value::String(name.to_string()),
        None => return Ok(bytes),
    }
    Ok(Bytes::from(value.to_string()))
}

/// An answer's body that keeps its runtime from being stopped until it is sent.
struct Held {
    body: Incoming,
    _backend: Arc<Backend>,
}

impl Body for Held {
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
