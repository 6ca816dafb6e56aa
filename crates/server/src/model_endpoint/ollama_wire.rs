//! Translation between Ollama's HTTP API and the OpenAI-compatible API of llama.cpp's `llama-server`.
//!
//! Requests go one way (an Ollama body becomes an [`Upstream`] OpenAI body), answers the other way (OpenAI
//! chunks or whole answers become Ollama records through [`Answer`]). Nothing here does I/O.
//!
//! An [`Upstream`] with an empty `path` means there is nothing to send: Ollama clients use an empty prompt,
//! message list or embedding input just to load a model, and the caller answers that itself.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CHAT_PATH: &str = "/v1/chat/completions";
const COMPLETIONS_PATH: &str = "/v1/completions";
const EMBEDDINGS_PATH: &str = "/v1/embeddings";

/// Sampling options that keep their Ollama name on llama-server.
const SAME_NAME_OPTIONS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "typical_p",
    "seed",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
];

/// What an Ollama request becomes: the OpenAI path on the runtime (`/v1/chat/completions`, `/v1/completions`,
/// `/v1/embeddings`) and the body to send there; `stream` says whether the Ollama client wants an NDJSON stream.
///
/// An empty `path` means "nothing to send, just load the model"; `body` then holds only the model name.
#[derive(Clone, Debug, PartialEq)]
pub struct Upstream {
    pub path: &'static str,
    pub body: Value,
    pub stream: bool,
}

/// `POST /api/chat` body -> Upstream. Errors are a message for a 400 (e.g. "messages must be an array").
///
/// No messages at all is a load request (empty `path`); the caller answers
/// `{model, created_at, message: {role: "assistant", content: ""}, done: true, done_reason: "load"}`.
pub fn chat(body: &Value) -> Result<Upstream, String> {
    let req = object(body)?;
    let model = model(req)?;
    let stream = wants_stream(req)?;
    let list = match req.get("messages") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => return Err("messages must be an array".into()),
    };
    if list.is_empty() {
        return Ok(load_only(model, stream));
    }
    let mut out = start_body(model, stream);
    out.insert("messages".into(), Value::Array(messages(list)?));
    match req.get("tools") {
        None | Some(Value::Null) => {}
        Some(tools @ Value::Array(_)) => {
            out.insert("tools".into(), tools.clone());
        }
        Some(_) => return Err("tools must be an array".into()),
    }
    if let Some(format) = format(req)? {
        out.insert("response_format".into(), format.response_format());
    }
    apply_options(req, &mut out)?;
    Ok(Upstream { path: CHAT_PATH, body: Value::Object(out), stream })
}

/// `POST /api/generate` body -> Upstream: `prompt` (+ `system`) becomes chat messages on /v1/chat/completions;
/// with `raw: true` the prompt goes as-is to /v1/completions. `images` (base64) become image_url content parts.
///
/// An empty prompt with no images is a load request (empty `path`); the caller answers
/// `{model, created_at, response: "", done: true, done_reason: "load"}`.
pub fn generate(body: &Value) -> Result<Upstream, String> {
    let req = object(body)?;
    let model = model(req)?;
    let stream = wants_stream(req)?;
    let prompt = optional_str(req, "prompt")?.unwrap_or("");
    let system = optional_str(req, "system")?.unwrap_or("");
    let images = images(req.get("images"), "images")?;
    let raw = match req.get("raw") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(raw)) => *raw,
        Some(_) => return Err("raw must be a boolean".into()),
    };
    if prompt.is_empty() && images.is_empty() {
        return Ok(load_only(model, stream));
    }
    let format = format(req)?;
    let mut out = start_body(model, stream);
    let path = if raw {
        if !images.is_empty() {
            return Err("images cannot be sent with raw: true".into());
        }
        out.insert("prompt".into(), prompt.into());
        if let Some(format) = format {
            out.insert("json_schema".into(), format.schema());
        }
        COMPLETIONS_PATH
    } else {
        let mut list = Vec::with_capacity(2);
        if !system.is_empty() {
            list.push(json!({"role": "system", "content": system}));
        }
        list.push(json!({"role": "user", "content": content(prompt, &images)}));
        out.insert("messages".into(), Value::Array(list));
        if let Some(format) = format {
            out.insert("response_format".into(), format.response_format());
        }
        CHAT_PATH
    };
    apply_options(req, &mut out)?;
    Ok(Upstream { path, body: Value::Object(out), stream })
}

/// `POST /api/embed` body ({model, input: string | [string], truncate, options, keep_alive}) -> /v1/embeddings.
/// Also accept the older `/api/embeddings` body ({model, prompt}) via `legacy_embeddings`.
///
/// No input is a load request (empty `path`); `embed_answer` of `{"data": []}` then gives Ollama's answer.
pub fn embed(body: &Value) -> Result<Upstream, String> {
    let req = object(body)?;
    let model = model(req)?;
    let input: Vec<Value> = match req.get("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if text.is_empty() => Vec::new(),
        Some(text @ Value::String(_)) => vec![text.clone()],
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => list.clone(),
        Some(_) => return Err("input must be a string or an array of strings".into()),
    };
    Ok(embeddings_upstream(model, input))
}

/// `POST /api/embeddings` body ({model, prompt}) -> /v1/embeddings. An empty prompt is a load request.
pub fn legacy_embeddings(body: &Value) -> Result<Upstream, String> {
    let req = object(body)?;
    let model = model(req)?;
    let input = match optional_str(req, "prompt")? {
        None | Some("") => Vec::new(),
        Some(prompt) => vec![Value::from(prompt)],
    };
    Ok(embeddings_upstream(model, input))
}

/// Which Ollama answer shape is being produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Generate,
}

/// Turns an OpenAI answer (streamed SSE chunks, or one whole JSON answer) into Ollama's records.
#[derive(Debug)]
pub struct Answer {
    kind: Kind,
    model: String,
    started: Instant,
    load: Duration,
    /// When the first and the latest chunk carrying output arrived.
    first: Option<Instant>,
    last: Option<Instant>,
    /// Chunks that carried output: the token count when the runtime reports none.
    chunks: u64,
    usage_prompt: Option<u64>,
    usage_completion: Option<u64>,
    /// llama-server's own `timings` block, when it sends one.
    timing_prompt_n: Option<u64>,
    timing_prompt_ms: Option<f64>,
    timing_predicted_n: Option<u64>,
    timing_predicted_ms: Option<f64>,
    finish_reason: Option<String>,
    /// Streamed tool calls being put together, by their index.
    calls: BTreeMap<u64, PartialCall>,
}

