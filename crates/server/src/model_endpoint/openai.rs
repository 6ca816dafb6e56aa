//! OpenAI's API under `/v1`: the models by name, and every `POST` passed to the runtime of the model it names.

use super::{json_of, keep_alive_of, model_of, Wire};
use crate::Served;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use mm_core::runtime::upstream::{self, ProxyBody};
use mm_core::{ErrorPayload, ServedModel};
use std::time::Duration;

/// How long a streamed request waits silently for its model before the answer starts with a heartbeat.
const QUIET_WAIT: Duration = Duration::from_secs(1);
/// How often a streamed request waiting for its model to load hears that it is loading.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A model as OpenAI's list has it, and what this app adds (written straight to the answer: no tree of values).
#[derive(serde::Serialize)]
struct Entry<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
    #[serde(rename = "type")]
    model_type: mm_core::model::ModelType,
    runtime: mm_core::runtime::RuntimeKind,
    loaded: bool,
    state: Option<mm_core::runtime::RuntimeState>,
    context: Option<u64>,
    alias_of: Option<&'a str>,
    parent: Option<&'a str>,
    size: u64,
}

fn entry(m: &ServedModel) -> Entry<'_> {
    Entry {
        id: &m.id,
        object: "model",
        created: m.created,
        owned_by: "model-manager",
        model_type: m.model_type,
        runtime: m.runtime,
        loaded: m.state == Some(mm_core::runtime::RuntimeState::Ready),
        state: m.state,
        context: m.context,
        alias_of: m.alias_of.as_deref(),
        parent: m.parent.as_deref(),
        size: m.size,
    }
}

/// A model of the list: this machine's, or another's as that machine lists it ([`super::peers`]).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Here(Entry<'a>),
    There(&'a serde_json::Value),
}

#[derive(serde::Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Item<'a>>,
}

/// Whether the request comes from another machine's endpoint: it gets this machine's models only.
fn from_a_peer(headers: &HeaderMap) -> bool {
    headers.contains_key(super::peers::HOP)
}

/// The other machines' models (each waited for [`super::peers::LIST_WAIT`] at most, all at once).
async fn peer_models(served: &Served) -> Vec<std::sync::Arc<Vec<serde_json::Value>>> {
    let peers = served.peers.now(&served.manager);
    futures_util::future::join_all(peers.iter().map(|p| p.models())).await
}

/// `GET /v1/models`: every model this machine runs, by the names a request gives, then the other machines'.
pub(super) async fn models(State(served): State<Served>, headers: HeaderMap) -> Response {
    let there = if from_a_peer(&headers) { Vec::new() } else { peer_models(&served).await };
    let models = served.manager.served_models().await;
    let data = models
        .iter()
        .map(|m| Item::Here(entry(m)))
        .chain(there.iter().flat_map(|l| l.iter().map(Item::There)))
        .collect();
    axum::Json(List { object: "list", data }).into_response()
}

/// `GET /v1/models/{id}`.
pub(super) async fn model(State(served): State<Served>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(m) = served.manager.served_models().await.iter().find(|m| m.id == id) {
        return axum::Json(entry(m)).into_response();
    }
    if !from_a_peer(&headers) {
        if let Some((peer, _)) = served.peers.of(&served.manager, &id) {
            if let Some(m) = peer.models().await.iter().find(|m| m["id"] == id.as_str()) {
                return axum::Json(m).into_response();
            }
        }
    }
    Wire::OpenAi.error(StatusCode::NOT_FOUND, format!("no model is named {id:?} here (GET /v1/models lists them)"))
}

