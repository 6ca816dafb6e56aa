//! `GET /api/models`: the Hub's model search, as `HfApi().list_models` and another Model Manager's Discover ask
//! it. Passed to the upstream with the caller's parameters as given, with the owner's hub token only for a caller
//! holding this server's token or the mirror's; its pages (`Link: rel="next"`) come back as this mirror's own URLs.
//! Offline, with `--no-upstream`, or when the upstream cannot be reached: a search of the models this machine
//! serves, with the same parameters (`search`, `author`, `filter`, `pipeline_tag`, `library`, `sort`,
//! `direction`, `limit`, `expand`), paged the same way.

use super::{
    allowed, allowed_beyond_repos, fill, in_hub_layout, iso8601, kept, own_url, owners_token_for, with_cursor, HubError,
};
use crate::Served;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mm_core::hub::HubError as Upstream;
use mm_core::model::LibraryModel;
use serde_json::{json, Value};

/// The longest query passed on (the Hub's own are far shorter).
const MAX_QUERY: usize = 8192;
/// Results per page of the search of this machine, and the most a `limit` asks (as the Hub caps it).
const PAGE: usize = 1000;

pub(crate) async fn search(
    State(s): State<Served>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    allowed_beyond_repos(&s, &headers)?;
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_QUERY {
        let message = format!("the query is {} bytes long: at most {MAX_QUERY}", raw.len());
        return Err(HubError::new(StatusCode::BAD_REQUEST, "BadRequest", message));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    if s.pull_through && !s.manager.hub_offline() {
        fill::may_ask_upstream(&s, &headers, "the model search")?;
        let params: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        match s.manager.hub_search(&params, owners_token_for(&s, &headers)).await {
            Ok((entries, next)) => return Ok(page(&s, &headers, entries, next)),
            // Not reached: what this machine has is the best answer there is.
            Err(e @ (Upstream::Network { .. } | Upstream::Offline { .. })) => {
                tracing::info!(error = %e, "the upstream's search not reached: searching this machine's models");
            }
            Err(Upstream::Status { status, message, .. }) if (400..500).contains(&status) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                let message = message.unwrap_or_else(|| "the upstream hub refused the search".into());
                return Err(HubError::new(status, "BadRequest", message));
            }
            Err(e) => {
                return Err(HubError::new(StatusCode::BAD_GATEWAY, "UpstreamError", e.to_string()));
            }
        }
    }
    let query = Query::of(&pairs)?;
    // The models on this machine's disks (an Ollama model is never served as a Hub repo).
    let models = s.manager.models_on_disk(s.manager.settings()).await.map_err(|e| {
        HubError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", format!("the library: {}", e.message))
    })?;
    let mut found: Vec<Value> = models
        .iter()
        .filter(|m| in_hub_layout(m) && query.matches(m))
        .filter_map(|m| {
            let here = kept(m);
            allowed(&s, &headers, here.restricted, here.gated, &m.id).ok()?;
            Some(entry(m, here.private))
        })
        .collect();
    query.sort(&mut found);
    let start = query.cursor.min(found.len());
    let end = (start + query.limit).min(found.len());
    let next = (end < found.len()).then(|| with_cursor(&raw, end));
    let shown = found.drain(start..end).map(|e| query.expanded(e)).collect();
    Ok(page(&s, &headers, shown, next))
}