#[derive(Debug, Default)]
struct PartialCall {
    name: String,
    arguments: String,
}

impl Answer {
    /// `model`: the name the client asked for (echoed in every record); `started`: when the request arrived.
    pub fn new(kind: Kind, model: &str, started: Instant) -> Answer {
        Answer {
            kind,
            model: model.to_string(),
            started,
            load: Duration::ZERO,
            first: None,
            last: None,
            chunks: 0,
            usage_prompt: None,
            usage_completion: None,
            timing_prompt_n: None,
            timing_prompt_ms: None,
            timing_predicted_n: None,
            timing_predicted_ms: None,
            finish_reason: None,
            calls: BTreeMap::new(),
        }
    }

    /// One SSE `data:` payload of a streamed OpenAI answer (the JSON of a chunk; never "[DONE]", which the caller
    /// handles by calling `finish`) -> the Ollama record to send for it, if any (a chunk with no text/tool call
    /// delta and only usage yields None but its usage is kept for `finish`). An `{"error": ...}` chunk yields
    /// Err(message).
    pub fn chunk(&mut self, data: &Value) -> Result<Option<Value>, String> {
        if let Some(message) = error_message(data) {
            return Err(message);
        }
        self.note_usage(data);
        let Some(choice) = data.get("choices").and_then(Value::as_array).and_then(|list| list.first()) else {
            return Ok(None);
        };
        let delta = choice.get("delta");
        let text = delta
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str)
            .or_else(|| choice.get("text").and_then(Value::as_str))
            .unwrap_or("");
        let thinking = delta.and_then(|d| d.get("reasoning_content")).and_then(Value::as_str).unwrap_or("");
        let mut call_delta = false;
        if let Some(list) = delta.and_then(|d| d.get("tool_calls")).and_then(Value::as_array) {
            for (position, call) in list.iter().enumerate() {
                self.add_call_delta(position, call);
                call_delta = true;
            }
        }
        if !text.is_empty() || !thinking.is_empty() || call_delta {
            let now = Instant::now();
            self.first.get_or_insert(now);
            self.last = Some(now);
            self.chunks += 1;
        }
        let finished = match choice.get("finish_reason").and_then(Value::as_str) {
            Some(reason) => {
                self.finish_reason = Some(reason.to_string());
                true
            }
            None => false,
        };
        let calls = if finished { self.take_calls() } else { Vec::new() };
        if text.is_empty() && thinking.is_empty() && calls.is_empty() {
            return Ok(None);
        }
        Ok(Some(Value::Object(self.record(text, thinking, calls, false))))
    }

    /// The last record of a stream: `done: true`, `done_reason` ("stop", "length", ... from finish_reason),
    /// `total_duration`, `load_duration`, `prompt_eval_count`, `prompt_eval_duration`, `eval_count`,
    /// `eval_duration` (nanoseconds; counts from the OpenAI `usage` when seen, else the number of chunks), and
    /// for Chat an empty assistant `message`, for Generate an empty `response` (and `context: []` may be omitted).
    pub fn finish(&mut self) -> Value {
        let calls = self.take_calls();
        let mut record = self.record("", "", calls, true);
        self.add_stats(&mut record, false);
        Value::Object(record)
    }

    /// A whole (non-streamed) OpenAI answer -> the one Ollama record (`done: true` with the text and the counts).
    pub fn whole(mut self, answer: &Value) -> Result<Value, String> {
        if let Some(message) = error_message(answer) {
            return Err(message);
        }
        self.note_usage(answer);
        let choice = answer
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|list| list.first())
            .ok_or_else(|| "the runtime's answer has no choices".to_string())?;
        let message = choice.get("message");
        let text = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .or_else(|| choice.get("text").and_then(Value::as_str))
            .unwrap_or("");
        let thinking = message.and_then(|m| m.get("reasoning_content")).and_then(Value::as_str).unwrap_or("");
        let mut calls = Vec::new();
        if let Some(list) = message.and_then(|m| m.get("tool_calls")).and_then(Value::as_array) {
            for call in list {
                let function = call.get("function");
                let name = function.and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or("");
                let arguments = match function.and_then(|f| f.get("arguments")) {
                    Some(Value::String(text)) => parse_arguments(text),
                    None | Some(Value::Null) => json!({}),
                    Some(other) => other.clone(),
                };
                calls.push((name.to_string(), arguments));
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        let mut record = self.record(text, thinking, calls, true);
        self.add_stats(&mut record, true);
        Ok(Value::Object(record))
    }

    /// Time the model took to load, reported as `load_duration` (set by the caller before finish/whole).
    pub fn set_load_duration(&mut self, d: Duration) {
        self.load = d;
    }

    /// Keeps the counts and timings an OpenAI chunk or answer reports.
    fn note_usage(&mut self, data: &Value) {
        if let Some(usage) = data.get("usage").filter(|u| u.is_object()) {
            if let Some(n) = usage.get("prompt_tokens").and_then(Value::as_u64) {
                self.usage_prompt = Some(n);
            }
            if let Some(n) = usage.get("completion_tokens").and_then(Value::as_u64) {
                self.usage_completion = Some(n);
            }
        }
        if let Some(timings) = data.get("timings").filter(|t| t.is_object()) {
            if let Some(n) = timings.get("prompt_n").and_then(Value::as_u64) {
                self.timing_prompt_n = Some(n);
            }
            if let Some(ms) = timings.get("prompt_ms").and_then(Value::as_f64) {
                self.timing_prompt_ms = Some(ms);
            }
            if let Some(n) = timings.get("predicted_n").and_then(Value::as_u64) {
                self.timing_predicted_n = Some(n);
            }
            if let Some(ms) = timings.get("predicted_ms").and_then(Value::as_f64) {
                self.timing_predicted_ms = Some(ms);
            }
        }
    }

    /// Adds one streamed tool-call fragment to the call it belongs to.
    fn add_call_delta(&mut self, position: usize, call: &Value) {
        let function = call.get("function");
        let name = function.and_then(|f| f.get("name")).and_then(Value::as_str).filter(|n| !n.is_empty());
        let index = match call.get("index").and_then(Value::as_u64) {
            Some(index) => index,
            // No index: a fragment naming a function starts a new call, any other continues the latest.
            None => match (name, self.calls.keys().next_back()) {
                (None, Some(&latest)) => latest,
                (_, Some(&latest)) => latest + 1,
                (_, None) => position as u64,
            },
        };
        let entry = self.calls.entry(index).or_default();
        if let Some(name) = name {
            entry.name.push_str(name);
        }
        match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(part)) => entry.arguments.push_str(part),
            Some(Value::Null) | None => {}
            Some(object) => entry.arguments.push_str(&object.to_string()),
        }
    }

    /// The tool calls put together so far, as (name, parsed arguments), forgetting them.
    fn take_calls(&mut self) -> Vec<(String, Value)> {
        std::mem::take(&mut self.calls)
            .into_values()
            .map(|call| (call.name, parse_arguments(&call.arguments)))
            .collect()
    }

    /// One Ollama record without the closing statistics.
    fn record(&self, text: &str, thinking: &str, calls: Vec<(String, Value)>, done: bool) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert("model".into(), self.model.clone().into());
        record.insert("created_at".into(), rfc3339_now().into());
        match self.kind {
            Kind::Chat => {
                let mut message = Map::new();
                message.insert("role".into(), "assistant".into());
                message.insert("content".into(), text.into());
                if !thinking.is_empty() {
                    message.insert("thinking".into(), thinking.into());
                }
                if !calls.is_empty() {
                    let calls = calls
                        .into_iter()
                        .map(|(name, arguments)| json!({"function": {"name": name, "arguments": arguments}}))
                        .collect();
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                record.insert("message".into(), Value::Object(message));
            }
            Kind::Generate => {
                record.insert("response".into(), text.into());
                if !thinking.is_empty() {
                    record.insert("thinking".into(), thinking.into());
                }
            }
        }
        record.insert("done".into(), done.into());
        record
    }

    /// The closing statistics: reason, durations (nanoseconds) and token counts.
    fn add_stats(&self, record: &mut Map<String, Value>, whole: bool) {
        let now = Instant::now();
        let total = now.saturating_duration_since(self.started);
        let prompt_duration = match (self.timing_prompt_ms, self.first) {
            (Some(ms), _) => millis(ms),
            (None, Some(first)) => first.saturating_duration_since(self.started).saturating_sub(self.load),
            (None, None) => Duration::ZERO,
        };
        let eval_duration = match (self.timing_predicted_ms, self.first) {
            (Some(ms), _) => millis(ms),
            (None, Some(first)) => {
                self.last.filter(|last| *last > first).unwrap_or(now).saturating_duration_since(first)
            }
            (None, None) if whole => total.saturating_sub(self.load),
            (None, None) => Duration::ZERO,
        };
        let reason = match self.finish_reason.as_deref() {
            None | Some("tool_calls") | Some("function_call") => "stop",
            Some(reason) => reason,
        };
        let prompt_count = self.usage_prompt.or(self.timing_prompt_n).unwrap_or(0);
        let eval_count = self.usage_completion.or(self.timing_predicted_n).unwrap_or(self.chunks);
        record.insert("done".into(), true.into());
        record.insert("done_reason".into(), reason.into());
        record.insert("total_duration".into(), nanos(total).into());
        record.insert("load_duration".into(), nanos(self.load).into());
        record.insert("prompt_eval_count".into(), prompt_count.into());
        record.insert("prompt_eval_duration".into(), nanos(prompt_duration).into());
        record.insert("eval_count".into(), eval_count.into());
        record.insert("eval_duration".into(), nanos(eval_duration).into());
    }
}

