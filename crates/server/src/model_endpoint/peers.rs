//! Other machines' models through this machine's endpoint, as llama-swap's `peers` and LM Studio's LM Link do: each
//! machine added in Settings → Machines (and each `mm serve --peer NAME=URL`) lends its models to `GET /v1/models`
//! as `NAME/ID`, with `machine: NAME` beside; a `POST /v1/...` naming one goes to that machine's `/v1` with that
//! machine's token (never the caller's), its `model` rewritten to the machine's own name, and the answer streams
//! back as it comes. That machine's scheduler decides its memory.
//!
//! - **A machine that does not answer** is left out of the list after [`LIST_WAIT`], and remembered as down for
//!   [`DOWN_FOR`], so that no list waits on it twice in a row; a request for one of its models answers 503 naming
//!   it.
//! - **One hop.** A machine asking another for its list or a model says so ([`HOP`]); the other answers with its
//!   own models only and forwards nothing, so two machines that list each other never loop.
//! - **Names.** `NAME` is the machine's name as the user gave it, made safe for a model name
//!   ([`mm_core::machine::endpoint_prefix`]). A model of this machine wins over a machine's of the same full name.
//! - **Paths.** Only plain path segments go on (`chat/completions`, `embeddings`): no `.`, `..` or encoded ones,
//!   which would reach another route of the machine's with this machine's token for it.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use mm_core::remote::Remote;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the list waits for a machine.
pub(crate) const LIST_WAIT: Duration = Duration::from_secs(2);
/// How long a machine's list is reused before it is asked again.
const FRESH_FOR: Duration = Duration::from_secs(2);
/// How long a machine that did not answer is left out before it is asked again.
const DOWN_FOR: Duration = Duration::from_secs(10);
/// The header one machine's endpoint sends another's: "answer with your own models, forward nothing".
pub(crate) const HOP: &str = "x-model-manager-peer";
/// The most a machine's list may hold (a thousand models list in about 300 KB).
const MAX_LIST_BYTES: usize = 4 << 20;
/// The most models one machine lends.
const MAX_MODELS: usize = 10_000;
/// The fields of a machine's list entry that are passed on (no other field of a machine's reaches a client).
const FIELDS: [&str; 10] =
    ["object", "created", "owned_by", "type", "runtime", "loaded", "state", "context", "size", "parent"];
/// How long a request waits for a machine's answer to begin (a model loading there answers when it is loaded).
const ANSWER_WAIT: Duration = Duration::from_secs(600);

/// A machine's models as its list said them, or why it said none.
type Listed = Result<Arc<Vec<Value>>, String>;
/// Machines by `(name, url)`.
type Named = Vec<(String, String)>;

/// A machine whose models this endpoint serves.
pub(crate) struct Peer {
    pub name: String,
    remote: Remote,
    /// Its last list (or why there is none), and when it was asked.
    listing: Mutex<Option<(Instant, Listed)>>,
    /// Held while its list is asked for, so that requests at once ask it once.
    asking: tokio::sync::Mutex<()>,
    /// It refused the token kept for it (401, 403): the next use reads the kept token again (the user may have
    /// added the machine again with a new one).
    refused: std::sync::atomic::AtomicBool,
}

/// The peers as made: from which `(name, url)` list, and when.
struct Made {
    from: Named,
    peers: Arc<Vec<Arc<Peer>>>,
    at: Instant,
}

/// The machines of the settings and of `--peer`, rebuilt when the settings' list changes.
pub(crate) struct Peers {
    /// `--peer NAME=URL`.
    given: Named,
    made: Mutex<Made>,
}

impl Peers {
    pub(crate) fn new(given: Named) -> Peers {
        Peers { given, made: Mutex::new(Made { from: Vec::new(), peers: Arc::default(), at: Instant::now() }) }
    }

