//! A type's own endpoint (what `active.json` names, kept from before every model was served by name): an alias
//! onto the model the type serves now. Every HTTP request to its port takes a [`Lease`] on that model (loading
//! it when it is not loaded, as `/v1` on `mm serve` does) and goes to its runtime, streamed both ways, so token
//! streams stay streams. The lease lives until the answer is sent, so a model swapped out or unloaded stops only
//! after its last answer. With nothing to serve a request, it gets a 503 whose JSON names the problem.

use super::process::Lease;
use super::upstream::{self, full, ProxyBody};
use crate::listen::IdleBody;
use crate::model::ModelType;
use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode};
use std::pin::Pin;
use std::sync::Arc;

/// The largest request body rewritten for Ollama (its `model` field named).
const MAX_REWRITE: usize = 16 << 20;

/// Where an endpoint gets its holds: the host.
pub(super) trait Leases: Send + Sync + 'static {
    /// A hold on the model `model_type` serves now, loaded first when it is not (`load`; else only if it is
    /// ready); else why not.
    fn lease(
        &self,
        model_type: ModelType,
        load: bool,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Lease, String>> + Send>>;
}

/// A type's endpoint: its address, and the task serving it (stopped when it is dropped).
pub(super) struct Alias {
    pub(super) endpoint: String,
    /// The model it serves.
    pub(super) serving: std::sync::Mutex<super::Target>,
    task: tokio::task::JoinHandle<()>,
}

impl Alias {
    /// Serves `model_type`'s endpoint on `listener`, slow clients cut off and connections capped as on every port
    /// of this app ([`crate::listen`]).
    pub(super) fn open(
        listener: tokio::net::TcpListener,
        model_type: ModelType,
        serving: super::Target,
        leases: Arc<dyn Leases>,
    ) -> std::io::Result<Alias> {
        let port = listener.local_addr()?.port();
        let service = hyper::service::service_fn(move |req| forward(model_type, leases.clone(), req));
        let task = tokio::spawn(crate::listen::serve(
            listener,
            crate::listen::Limits::default(),
            tokio_util::sync::CancellationToken::new(),
            service,
        ));
        Ok(Alias { endpoint: format!("http://127.0.0.1:{port}/v1"), serving: std::sync::Mutex::new(serving), task })
    }

    pub(super) fn serving(&self) -> super::Target {
        self.serving.lock().expect("alias").clone()
    }
}

impl Drop for Alias {
    fn drop(&mut self) {
        self.task.abort();
    }
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
    model_type: ModelType,
    leases: Arc<dyn Leases>,
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
    // A health check (a monitor's poll) says how the model is, and never loads it.
    let load = !matches!(req.uri().path(), "/health" | "/v1/health");
    let lease = match leases.lease(model_type, load).await {
        Ok(lease) => lease,
        Err(why) => return Ok(refuse(StatusCode::SERVICE_UNAVAILABLE, why)),
    };
    let backend = lease.backend.clone();
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    parts.uri = match format!("{}{}", backend.base.trim_end_matches('/'), path).parse() {
        Ok(uri) => uri,
        Err(e) => return Ok(refuse(StatusCode::BAD_REQUEST, format!("the request path {path:?} is not valid: {e}"))),
    };
    upstream::for_runtime(&mut parts.headers, backend.api_key.as_deref());
    // Ollama's name for it, and a base's adapters all at scale 0 (the type serves the base itself).
    let lora = upstream::scales(&backend.adapters, None);
    let rewrite = backend.ollama_name.is_some() || lora.is_some();
    let body = match rewrite && json(&parts.headers) {
        true => match http_body_util::Limited::new(body, MAX_REWRITE).collect().await {
            Ok(bytes) => {
                parts.headers.remove(hyper::header::CONTENT_LENGTH);
                let bytes = bytes.to_bytes();
                let bytes = match &backend.ollama_name {
                    Some(name) => upstream::name_model(bytes, name),
                    None => bytes,
                };
                full(match &lora {
                    Some(lora) => upstream::with_lora(bytes, lora),
                    None => bytes,
                })
            }
            Err(e) => return Ok(refuse(StatusCode::BAD_REQUEST, format!("the request body could not be read: {e}"))),
        },
        false => body.boxed_unsync(),
    };
    match upstream::client().request(Request::from_parts(parts, body)).await {
        Ok(answer) => Ok(upstream::pass_back(answer, lease)),
        Err(e) => {
            Ok(refuse(StatusCode::BAD_GATEWAY, format!("the runtime serving {} did not answer: {e}", backend.id)))
        }
    }
}

fn json(headers: &hyper::HeaderMap) -> bool {
    headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"))
}