/// An OpenAI `/v1/embeddings` answer -> Ollama's `/api/embed` answer {model, embeddings: [[f32...]],
/// total_duration, load_duration, prompt_eval_count}.
pub fn embed_answer(answer: &Value, model: &str, started: Instant, load: Duration) -> Result<Value, String> {
    let vectors = embedding_vectors(answer)?;
    let prompt_count = answer.get("usage").and_then(|u| u.get("prompt_tokens")).and_then(Value::as_u64).unwrap_or(0);
    Ok(json!({
        "model": model,
        "embeddings": vectors,
        "total_duration": nanos(started.elapsed()),
        "load_duration": nanos(load),
        "prompt_eval_count": prompt_count,
    }))
}

/// The same for the legacy `/api/embeddings` ({embedding: [...]}, the first input's).
pub fn legacy_embeddings_answer(answer: &Value) -> Result<Value, String> {
    let first = embedding_vectors(answer)?.into_iter().next().unwrap_or_else(|| Value::Array(Vec::new()));
    Ok(json!({ "embedding": first }))
}

/// Incremental Server-Sent-Events parser: feed bytes as they arrive, get each complete event's `data` payload
/// (multi-line `data:` fields joined by "\n"; comments `:...` and other fields ignored; CRLF or LF line ends;
/// an event ends at a blank line).
#[derive(Debug, Default)]
pub struct SseParser {
    /// The bytes of the line not yet ended.
    line: Vec<u8>,
    /// The `data` of the event not yet ended.
    data: Option<String>,
    /// The last line ended with CR: a LF that comes next belongs to it.
    after_cr: bool,
    /// A line has been read (a byte-order mark may only start the first).
    seen_line: bool,
}

impl SseParser {
    /// Takes the next bytes of the stream; returns the `data` of each event they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        let mut rest = bytes;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..end]);
            let cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = std::mem::take(&mut self.line);
            self.end_line(&line, &mut events);
        }
        self.line.extend_from_slice(rest);
        events
    }

    fn end_line(&mut self, bytes: &[u8], events: &mut Vec<String>) {
        let decoded = String::from_utf8_lossy(bytes);
        let mut line: &str = &decoded;
        if !self.seen_line {
            self.seen_line = true;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(data);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }
}

/// Now as RFC 3339 UTC with nanoseconds, like Ollama's `created_at` ("2024-07-22T20:33:28.123456789Z"),
/// computed from SystemTime without any date crate (days-from-civil arithmetic).
pub fn rfc3339_now() -> String {
    rfc3339(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// A time since the Unix epoch as RFC 3339 UTC with nanoseconds.
pub fn rfc3339(unix: Duration) -> String {
    mm_core::format::utc(unix, 9)
}

fn object(body: &Value) -> Result<&Map<String, Value>, String> {
    body.as_object().ok_or_else(|| "the body must be a JSON object".to_string())
}

fn model(req: &Map<String, Value>) -> Result<String, String> {
    match req.get("model") {
        Some(Value::String(model)) if !model.is_empty() => Ok(model.clone()),
        _ => Err("model is required".into()),
    }
}

/// Ollama streams unless told `"stream": false`.
fn wants_stream(req: &Map<String, Value>) -> Result<bool, String> {
    match req.get("stream") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(stream)) => Ok(*stream),
        Some(_) => Err("stream must be a boolean".into()),
    }
}

