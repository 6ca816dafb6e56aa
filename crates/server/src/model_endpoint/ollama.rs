//! Ollama's API under `/api`, for the tools that speak only it: the same models, names and scheduler as `/v1`,
//! each request translated to the runtime's OpenAI API and its answer back ([`super::ollama_wire`]), streams as
//! NDJSON with Ollama's field names and `done` records.

use super::ollama_wire::{self as wire, Answer, Kind, SseParser, Upstream};
use super::{json_of, keep_alive_of, model_of, Wire, WireError};
use crate::Served;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use mm_core::runtime::upstream::{self, ProxyBody};
use mm_core::{Manager, ServedModel};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// The Ollama version this API answers as (the one whose API it follows).
const OLLAMA_VERSION: &str = "0.12.0";

pub(super) async fn version() -> Response {
    axum::Json(serde_json::json!({ "version": OLLAMA_VERSION })).into_response()
}

fn created(unix: u64) -> String {
    wire::rfc3339(Duration::from_secs(unix))
}

fn digest(id: &str) -> String {
    mm_core::format::hex(&Sha256::digest(id.as_bytes()))
}

fn details(id: &str) -> serde_json::Value {
    let quant = id.rsplit_once(':').map(|(_, q)| q.to_string()).unwrap_or_default();
    serde_json::json!({
        "parent_model": "", "format": "gguf", "family": "", "families": null, "parameter_size": "",
        "quantization_level": quant,
    })
}