    /// The peers now: `--peer`'s, then the settings' machines (by their safe names; the first of a name wins).
    pub(crate) fn now(&self, manager: &mm_core::Manager) -> Arc<Vec<Arc<Peer>>> {
        let mut wanted: Named = self.given.clone();
        // As the settings file says now: `mm machines add` or the window may have added one since.
        for machine in manager.settings_now().machines {
            wanted.push((mm_core::machine::endpoint_prefix(&machine.name), machine.url));
        }
        let mut seen = std::collections::HashSet::new();
        wanted.retain(|(name, _)| {
            !name.is_empty()
                && !mm_core::machine::THIS_MACHINES_PREFIXES.contains(&name.as_str())
                && seen.insert(name.clone())
        });
        let mut made = self.made.lock().unwrap();
        // A machine that refused its token gets it read again, at most once in DOWN_FOR (the kept token may be
        // as wrong as before, and reading it may wait on the keyring).
        let refused = made.peers.iter().any(|p| p.refused.load(std::sync::atomic::Ordering::Relaxed))
            && made.at.elapsed() >= DOWN_FOR;
        if made.from != wanted || refused {
            let peers = wanted
                .iter()
                .filter_map(|(name, url)| match manager.machine(url) {
                    Ok(remote) => Some(Arc::new(Peer {
                        name: name.clone(),
                        remote,
                        listing: Mutex::new(None),
                        asking: tokio::sync::Mutex::new(()),
                        refused: Default::default(),
                    })),
                    Err(e) => {
                        tracing::warn!(machine = %name, error = %e.message, "this machine's models are not served");
                        None
                    }
                })
                .collect();
            *made = Made { from: wanted, peers: Arc::new(peers), at: Instant::now() };
        }
        made.peers.clone()
    }

    /// The machine a model name is on, and its name there: `NAME/ID` for a peer `NAME`.
    pub(crate) fn of<'a>(&self, manager: &mm_core::Manager, model: &'a str) -> Option<(Arc<Peer>, &'a str)> {
        let (name, id) = model.split_once('/')?;
        if id.is_empty() {
            return None;
        }
        let peer = self.now(manager).iter().find(|p| p.name == name)?.clone();
        Some((peer, id))
    }
}

/// A machine's list entry as this endpoint lists it: `NAME/ID`, the fields of [`FIELDS`] that are plain values,
/// and `machine: NAME`; none for an entry without a sensible id.
fn lent(name: &str, entry: &Value) -> Option<Value> {
    let id = entry.get("id")?.as_str().filter(|id| !id.is_empty() && id.len() <= 512)?;
    let mut lent = serde_json::Map::new();
    lent.insert("id".into(), Value::String(format!("{name}/{id}")));
    for field in FIELDS {
        if let Some(value) = entry.get(field).filter(|v| !v.is_object() && !v.is_array()) {
            lent.insert(field.into(), value.clone());
        }
    }
    lent.insert("machine".into(), Value::String(name.to_string()));
    Some(Value::Object(lent))
}

impl Peer {
    /// Its models as its `/v1/models` lists them, named `NAME/ID` with `machine: NAME`; none when it did not
    /// answer within [`LIST_WAIT`] (or did not, lately).
    pub(crate) async fn models(&self) -> Arc<Vec<Value>> {
        if let Some(listed) = self.recent() {
            return listed.unwrap_or_default();
        }
        let _asking = self.asking.lock().await;
        // Another request may have asked meanwhile.
        if let Some(listed) = self.recent() {
            return listed.unwrap_or_default();
        }
        let listed = self.list().await;
        if let Err(why) = &listed {
            tracing::warn!(machine = %self.name, url = %self.remote.url(), %why, "left out of the model list");
        }
        *self.listing.lock().unwrap() = Some((Instant::now(), listed.clone()));
        listed.unwrap_or_default()
    }

    /// Its list, when one was asked for lately: within [`FRESH_FOR`], or [`DOWN_FOR`] when it did not answer.
    fn recent(&self) -> Option<Listed> {
        let listing = self.listing.lock().unwrap();
        let (asked, listed) = listing.as_ref()?;
        let fresh_for = if listed.is_ok() { FRESH_FOR } else { DOWN_FOR };
        (asked.elapsed() < fresh_for).then(|| listed.clone())
    }

    /// Remembers that it did not answer (a request's failure counts as the list's).
    fn down(&self, why: &str) {
        *self.listing.lock().unwrap() = Some((Instant::now(), Err(why.to_string())));
    }