fn optional_str<'a>(req: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn load_only(model: String, stream: bool) -> Upstream {
    Upstream { path: "", body: json!({ "model": model }), stream }
}

/// The fields every generating upstream body starts with.
fn start_body(model: String, stream: bool) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert("stream".into(), stream.into());
    if stream {
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    out
}

fn embeddings_upstream(model: String, input: Vec<Value>) -> Upstream {
    if input.is_empty() {
        return load_only(model, false);
    }
    Upstream {
        path: EMBEDDINGS_PATH,
        body: json!({"model": model, "input": input, "encoding_format": "float"}),
        stream: false,
    }
}

/// Ollama `options` -> OpenAI/llama-server sampling fields; load-time options are dropped.
fn apply_options(req: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), String> {
    let options = match req.get("options") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(options)) => options,
        Some(_) => return Err("options must be an object".into()),
    };
    for (key, value) in options {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "stop" => match value {
                Value::String(stop) => {
                    out.insert("stop".into(), json!([stop]));
                }
                Value::Array(list) if list.iter().all(Value::is_string) => {
                    out.insert("stop".into(), value.clone());
                }
                _ => return Err("options.stop must be a string or an array of strings".into()),
            },
            "num_predict" => match value.as_f64() {
                // -1 (no limit) and -2 (fill the context) both mean: send no limit.
                Some(n) if n < 0.0 => {}
                Some(_) => {
                    out.insert("max_tokens".into(), value.clone());
                }
                None => return Err("options.num_predict must be a number".into()),
            },
            "num_keep" => {
                out.insert("n_keep".into(), value.clone());
            }
            key if SAME_NAME_OPTIONS.contains(&key) => {
                out.insert(key.into(), value.clone());
            }
            // num_ctx, num_gpu, num_thread, num_batch, use_mmap, ...: fixed when the model loads.
            _ => {}
        }
    }
    Ok(())
}

/// What Ollama's `format` asks for.
enum Format {
    Json,
    Schema(Value),
}

impl Format {
    /// The chat endpoint's `response_format`.
    fn response_format(self) -> Value {
        match self {
            Format::Json => json!({"type": "json_object"}),
            Format::Schema(schema) => {
                json!({"type": "json_schema", "json_schema": {"name": "format", "schema": schema}})
            }
        }
    }

    /// llama-server's `json_schema` field, for the completions endpoint.
    fn schema(self) -> Value {
        match self {
            Format::Json => json!({"type": "object"}),
            Format::Schema(schema) => schema,
        }
    }
}

fn format(req: &Map<String, Value>) -> Result<Option<Format>, String> {
    match req.get("format") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) if text == "json" => Ok(Some(Format::Json)),
        Some(schema @ Value::Object(_)) => Ok(Some(Format::Schema(schema.clone()))),
        Some(_) => Err("format must be \"json\" or a JSON schema object".into()),
    }
}

fn images(value: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|image| image.as_str().map(str::to_string).ok_or_else(|| format!("{what} must be base64 strings")))
            .collect(),
        Some(_) => Err(format!("{what} must be an array")),
    }
}

/// A message's content: plain text, or (with images) image parts then the text part, as Ollama places images
/// before the text.
fn content(text: &str, images: &[String]) -> Value {
    if images.is_empty() {
        return text.into();
    }
    let mut parts: Vec<Value> =
        images.iter().map(|image| json!({"type": "image_url", "image_url": {"url": image_url(image)}})).collect();
    if !text.is_empty() {
        parts.push(json!({"type": "text", "text": text}));
    }
    Value::Array(parts)
}

/// Base64 image -> data URL, its type guessed from the first bytes.
fn image_url(base64: &str) -> String {
    if base64.starts_with("data:") {
        return base64.to_string();
    }
    let mime = if base64.starts_with("/9j/") {
        "image/jpeg"
    } else if base64.starts_with("R0lGOD") {
        "image/gif"
    } else if base64.starts_with("UklGR") {
        "image/webp"
    } else {
        "image/png"
    };
    format!("data:{mime};base64,{base64}")
}

/// Ollama chat messages -> OpenAI ones.
fn messages(list: &[Value]) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(list.len());
    let mut next_id = 0usize;
    // Calls of the latest assistant turn not yet answered by a tool message: (id, function name).
    let mut unanswered: Vec<(String, String)> = Vec::new();
    for (i, message) in list.iter().enumerate() {
        let message = message.as_object().ok_or_else(|| format!("messages[{i}] must be an object"))?;
        let role = match message.get("role") {
            Some(Value::String(role)) if !role.is_empty() => role.as_str(),
            _ => return Err(format!("messages[{i}].role must be a string")),
        };
        let text = match message.get("content") {
            None | Some(Value::Null) => "",
            Some(Value::String(text)) => text.as_str(),
            Some(_) => return Err(format!("messages[{i}].content must be a string")),
        };
        let images = images(message.get("images"), &format!("messages[{i}].images"))?;
        let mut converted = Map::new();
        converted.insert("role".into(), role.into());
        converted.insert("content".into(), content(text, &images));
        if let Some(Value::String(thinking)) = message.get("thinking") {
            if !thinking.is_empty() {
                converted.insert("reasoning_content".into(), thinking.as_str().into());
            }
        }
        if role == "assistant" {
            unanswered.clear();
        }
        match message.get("tool_calls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(calls)) => {
                let mut openai_calls = Vec::with_capacity(calls.len());
                for (j, call) in calls.iter().enumerate() {
                    let function = call
                        .get("function")
                        .and_then(Value::as_object)
                        .ok_or_else(|| format!("messages[{i}].tool_calls[{j}].function must be an object"))?;
                    let name = function
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("messages[{i}].tool_calls[{j}].function.name must be a string"))?;
                    let arguments = match function.get("arguments") {
                        None | Some(Value::Null) => "{}".to_string(),
                        Some(Value::String(text)) => text.clone(),
                        Some(value) => value.to_string(),
                    };
                    let id = match call.get("id") {
                        Some(Value::String(id)) if !id.is_empty() => id.clone(),
                        _ => {
                            next_id += 1;
                            format!("call_{}", next_id - 1)
                        }
                    };
                    unanswered.push((id.clone(), name.to_string()));
                    openai_calls.push(json!({
                        "id": id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }));
                }
                if !openai_calls.is_empty() {
                    converted.insert("tool_calls".into(), Value::Array(openai_calls));
                }
            }
            Some(_) => return Err(format!("messages[{i}].tool_calls must be an array")),
        }
        if role == "tool" {
            let name = message.get("tool_name").or_else(|| message.get("name")).and_then(Value::as_str);
            if let Some(name) = name {
                converted.insert("name".into(), name.into());
            }
            let id = match message.get("tool_call_id") {
                Some(Value::String(id)) => Some(id.clone()),
                _ => {
                    // Answer the call of that name, else the oldest one still open.
                    let at = name.and_then(|name| unanswered.iter().position(|(_, called)| called == name));
                    match at {
                        Some(at) => Some(unanswered.remove(at).0),
                        None if !unanswered.is_empty() => Some(unanswered.remove(0).0),
                        None => None,
                    }
                }
            };
            if let Some(id) = id {
                converted.insert("tool_call_id".into(), id.into());
            }
        }
        out.push(Value::Object(converted));
    }
    Ok(out)
}