/// `POST /v1/...`: to the runtime of the body's `model`, loaded first when it is not, the answer streamed back as
/// it comes. A streamed request whose model takes a while to load hears `: loading` comments meanwhile (a client
/// or proxy with a read timeout keeps the connection).
pub(super) async fn pass_on(
    State(served): State<Served>,
    Path(_): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let wire = Wire::OpenAi;
    // Only what routes it is read (the rest goes on as bytes): a large body costs its bytes, not a parsed tree.
    let value = match serde_json::from_slice::<Routing>(&body) {
        Ok(r) => serde_json::json!({"model": r.model, "stream": r.stream, "keep_alive": r.keep_alive}),
        Err(_) => match json_of(&body, wire) {
            Err(e) => return e.into_response(),
            Ok(_) => {
                return wire.fail(StatusCode::BAD_REQUEST, "the request body must be a JSON object").into_response()
            }
        },
    };
    let model = match model_of(&value, wire) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let keep_alive = match keep_alive_of(&value) {
        Ok(k) => k,
        Err(why) => return wire.error(StatusCode::BAD_REQUEST, why),
    };
    if !from_a_peer(&headers) {
        if let Some((peer, id)) = served.peers.of(&served.manager, &model) {
            let here = served.manager.resolve(&model).await;
            if here.as_ref().is_err_and(|e| e.code == mm_core::ErrorCode::NotFound) {
                let path = uri.path().strip_prefix("/v1/").unwrap_or_default();
                let body = match json_of(&body, wire) {
                    Ok(body) => body,
                    Err(e) => return e.into_response(),
                };
                return match peer.pass_on(path, body, id).await {
                    Ok(answer) => answer,
                    Err((status, why)) => wire.error(status, why),
                };
            }
        }
    }
    let streamed = value.get("stream") == Some(&serde_json::Value::Bool(true));
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| uri.path().to_string());
    let manager = served.manager.clone();
    let answer = async move {
        let hold = manager.hold(&model, keep_alive).await?;
        upstream::send(hold, Method::POST, &path, headers, body).await
    };
    if !streamed {
        return respond(answer.await, wire);
    }
    let mut task = AbortOnDrop(tokio::spawn(answer));
    match tokio::time::timeout(QUIET_WAIT, &mut task.0).await {
        Ok(done) => respond(done.unwrap_or_else(|e| Err(joined(e))), wire),
        Err(_) => heartbeat(task),
    }
}

/// The fields of a request that route it.
#[derive(serde::Deserialize)]
struct Routing {
    #[serde(default)]
    model: Option<serde_json::Value>,
    #[serde(default)]
    stream: Option<serde_json::Value>,
    #[serde(default)]
    keep_alive: Option<serde_json::Value>,
}

fn joined(e: tokio::task::JoinError) -> ErrorPayload {
    ErrorPayload::new(mm_core::ErrorCode::Internal, format!("the request's task ended: {e}"))
}

fn respond(answer: Result<axum::http::Response<ProxyBody>, ErrorPayload>, wire: Wire) -> Response {
    match answer {
        Ok(response) => response.map(Body::new),
        Err(e) => wire.payload(&e).into_response(),
    }
}

/// Ends the task when the answer is dropped (its client went away); the model's load goes on in the host.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Answer = Result<axum::http::Response<ProxyBody>, ErrorPayload>;

enum Phase {
    Waiting(AbortOnDrop<Answer>),
    Streaming(ProxyBody),
    Done,
}

/// A `200` event stream now: `: loading` comments until the model answers, then its own stream, or an error event
/// in OpenAI's shape (which the official clients raise) when it cannot.
fn heartbeat(task: AbortOnDrop<Answer>) -> Response {
    let events = futures_util::stream::unfold(Phase::Waiting(task), |phase| async move {
        match phase {
            Phase::Waiting(mut task) => {
                let done = tokio::select! {
                    done = &mut task.0 => done,
                    () = tokio::time::sleep(HEARTBEAT) => {
                        return Some((Ok(Bytes::from_static(b": loading\n\n")), Phase::Waiting(task)));
                    }
                };
                match done.unwrap_or_else(|e| Err(joined(e))) {
                    Ok(response) if response.status().is_success() => {
                        let mut body = response.into_body();
                        match body.frame().await {
                            Some(Ok(frame)) => {
                                let data = frame.into_data().unwrap_or_default();
                                Some((Ok(data), Phase::Streaming(body)))
                            }
                            Some(Err(e)) => Some((Err(e), Phase::Done)),
                            None => None,
                        }
                    }
                    Ok(response) => {
                        let status = response.status();
                        let text = super::whole(response.into_body()).await.unwrap_or_default();
                        let error = serde_json::from_slice::<serde_json::Value>(&text)
                            .ok()
                            .and_then(|v| v.get("error").cloned())
                            .unwrap_or_else(|| {
                                serde_json::json!({"message": String::from_utf8_lossy(&text), "code": status.as_u16()})
                            });
                        Some((Ok(event(serde_json::json!({ "error": error }))), Phase::Done))
                    }
                    Err(e) => {
                        let error = serde_json::json!({"error": {"message": e.message, "type": "server_error", "code": e.code}});
                        Some((Ok(event(error)), Phase::Done))
                    }
                }
            }
            Phase::Streaming(mut body) => loop {
                match body.frame().await {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => return Some((Ok(data), Phase::Streaming(body))),
                        Err(_) => continue,
                    },
                    Some(Err(e)) => return Some((Err(e), Phase::Done)),
                    None => return None,
                }
            },
            Phase::Done => None,
        }
    });
    let mut response = Response::new(Body::from_stream(events.boxed()));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn event(value: serde_json::Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}