    async fn list(&self) -> Listed {
        let request = self.remote.endpoint_request(Method::GET, "v1/models").header(HOP, "1").timeout(LIST_WAIT);
        let response = request.send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            if matches!(response.status().as_u16(), 401 | 403) {
                self.refused.store(true, std::sync::atomic::Ordering::Relaxed);
                self.refused.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Err(format!("it answered {}", response.status()));
        }
        let bytes = mm_core::http::read_capped(response, MAX_LIST_BYTES).await.map_err(|e| e.to_string())?;
        let list: Value = serde_json::from_slice(&bytes).map_err(|e| format!("its list is not JSON: {e}"))?;
        let data = list.get("data").and_then(Value::as_array).ok_or("its list has no \"data\"")?;
        Ok(Arc::new(data.iter().take(MAX_MODELS).filter_map(|entry| lent(&self.name, entry)).collect()))
    }

    /// `POST /v1/{path}` on the machine, with `body`'s `model` set to `id` and no `keep_alive` (how long a model
    /// stays loaded there is that machine's to say): its answer as it streams, or 503 naming the machine when it
    /// cannot be reached (or did not answer lately), 502 when it refuses this machine's token.
    pub(crate) async fn pass_on(
        &self,
        path: &str,
        mut body: Value,
        id: &str,
    ) -> Result<Response, (StatusCode, String)> {
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
        if !path.split('/').all(plain) {
            return Err((StatusCode::NOT_FOUND, format!("/v1/{path} is not a path this endpoint passes on")));
        }
        let unavailable = |why: &str| {
            let url = self.remote.url();
            let message = format!("the machine {} ({url}) did not answer for {}/{id}: {why}", self.name, self.name);
            (StatusCode::SERVICE_UNAVAILABLE, format!("{message}; is its `mm serve` running?"))
        };
        if let Some(Err(why)) = self.recent() {
            return Err(unavailable(&why));
        }
        body["model"] = Value::String(id.to_string());
        if let Some(fields) = body.as_object_mut() {
            fields.remove("keep_alive");
        }
        let request = self
            .remote
            .endpoint_request(Method::POST, &format!("v1/{path}"))
            .header(HOP, "1")
            .header(header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).expect("a JSON value serialises"));
        let response = match tokio::time::timeout(ANSWER_WAIT, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                self.down(&e.to_string());
                return Err(unavailable(&e.to_string()));
            }
            Err(_) => return Err(unavailable(&format!("no answer in {} s", ANSWER_WAIT.as_secs()))),
        };
        if matches!(response.status().as_u16(), 401 | 403) {
            self.refused.store(true, std::sync::atomic::Ordering::Relaxed);
            // This machine's token for it is wrong: the caller's key is not the one to blame.
            let message = format!(
                "the machine {} ({}) refused this machine's token ({}): add it again in Settings → Machines \
                 (or `mm machines add`) with its current token",
                self.name,
                self.remote.url(),
                response.status()
            );
            return Err((StatusCode::BAD_GATEWAY, message));
        }
        let mut answer = Response::builder().status(response.status().as_u16());
        for name in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
            if let Some(value) =
                response.headers().get(name.as_str()).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            {
                answer = answer.header(name, value);
            }
        }
        let chunks = futures_util::stream::unfold(response, |mut response| async move {
            match response.chunk().await {
                Ok(Some(chunk)) => Some((Ok::<Bytes, reqwest::Error>(chunk), response)),
                Ok(None) => None,
                Err(e) => Some((Err(e), response)),
            }
        });
        Ok(answer.body(Body::from_stream(chunks)).expect("a response of a status and headers builds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_lends_its_models_under_its_name_with_known_plain_fields_only() {
        let entry = serde_json::json!({
            "id": "org/m", "object": "model", "size": 5, "machine": "spoofed", "loaded": true,
            "owned_by": {"nested": "x"}, "script": "<b>", "context": 4096
        });
        assert_eq!(
            lent("gpu", &entry).unwrap(),
            serde_json::json!({"id": "gpu/org/m", "object": "model", "size": 5, "loaded": true, "context": 4096, "machine": "gpu"})
        );
        assert!(lent("gpu", &serde_json::json!({"id": ""})).is_none());
        assert!(lent("gpu", &serde_json::json!({"id": "x".repeat(600)})).is_none());
        assert!(lent("gpu", &serde_json::json!({"name": "no id"})).is_none());
    }
}