/// Streamed tool-call arguments -> the object Ollama sends; text that is not JSON is kept as a string.
fn parse_arguments(text: &str) -> Value {
    if text.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The message of an OpenAI `{"error": ...}` body, if it is one.
fn error_message(data: &Value) -> Option<String> {
    match data.get("error")? {
        Value::Null => None,
        Value::String(message) => Some(message.clone()),
        error => Some(error.get("message").and_then(Value::as_str).map_or_else(|| error.to_string(), str::to_string)),
    }
}

/// The vectors of an OpenAI embeddings answer, in input order.
fn embedding_vectors(answer: &Value) -> Result<Vec<Value>, String> {
    if let Some(message) = error_message(answer) {
        return Err(message);
    }
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| "the runtime's embedding answer has no data".to_string())?;
    let mut rows = Vec::with_capacity(data.len());
    for (position, item) in data.iter().enumerate() {
        let index = item.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
        match item.get("embedding") {
            Some(vector @ Value::Array(numbers)) if numbers.iter().all(Value::is_number) => {
                rows.push((index, vector.clone()));
            }
            _ => return Err("the runtime's embedding is not an array of numbers".into()),
        }
    }
    rows.sort_by_key(|(index, _)| *index);
    Ok(rows.into_iter().map(|(_, vector)| vector).collect())
}

fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_json(delta: Value, finish: Value) -> Value {
        json!({
            "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
            "created": 1_700_000_000,
            "id": "chatcmpl-Q2x8",
            "model": "qwen",
            "system_fingerprint": "b6100-1a2b3c4d",
            "object": "chat.completion.chunk",
        })
    }

    fn count(record: &Value, key: &str) -> u64 {
        record[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {record}"))
    }

    #[test]
    fn chat_streams_by_default_and_asks_for_usage() {
        let up = chat(&json!({"model": "llama3:8b", "messages": [{"role": "user", "content": "hi"}]})).unwrap();
        assert_eq!(up.path, "/v1/chat/completions");
        assert!(up.stream);
        assert_eq!(up.body["model"], "llama3:8b");
        assert_eq!(up.body["stream"], true);
        assert_eq!(up.body["stream_options"], json!({"include_usage": true}));
        assert_eq!(up.body["messages"], json!([{"role": "user", "content": "hi"}]));
    }

    #[test]
    fn chat_without_stream_sends_no_stream_options() {
        let up = chat(&json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": "x"}]})).unwrap();
        assert!(!up.stream);
        assert_eq!(up.body["stream"], false);
        assert!(up.body.get("stream_options").is_none());
    }

    #[test]
    fn chat_maps_options_and_drops_load_time_ones() {
        let up = chat(&json!({
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "keep_alive": "5m",
            "think": true,
            "options": {
                "temperature": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 7, "stop": "\n\n",
                "repeat_penalty": 1.1, "presence_penalty": 0.5, "frequency_penalty": 0.25, "num_predict": 128,
                "typical_p": 0.95, "mirostat": 2, "mirostat_tau": 5.0, "mirostat_eta": 0.1,
                "num_ctx": 8192, "num_gpu": 99, "num_thread": 8, "use_mmap": true
            }
        }))
        .unwrap();
        let body = up.body.as_object().unwrap();
        assert_eq!(body["temperature"], 0.2);
        assert_eq!(body["top_p"], 0.9);
        assert_eq!(body["top_k"], 40);
        assert_eq!(body["min_p"], 0.05);
        assert_eq!(body["seed"], 7);
        assert_eq!(body["stop"], json!(["\n\n"]));
        assert_eq!(body["repeat_penalty"], 1.1);
        assert_eq!(body["presence_penalty"], 0.5);
        assert_eq!(body["frequency_penalty"], 0.25);
        assert_eq!(body["max_tokens"], 128);
        assert_eq!(body["typical_p"], 0.95);
        assert_eq!(body["mirostat"], 2);
        assert_eq!(body["mirostat_tau"], 5.0);
        assert_eq!(body["mirostat_eta"], 0.1);
        for dropped in ["num_ctx", "num_gpu", "num_thread", "use_mmap", "num_predict", "keep_alive", "think", "options"]
        {
            assert!(!body.contains_key(dropped), "{dropped} should be dropped");
        }
    }

    #[test]
    fn unlimited_num_predict_sends_no_max_tokens() {
        for n in [-1, -2] {
            let up = chat(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "options": {"num_predict": n, "stop": ["a", "b"]}}))
            .unwrap();
            assert!(up.body.get("max_tokens").is_none());
            assert_eq!(up.body["stop"], json!(["a", "b"]));
        }
    }

    #[test]
    fn format_json_and_schema() {
        let msgs = json!([{"role": "user", "content": "x"}]);
        let up = chat(&json!({"model": "m", "messages": msgs, "format": "json"})).unwrap();
        assert_eq!(up.body["response_format"], json!({"type": "json_object"}));
        let schema = json!({"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]});
        let up = chat(&json!({"model": "m", "messages": msgs, "format": schema})).unwrap();
        assert_eq!(
            up.body["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "format", "schema": schema}})
        );
        let up = chat(&json!({"model": "m", "messages": msgs, "format": ""})).unwrap();
        assert!(up.body.get("response_format").is_none());
        assert!(chat(&json!({"model": "m", "messages": msgs, "format": "yaml"})).is_err());
    }

    #[test]
    fn images_become_image_url_parts() {
        let up = chat(&json!({"model": "llava", "messages": [
            {"role": "user", "content": "what is this?", "images": ["/9j/4AAQSkZJRg==", "iVBORw0KGgo="]}
        ]}))
        .unwrap();
        assert_eq!(
            up.body["messages"][0]["content"],
            json!([
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "what is this?"},
            ])
        );
    }

    #[test]
    fn tool_calls_get_ids_and_string_arguments() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
        let up = chat(&json!({"model": "m", "tools": tools, "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {"city": "Rome"}}},
            ]},
            {"role": "tool", "content": "14:00", "tool_name": "get_time"},
            {"role": "tool", "content": "22C", "tool_name": "get_weather"},
        ]}))
        .unwrap();
        assert_eq!(up.body["tools"], tools);
        let messages = up.body["messages"].as_array().unwrap();
        let calls = messages[1]["tool_calls"].as_array().unwrap();
        assert_eq!(calls[0]["id"], "call_0");
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        let arguments = calls[0]["function"]["arguments"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(arguments).unwrap(), json!({"city": "Paris"}));
        assert_eq!(calls[1]["id"], "call_1");
        assert_eq!(messages[2]["role"], "tool");
        assert_eq!(messages[2]["name"], "get_time");
        assert_eq!(messages[2]["tool_call_id"], "call_1");
        assert_eq!(messages[3]["name"], "get_weather");
        assert_eq!(messages[3]["tool_call_id"], "call_0");
        assert!(messages[3].get("tool_name").is_none());
    }

    #[test]
    fn chat_errors_and_load_request() {
        assert_eq!(chat(&json!({"model": "m", "messages": "hi"})).unwrap_err(), "messages must be an array");
        assert_eq!(chat(&json!({"messages": []})).unwrap_err(), "model is required");
        assert!(chat(&json!({"model": "m", "messages": [{"content": "x"}]})).is_err());
        assert!(chat(&json!({"model": "m", "stream": "yes", "messages": []})).is_err());
        assert!(chat(&json!("text")).is_err());
        let up = chat(&json!({"model": "m", "messages": []})).unwrap();
        assert_eq!(up.path, "");
        assert_eq!(up.body["model"], "m");
        assert_eq!(chat(&json!({"model": "m"})).unwrap().path, "");
    }

    #[test]
    fn generate_makes_chat_messages() {
        let up = generate(&json!({"model": "m", "system": "Be brief.", "prompt": "Why is the sky blue?",
            "context": [1, 2, 3], "template": "{{ .Prompt }}", "keep_alive": 0, "options": {"num_predict": 10}}))
        .unwrap();
        assert_eq!(up.path, "/v1/chat/completions");
        assert!(up.stream);
        assert_eq!(
            up.body["messages"],
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}])
        );
        assert_eq!(up.body["max_tokens"], 10);
        for dropped in ["context", "template", "keep_alive", "prompt", "system"] {
            assert!(up.body.get(dropped).is_none(), "{dropped} should be dropped");
        }
    }

    #[test]
    fn generate_with_images() {
        let up = generate(&json!({"model": "llava", "prompt": "describe", "images": ["iVBORw0KGgo="],
            "stream": false, "format": "json"}))
        .unwrap();
        assert!(!up.stream);
        assert_eq!(
            up.body["messages"],
            json!([{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "describe"},
            ]}])
        );
        assert_eq!(up.body["response_format"], json!({"type": "json_object"}));
        // Images alone are a real request, not a load.
        let up = generate(&json!({"model": "llava", "images": ["/9j/x"]})).unwrap();
        assert_eq!(up.path, "/v1/chat/completions");
        assert_eq!(
            up.body["messages"][0]["content"],
            json!([{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/x"}}])
        );
    }

    #[test]
    fn generate_raw_goes_to_completions() {
        let up = generate(&json!({"model": "m", "prompt": "[INST] hi [/INST]", "raw": true, "system": "ignored",
            "format": "json", "options": {"num_predict": 5, "temperature": 0}}))
        .unwrap();
        assert_eq!(up.path, "/v1/completions");
        assert_eq!(up.body["prompt"], "[INST] hi [/INST]");
        assert_eq!(up.body["max_tokens"], 5);
        assert_eq!(up.body["temperature"], 0);
        assert_eq!(up.body["json_schema"], json!({"type": "object"}));
        assert_eq!(up.body["stream_options"], json!({"include_usage": true}));
        assert!(up.body.get("messages").is_none());
        assert!(generate(&json!({"model": "m", "prompt": "x", "raw": true, "images": ["/9j/"]})).is_err());
    }

    #[test]
    fn generate_empty_prompt_is_a_load() {
        for body in [json!({"model": "m"}), json!({"model": "m", "prompt": "", "stream": false})] {
            let up = generate(&body).unwrap();
            assert_eq!(up.path, "");
            assert_eq!(up.body["model"], "m");
        }
        assert!(generate(&json!({"model": "m", "prompt": 3})).is_err());
    }

    #[test]
    fn embed_both_shapes() {
        let up = embed(&json!({"model": "nomic", "input": "hello", "truncate": true, "keep_alive": "1m",
            "options": {"num_ctx": 512}}))
        .unwrap();
        assert_eq!(up.path, "/v1/embeddings");
        assert!(!up.stream);
        assert_eq!(up.body, json!({"model": "nomic", "input": ["hello"], "encoding_format": "float"}));
        let up = embed(&json!({"model": "nomic", "input": ["a", "b"]})).unwrap();
        assert_eq!(up.body["input"], json!(["a", "b"]));
        assert_eq!(embed(&json!({"model": "nomic"})).unwrap().path, "");
        assert!(embed(&json!({"model": "nomic", "input": [1, 2]})).is_err());
        let up = legacy_embeddings(&json!({"model": "nomic", "prompt": "hello"})).unwrap();
        assert_eq!(up.path, "/v1/embeddings");
        assert_eq!(up.body["input"], json!(["hello"]));
        assert_eq!(legacy_embeddings(&json!({"model": "nomic", "prompt": ""})).unwrap().path, "");
    }

    #[test]
    fn embed_answers() {
        let answer = json!({
            "model": "nomic", "object": "list",
            "data": [
                {"object": "embedding", "index": 1, "embedding": [0.5, -0.25]},
                {"object": "embedding", "index": 0, "embedding": [0.125, 1.0]},
            ],
            "usage": {"prompt_tokens": 6, "total_tokens": 6}
        });
        let started = Instant::now() - Duration::from_millis(30);
        let out = embed_answer(&answer, "nomic:latest", started, Duration::from_millis(10)).unwrap();
        assert_eq!(out["model"], "nomic:latest");
        assert_eq!(out["embeddings"], json!([[0.125, 1.0], [0.5, -0.25]]));
        assert_eq!(out["prompt_eval_count"], 6);
        assert_eq!(out["load_duration"], 10_000_000);
        assert!(count(&out, "total_duration") >= 30_000_000);
        let legacy = legacy_embeddings_answer(&answer).unwrap();
        assert_eq!(legacy, json!({"embedding": [0.125, 1.0]}));
        let empty = embed_answer(&json!({"data": []}), "nomic", Instant::now(), Duration::ZERO).unwrap();
        assert_eq!(empty["embeddings"], json!([]));
        let error = json!({"error": {"code": 400, "message": "input is too large", "type": "invalid_request_error"}});
        assert_eq!(legacy_embeddings_answer(&error).unwrap_err(), "input is too large");
        assert!(embed_answer(&json!({"data": [{"embedding": [[1.0]]}]}), "m", Instant::now(), Duration::ZERO).is_err());
    }

    #[test]
    fn streamed_chat_records_and_finish() {
        let started = Instant::now();
        let mut answer = Answer::new(Kind::Chat, "qwen3:4b", started);
        answer.set_load_duration(Duration::from_millis(3));
        let role_only = chunk_json(json!({"role": "assistant", "content": null}), Value::Null);
        assert_eq!(answer.chunk(&role_only).unwrap(), None);
        let mut texts = Vec::new();
        for piece in ["Hello", ",", " world"] {
            let record = answer.chunk(&chunk_json(json!({"content": piece}), Value::Null)).unwrap().unwrap();
            assert_eq!(record["model"], "qwen3:4b");
            assert_eq!(record["done"], false);
            assert_eq!(record["message"]["role"], "assistant");
            assert!(record["created_at"].as_str().unwrap().ends_with('Z'));
            assert!(record.get("done_reason").is_none());
            texts.push(record["message"]["content"].as_str().unwrap().to_string());
        }
        assert_eq!(texts.concat(), "Hello, world");
        let last = chunk_json(json!({}), json!("length"));
        assert_eq!(answer.chunk(&last).unwrap(), None);
        let usage_only = json!({
            "choices": [], "created": 1_700_000_000, "id": "chatcmpl-Q2x8", "model": "qwen",
            "object": "chat.completion.chunk",
            "usage": {"completion_tokens": 4, "prompt_tokens": 17, "total_tokens": 21},
            "timings": {"prompt_n": 17, "prompt_ms": 12.5, "predicted_n": 4, "predicted_ms": 40.0}
        });
        assert_eq!(answer.chunk(&usage_only).unwrap(), None);
        let done = answer.finish();
        assert_eq!(done["done"], true);
        assert_eq!(done["done_reason"], "length");
        assert_eq!(done["message"], json!({"role": "assistant", "content": ""}));
        assert_eq!(done["eval_count"], 4);
        assert_eq!(done["prompt_eval_count"], 17);
        assert_eq!(done["prompt_eval_duration"], 12_500_000);
        assert_eq!(done["eval_duration"], 40_000_000);
        assert_eq!(done["load_duration"], 3_000_000);
        assert!(count(&done, "total_duration") <= nanos(started.elapsed()));
    }

    #[test]
    fn stream_without_usage_counts_chunks() {
        let mut answer = Answer::new(Kind::Generate, "m", Instant::now());
        for piece in ["a", "b", "c"] {
            let record = answer.chunk(&chunk_json(json!({"content": piece}), Value::Null)).unwrap().unwrap();
            assert_eq!(record["response"], piece);
            assert!(record.get("message").is_none());
        }
        let done = answer.finish();
        assert_eq!(done["eval_count"], 3);
        assert_eq!(done["prompt_eval_count"], 0);
        assert_eq!(done["done_reason"], "stop");
        assert_eq!(done["response"], "");
        for key in ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"] {
            count(&done, key);
        }
    }

    #[test]
    fn streamed_completions_text_and_thinking() {
        let mut answer = Answer::new(Kind::Generate, "m", Instant::now());
        let piece = json!({"choices": [{"text": "Once", "index": 0, "logprobs": null, "finish_reason": null}],
            "object": "text_completion"});
        assert_eq!(answer.chunk(&piece).unwrap().unwrap()["response"], "Once");
        let think = chunk_json(json!({"reasoning_content": "hmm"}), Value::Null);
        let record = answer.chunk(&think).unwrap().unwrap();
        assert_eq!(record["thinking"], "hmm");
        assert_eq!(record["response"], "");
        let mut chat = Answer::new(Kind::Chat, "m", Instant::now());
        let record = chat.chunk(&think).unwrap().unwrap();
        assert_eq!(record["message"]["thinking"], "hmm");
        assert_eq!(record["message"]["content"], "");
    }

    #[test]
    fn streamed_tool_calls_are_put_together() {
        let mut answer = Answer::new(Kind::Chat, "m", Instant::now());
        let parts = [
            json!({"tool_calls": [{"index": 0, "id": "Xa1", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"Paris\"}"}}]}),
            json!({"tool_calls": [{"index": 1, "id": "Xa2", "type": "function",
                "function": {"name": "get_time", "arguments": "{}"}}]}),
        ];
        for part in parts {
            assert_eq!(answer.chunk(&chunk_json(part, Value::Null)).unwrap(), None);
        }
        let record = answer.chunk(&chunk_json(json!({}), json!("tool_calls"))).unwrap().unwrap();
        assert_eq!(record["done"], false);
        assert_eq!(
            record["message"]["tool_calls"],
            json!([
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {}}},
            ])
        );
        let done = answer.finish();
        assert_eq!(done["done_reason"], "stop");
        assert!(done["message"].get("tool_calls").is_none());
        assert_eq!(done["eval_count"], 4);
    }

    #[test]
    fn tool_calls_left_open_end_up_in_the_final_record() {
        let mut answer = Answer::new(Kind::Chat, "m", Instant::now());
        let part = json!({"tool_calls": [{"function": {"name": "f", "arguments": "{\"x\": 1}"}}]});
        assert_eq!(answer.chunk(&chunk_json(part, Value::Null)).unwrap(), None);
        let done = answer.finish();
        assert_eq!(done["message"]["tool_calls"], json!([{"function": {"name": "f", "arguments": {"x": 1}}}]));
    }

    #[test]
    fn error_chunk_is_an_error() {
        let mut answer = Answer::new(Kind::Chat, "m", Instant::now());
        let error = json!({"error": {"code": 500, "message": "context full", "type": "server_error"}});
        assert_eq!(answer.chunk(&error).unwrap_err(), "context full");
        assert_eq!(answer.chunk(&json!({"error": "boom"})).unwrap_err(), "boom");
    }

    #[test]
    fn whole_chat_answer() {
        let mut answer = Answer::new(Kind::Chat, "llama3", Instant::now());
        answer.set_load_duration(Duration::from_millis(1));
        let openai = json!({
            "choices": [{"finish_reason": "stop", "index": 0, "message": {"role": "assistant",
                "content": "Hi there", "reasoning_content": "greet"}}],
            "created": 1_700_000_000, "model": "x", "object": "chat.completion",
            "usage": {"completion_tokens": 3, "prompt_tokens": 9, "total_tokens": 12},
        });
        let out = answer.whole(&openai).unwrap();
        assert_eq!(out["model"], "llama3");
        assert_eq!(out["done"], true);
        assert_eq!(out["done_reason"], "stop");
        assert_eq!(out["message"], json!({"role": "assistant", "content": "Hi there", "thinking": "greet"}));
        assert_eq!(out["eval_count"], 3);
        assert_eq!(out["prompt_eval_count"], 9);
        assert_eq!(out["load_duration"], 1_000_000);
        count(&out, "eval_duration");
        count(&out, "prompt_eval_duration");
        count(&out, "total_duration");
    }

    #[test]
    fn whole_chat_answer_with_tool_calls() {
        let openai = json!({
            "choices": [{"finish_reason": "tool_calls", "index": 0, "message": {"role": "assistant",
                "content": null, "tool_calls": [{"id": "a", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        });
        let out = Answer::new(Kind::Chat, "m", Instant::now()).whole(&openai).unwrap();
        assert_eq!(out["done_reason"], "stop");
        assert_eq!(out["message"]["content"], "");
        assert_eq!(
            out["message"]["tool_calls"],
            json!([{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}])
        );
    }

    #[test]
    fn whole_generate_answers() {
        let from_chat = json!({"choices": [{"finish_reason": "length", "index": 0,
            "message": {"role": "assistant", "content": "Blue light scatters."}}],
            "usage": {"completion_tokens": 5, "prompt_tokens": 8}});
        let out = Answer::new(Kind::Generate, "m", Instant::now()).whole(&from_chat).unwrap();
        assert_eq!(out["response"], "Blue light scatters.");
        assert_eq!(out["done"], true);
        assert_eq!(out["done_reason"], "length");
        assert_eq!(out["eval_count"], 5);
        assert!(out.get("message").is_none());
        let from_completions = json!({"choices": [{"text": "raw out", "index": 0, "finish_reason": "stop"}],
            "object": "text_completion"});
        let out = Answer::new(Kind::Generate, "m", Instant::now()).whole(&from_completions).unwrap();
        assert_eq!(out["response"], "raw out");
        let error = json!({"error": {"message": "model not loaded"}});
        assert_eq!(Answer::new(Kind::Generate, "m", Instant::now()).whole(&error).unwrap_err(), "model not loaded");
        assert!(Answer::new(Kind::Chat, "m", Instant::now()).whole(&json!({})).is_err());
    }

    const STREAM: &[u8] = concat!(
        ": keep-alive\r\n\r\n",
        "data: {\"a\":1}\r\n\r\n",
        "event: message\nid: 3\ndata: line one\ndata:line two\n\n",
        "data: [DONE]\n\n",
    )
    .as_bytes();

    fn expected() -> Vec<String> {
        vec!["{\"a\":1}".to_string(), "line one\nline two".to_string(), "[DONE]".to_string()]
    }

    #[test]
    fn sse_whole_buffer() {
        assert_eq!(SseParser::default().feed(STREAM), expected());
    }

    #[test]
    fn sse_every_split() {
        for cut in 0..=STREAM.len() {
            let mut parser = SseParser::default();
            let mut events = parser.feed(&STREAM[..cut]);
            events.extend(parser.feed(&STREAM[cut..]));
            assert_eq!(events, expected(), "cut at {cut}");
        }
        for a in 0..=STREAM.len() {
            for b in a..=STREAM.len() {
                let mut parser = SseParser::default();
                let mut events = parser.feed(&STREAM[..a]);
                events.extend(parser.feed(&STREAM[a..b]));
                events.extend(parser.feed(&[]));
                events.extend(parser.feed(&STREAM[b..]));
                assert_eq!(events, expected(), "cuts at {a} and {b}");
            }
        }
    }

    #[test]
    fn sse_byte_by_byte_with_crlf_and_multibyte_text() {
        let stream =
            "\u{feff}data: héllo ✓\r\n\r\ndata:\r\n\r\ndata: x\r\rdata: y\n\nunfinished: 1\ndata: z".as_bytes();
        let mut parser = SseParser::default();
        let events: Vec<String> = stream.iter().flat_map(|b| parser.feed(std::slice::from_ref(b))).collect();
        assert_eq!(events, vec!["héllo ✓".to_string(), String::new(), "x".to_string(), "y".to_string()]);
        // The unfinished event comes once its blank line arrives.
        assert_eq!(parser.feed(b"\n\n"), vec!["z".to_string()]);
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(Duration::from_secs_f64(1_700_000_000.5)), "2023-11-14T22:13:20.500000000Z");
        assert_eq!(rfc3339(Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(rfc3339(Duration::new(1_721_680_408, 123_456_789)), "2024-07-22T20:33:28.123456789Z");
        assert_eq!(rfc3339(Duration::from_secs(253_402_300_799)), "9999-12-31T23:59:59.000000000Z");
        assert_eq!(rfc3339(Duration::from_secs(1_709_164_800)), "2024-02-29T00:00:00.000000000Z");
        assert_eq!(rfc3339(Duration::from_secs(4_107_542_400)), "2100-03-01T00:00:00.000000000Z");
    }

    #[test]
    fn rfc3339_now_has_the_shape() {
        let now = rfc3339_now();
        assert_eq!(now.len(), "2024-07-22T20:33:28.123456789Z".len());
        assert!(now.starts_with("20"));
        assert_eq!(&now[10..11], "T");
        assert!(now.ends_with('Z'));
    }
}