/// `GET /api/tags`: the models by name (a type's name is `/v1`'s alias only).
pub(super) async fn tags(State(served): State<Served>) -> Response {
    let models: Vec<_> = served
        .manager
        .served_models()
        .await
        .into_iter()
        .filter(|m| m.id.parse::<mm_core::model::ModelType>().is_err())
        .map(|m: ServedModel| {
            serde_json::json!({
                "name": m.id, "model": m.id, "modified_at": created(m.created), "size": m.size,
                "digest": digest(&m.id), "details": details(&m.id),
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "models": models })).into_response()
}

/// `GET /api/ps`: the loaded models, with what they take and when they unload.
pub(super) async fn ps(State(served): State<Served>) -> Response {
    let models: Vec<_> = served
        .manager
        .loaded()
        .await
        .into_iter()
        .map(|m| {
            let measured = m.measured.map(|u| (u.ram + u.gpu.unwrap_or(0), u.gpu.unwrap_or(0)));
            let (size, vram) = measured.unwrap_or((m.need_bytes, 0));
            // Ollama says a model kept for good expires far in the future.
            let expires = m.expires_at.unwrap_or(253_402_300_799);
            serde_json::json!({
                "name": m.id, "model": m.id, "size": size, "size_vram": vram, "digest": digest(&m.id),
                "details": details(&m.id), "expires_at": created(expires),
                "context_length": m.plan.as_ref().map(|p| p.context),
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "models": models })).into_response()
}

/// `POST /api/show`: what a model is (from its GGUF header).
pub(super) async fn show(State(served): State<Served>, body: Bytes) -> Response {
    let ollama = Wire::Ollama;
    let mut value = match json_of(&body, ollama) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    // Older clients send `name`.
    if value.get("model").is_none() {
        if let Some(name) = value.get("name").cloned() {
            value["model"] = name;
        }
    }
    let model = match model_of(&value, ollama) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let target = match served.manager.resolve(&model).await {
        Ok(t) => t,
        Err(e) => return ollama.payload(&e).into_response(),
    };
    let file = target.file.clone().unwrap_or_default();
    let summary = tokio::task::spawn_blocking(move || mm_core::compat::local::read_gguf(std::path::Path::new(&file)))
        .await
        .ok()
        .and_then(Result::ok);
    let arch = summary.as_ref().and_then(|s| s.architecture.clone()).unwrap_or_default();
    let mut info = serde_json::Map::new();
    info.insert("general.architecture".into(), arch.clone().into());
    if let Some(s) = &summary {
        info.insert("general.parameter_count".into(), s.parameters.into());
        if let Some(c) = s.context_length {
            info.insert(format!("{arch}.context_length"), c.into());
        }
        if let Some(e) = s.embedding_length {
            info.insert(format!("{arch}.embedding_length"), e.into());
        }
    }
    let capabilities = match target.model_type {
        mm_core::model::ModelType::Embedding => vec!["embedding"],
        _ => vec!["completion"],
    };
    let mut details = details(&target.id);
    details["family"] = arch.into();
    axum::Json(serde_json::json!({
        "modelfile": "", "parameters": "", "template": "", "details": details, "model_info": info,
        "capabilities": capabilities,
    }))
    .into_response()
}

pub(super) async fn chat(State(served): State<Served>, body: Bytes) -> Response {
    answer(&served.manager, &body, Kind::Chat).await
}

pub(super) async fn generate(State(served): State<Served>, body: Bytes) -> Response {
    answer(&served.manager, &body, Kind::Generate).await
}

pub(super) async fn embed(State(served): State<Served>, body: Bytes) -> Response {
    embeddings_of(&served.manager, &body, false).await
}

pub(super) async fn embeddings(State(served): State<Served>, body: Bytes) -> Response {
    embeddings_of(&served.manager, &body, true).await
}

/// The parts of a request every handler reads: its body, model and `keep_alive`, and what it becomes upstream.
struct Asked {
    model: String,
    keep_alive: Option<i64>,
    upstream: Upstream,
}

fn asked(body: &Bytes, translate: impl Fn(&serde_json::Value) -> Result<Upstream, String>) -> Result<Asked, WireError> {
    let ollama = Wire::Ollama;
    let value = json_of(body, ollama)?;
    let model = model_of(&value, ollama)?;
    let keep_alive = keep_alive_of(&value).map_err(|why| ollama.fail(StatusCode::BAD_REQUEST, why))?;
    let upstream = translate(&value).map_err(|why| ollama.fail(StatusCode::BAD_REQUEST, why))?;
    Ok(Asked { model, keep_alive, upstream })
}

/// Sends the translated request to the runtime of its model (loaded first); an answer that is not a success comes
/// back as Ollama's error, with the runtime's status.
async fn send(manager: &Manager, asked: &Asked) -> Result<(axum::http::Response<ProxyBody>, Duration), WireError> {
    let ollama = Wire::Ollama;
    let hold = manager.hold(&asked.model, asked.keep_alive).await.map_err(|e| ollama.payload(&e))?;
    let load = Duration::from_millis(hold.acquired.waited_ms);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = Bytes::from(asked.upstream.body.to_string());
    let response =
        upstream::send(hold, Method::POST, asked.upstream.path, headers, body).await.map_err(|e| ollama.payload(&e))?;
    if response.status().is_success() {
        return Ok((response, load));
    }
    let status = response.status();
    let text = super::whole(response.into_body()).await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().or(v["error"].as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&text).to_string());
    Err(ollama.fail(status, message))
}

async fn whole_json(response: axum::http::Response<ProxyBody>) -> Result<serde_json::Value, Response> {
    let bytes = super::whole(response.into_body())
        .await
        .map_err(|e| Wire::Ollama.error(StatusCode::BAD_GATEWAY, format!("the runtime's answer was cut off: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Wire::Ollama.error(StatusCode::BAD_GATEWAY, format!("the runtime's answer is not JSON: {e}")))
}

/// `/api/chat` and `/api/generate`: one answer, or an NDJSON stream of records ending in a `done` one.
async fn answer(manager: &Manager, body: &Bytes, kind: Kind) -> Response {
    let started = Instant::now();
    let translate = match kind {
        Kind::Chat => wire::chat,
        Kind::Generate => wire::generate,
    };
    let asked = match asked(body, translate) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    // Nothing to answer (Ollama's way to load, or with `keep_alive: 0` to unload): the model is held and let go.
    if asked.upstream.path.is_empty() {
        return match manager.hold(&asked.model, asked.keep_alive).await {
            Ok(hold) => {
                let reason = if asked.keep_alive == Some(0) { "unload" } else { "load" };
                let mut record = serde_json::json!({
                    "model": asked.model, "created_at": wire::rfc3339_now(), "done": true, "done_reason": reason,
                });
                match kind {
                    Kind::Chat => record["message"] = serde_json::json!({"role": "assistant", "content": ""}),
                    Kind::Generate => record["response"] = "".into(),
                }
                drop(hold);
                axum::Json(record).into_response()
            }
            Err(e) => Wire::Ollama.payload(&e).into_response(),
        };
    }
    let (response, load) = match send(manager, &asked).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut answer = Answer::new(kind, &asked.model, started);
    answer.set_load_duration(load);
    if !asked.upstream.stream {
        return match whole_json(response).await {
            Ok(value) => match answer.whole(&value) {
                Ok(record) => axum::Json(record).into_response(),
                Err(why) => Wire::Ollama.error(StatusCode::BAD_GATEWAY, why),
            },
            Err(e) => e.into_response(),
        };
    }
    ndjson(response.into_body(), answer)
}

struct Streaming {
    body: ProxyBody,
    parser: SseParser,
    answer: Answer,
    done: bool,
}

/// The runtime's event stream as Ollama's records, one JSON line each; an error mid-stream is Ollama's
/// `{"error": ...}` line.
fn ndjson(body: ProxyBody, answer: Answer) -> Response {
    let state = Streaming { body, parser: SseParser::default(), answer, done: false };
    let lines = futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            match s.body.frame().await {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    let mut out = Vec::new();
                    for event in s.parser.feed(&data) {
                        if event.trim() == "[DONE]" {
                            s.done = true;
                            line(&mut out, &s.answer.finish());
                            break;
                        }
                        let Ok(chunk) = serde_json::from_str::<serde_json::Value>(&event) else { continue };
                        match s.answer.chunk(&chunk) {
                            Ok(Some(record)) => line(&mut out, &record),
                            Ok(None) => {}
                            Err(why) => {
                                s.done = true;
                                line(&mut out, &serde_json::json!({ "error": why }));
                                break;
                            }
                        }
                    }
                    if !out.is_empty() {
                        return Some((Ok::<_, std::io::Error>(Bytes::from(out)), s));
                    }
                    if s.done {
                        return None;
                    }
                }
                Some(Err(e)) => {
                    s.done = true;
                    let mut out = Vec::new();
                    line(&mut out, &serde_json::json!({ "error": format!("the runtime's answer was cut off: {e}") }));
                    return Some((Ok(Bytes::from(out)), s));
                }
                // The runtime ended without `[DONE]`: the stream still ends with its `done` record.
                None => {
                    s.done = true;
                    let mut out = Vec::new();
                    line(&mut out, &s.answer.finish());
                    return Some((Ok(Bytes::from(out)), s));
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(lines.boxed()));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    response
}

fn line(out: &mut Vec<u8>, value: &serde_json::Value) {
    out.extend_from_slice(value.to_string().as_bytes());
    out.push(b'\n');
}

/// `/api/embed` (and the older `/api/embeddings`, one vector).
async fn embeddings_of(manager: &Manager, body: &Bytes, legacy: bool) -> Response {
    let started = Instant::now();
    let translate = if legacy { wire::legacy_embeddings } else { wire::embed };
    let asked = match asked(body, translate) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let (answer, load) = if asked.upstream.path.is_empty() {
        match manager.hold(&asked.model, asked.keep_alive).await {
            Ok(hold) => (serde_json::json!({"data": []}), Duration::from_millis(hold.acquired.waited_ms)),
            Err(e) => return Wire::Ollama.payload(&e).into_response(),
        }
    } else {
        let (response, load) = match send(manager, &asked).await {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        };
        match whole_json(response).await {
            Ok(v) => (v, load),
            Err(e) => return e.into_response(),
        }
    };
    let record = if legacy {
        wire::legacy_embeddings_answer(&answer)
    } else {
        wire::embed_answer(&answer, &asked.model, started, load)
    };
    match record {
        Ok(r) => axum::Json(r).into_response(),
        Err(why) => Wire::Ollama.error(StatusCode::BAD_GATEWAY, why),
    }
}