/// A page of results, with the next one's URL on this mirror.
fn page(s: &Served, headers: &HeaderMap, entries: Vec<Value>, next: Option<String>) -> Response {
    let mut response = axum::Json(entries).into_response();
    if let Some(next) = next {
        if let Ok(link) =
            HeaderValue::from_str(&format!("<{}>; rel=\"next\"", own_url(s, headers, "/api/models", &next)))
        {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    response
}

/// A model of this machine as the Hub's search lists one.
fn entry(m: &LibraryModel, private: bool) -> Value {
    json!({
        "_id": m.id,
        "id": m.id,
        "modelId": m.id,
        "author": m.id.split_once('/').map(|(a, _)| a),
        "sha": m.commit,
        "lastModified": m.downloaded_at.map(iso8601),
        "private": private,
        "disabled": false,
        "gated": if m.gated { Value::from("auto") } else { Value::Bool(false) },
        "downloads": 0,
        "likes": 0,
        "trendingScore": 0,
        "tags": m.tags,
        "pipeline_tag": m.pipeline_tag,
        "library_name": m.library_name,
    })
}

/// The Hub's search parameters, read for a search of this machine.
struct Query {
    text: String,
    author: Option<String>,
    /// Each must be the task, the library or a tag.
    filters: Vec<String>,
    sort: String,
    ascending: bool,
    limit: usize,
    cursor: usize,
    expand: Vec<String>,
}

impl Query {
    fn of(pairs: &[(String, String)]) -> Result<Query, HubError> {
        let one = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim().to_string());
        let all = |key: &str| -> Vec<String> {
            pairs
                .iter()
                .filter(|(k, _)| k == key || *k == format!("{key}[]"))
                .flat_map(|(_, v)| {
                    v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect::<Vec<_>>()
                })
                .collect()
        };
        let number = |key: &str, default: usize| -> Result<usize, HubError> {
            match one(key) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| {
                    HubError::new(StatusCode::BAD_REQUEST, "BadRequest", format!("{key} must be a number, not {v:?}"))
                }),
            }
        };
        let mut filters = all("filter");
        filters.extend(all("pipeline_tag"));
        filters.extend(all("library"));
        Ok(Query {
            text: one("search").unwrap_or_default().to_lowercase(),
            author: one("author").filter(|a| !a.is_empty()),
            filters,
            sort: one("sort").unwrap_or_default(),
            ascending: one("direction").as_deref() == Some("1"),
            limit: number("limit", PAGE)?.clamp(1, PAGE),
            cursor: number("cursor", 0)?,
            expand: all("expand"),
        })
    }

    fn matches(&self, m: &LibraryModel) -> bool {
        let tagged =
            |f: &String| m.pipeline_tag.as_ref() == Some(f) || m.library_name.as_ref() == Some(f) || m.tags.contains(f);
        m.id.to_lowercase().contains(&self.text)
            && self.author.as_ref().is_none_or(|a| m.id.split_once('/').is_some_and(|(owner, _)| owner == a))
            && self.filters.iter().all(tagged)
    }

    /// By the field `sort` names (descending unless `direction=1`, as the Hub sorts), then by id. A machine counts
    /// no downloads, likes or trend: those sort by id alone.
    fn sort(&self, entries: &mut [Value]) {
        let field = match self.sort.as_str() {
            "lastModified" | "last_modified" | "createdAt" | "created_at" => "lastModified",
            "id" | "modelId" => "id",
            _ => "",
        };
        let ascending = self.ascending || field == "id" && self.sort.is_empty();
        entries.sort_by(|a, b| {
            let key = |e: &Value| e.get(field).and_then(Value::as_str).unwrap_or_default().to_string();
            let by_field = if ascending { key(a).cmp(&key(b)) } else { key(b).cmp(&key(a)) };
            by_field.then_with(|| key_id(a).cmp(&key_id(b)))
        });
    }

    /// Only the fields `expand` names (and the id), as the Hub answers an `expand`.
    fn expanded(&self, entry: Value) -> Value {
        if self.expand.is_empty() {
            return entry;
        }
        let mut out = json!({ "_id": entry["_id"], "id": entry["id"] });
        for field in &self.expand {
            if let Some(v) = entry.get(field) {
                out[field] = v.clone();
            }
        }
        out
    }
}

fn key_id(e: &Value) -> String {
    e.get("id").and_then(Value::as_str).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes()).into_owned().collect()
    }

    fn model(id: &str, tags: &[&str], task: Option<&str>, at: u64) -> LibraryModel {
        let mut m: LibraryModel = serde_json::from_value(json!({
            "id": id, "displayName": id, "source": "hugging-face", "modelType": "text-generation",
            "typeOrigin": "hub", "status": "available", "revision": "main", "commit": null, "revisions": 1,
            "files": 1, "size": 1, "format": "gguf", "downloadedAt": at, "lastUsed": null, "path": "/x",
            "pipelineTag": task, "libraryName": "gguf", "architectures": [], "tags": tags, "gated": false,
            "error": null, "downloadId": null,
        }))
        .unwrap();
        m.tags = tags.iter().map(|t| t.to_string()).collect();
        m
    }

    #[test]
    fn a_search_of_this_machine_reads_the_hubs_parameters() {
        let a = model("acme/Tiny-Llama", &["gguf", "en"], Some("text-generation"), 10);
        let b = model("other/tiny-bert", &["en"], Some("fill-mask"), 20);
        let q = Query::of(&pairs("search=TINY&filter=en")).unwrap();
        assert!(q.matches(&a) && q.matches(&b));
        let q = Query::of(&pairs("search=tiny&author=acme&filter=text-generation,gguf")).unwrap();
        assert!(q.matches(&a) && !q.matches(&b));
        let q = Query::of(&pairs("pipeline_tag=fill-mask")).unwrap();
        assert!(!q.matches(&a) && q.matches(&b));
        let mut found = vec![entry(&a, false), entry(&b, false)];
        Query::of(&pairs("sort=lastModified")).unwrap().sort(&mut found);
        assert_eq!(found.iter().map(key_id).collect::<Vec<_>>(), ["other/tiny-bert", "acme/Tiny-Llama"]);
        Query::of(&pairs("sort=downloads")).unwrap().sort(&mut found);
        assert_eq!(found.iter().map(key_id).collect::<Vec<_>>(), ["acme/Tiny-Llama", "other/tiny-bert"]);
        let q = Query::of(&pairs("expand=downloads&expand[]=gated")).unwrap();
        assert_eq!(
            q.expanded(entry(&a, false)),
            json!({"_id": "acme/Tiny-Llama", "id": "acme/Tiny-Llama", "downloads": 0, "gated": false})
        );
        assert_eq!(Query::of(&pairs("limit=5000")).unwrap().limit, PAGE);
        assert!(Query::of(&pairs("limit=many")).is_err());
    }
}
