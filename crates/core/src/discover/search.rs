//! The hub's model search: `GET {endpoint}/api/models` with `search`, `author`, `filter` (a task, a library such
//! as `gguf`, any tag), `sort` and `limit`, one page at a time through the `Link: rel="next"` header.

use super::DiscoverError;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What to search for. Every field but `text` is optional; an empty `text` lists the most popular models.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct SearchQuery {
    pub text: String,
    /// A user or organisation: only its models.
    pub author: Option<String>,
    /// A pipeline tag such as `text-generation` or `automatic-speech-recognition`.
    pub task: Option<String>,
    /// A library such as `gguf`, `transformers`, `diffusers`.
    pub library: Option<String>,
    /// Further tags every result must carry.
    pub tags: Vec<String>,
    pub sort: SearchSort,
    /// Results per page: 1 to 100, default 30.
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SearchSort {
    #[default]
    Downloads,
    Likes,
    Trending,
    Updated,
}

impl SearchSort {
    pub const ALL: [SearchSort; 4] =
        [SearchSort::Downloads, SearchSort::Likes, SearchSort::Trending, SearchSort::Updated];

    /// The hub's name for it.
    pub fn param(self) -> &'static str {
        match self {
            SearchSort::Downloads => "downloads",
            SearchSort::Likes => "likes",
            SearchSort::Trending => "trendingScore",
            SearchSort::Updated => "lastModified",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SearchSort::Downloads => "downloads",
            SearchSort::Likes => "likes",
            SearchSort::Trending => "trending",
            SearchSort::Updated => "updated",
        }
    }

    pub fn parse(s: &str) -> Option<SearchSort> {
        SearchSort::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

pub const DEFAULT_LIMIT: u32 = 30;
pub const MAX_LIMIT: u32 = 100;
const MAX_TEXT: usize = 200;

/// The fields asked of the hub for each result (it sends only these, plus the id).
const EXPAND: [&str; 7] = ["author", "downloads", "likes", "lastModified", "pipeline_tag", "library_name", "gated"];

impl SearchQuery {
    pub fn text(text: &str) -> SearchQuery {
        SearchQuery { text: text.to_string(), ..SearchQuery::default() }
    }

    /// The query string, after checking every part; `filter` repeats for the task, the library and each tag.
    pub fn params(&self) -> Result<Vec<(&'static str, String)>, DiscoverError> {
        let bad = |what: String| Err(DiscoverError::InvalidQuery(what));
        let text = self.text.trim();
        if text.chars().count() > MAX_TEXT {
            return bad(format!("the search text is longer than {MAX_TEXT} characters: shorten it"));
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return bad(format!("the result limit must be between 1 and {MAX_LIMIT}, not {limit}"));
        }
        let mut params = Vec::new();
        if !text.is_empty() {
            params.push(("search", text.to_string()));
        }
        if let Some(author) = self.author.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            if !author.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || author.len() > 96 {
                return bad(format!(
                    "\"{author}\" is not a user or organisation name (letters, digits, '-', '_' and '.')"
                ));
            }
            params.push(("author", author.to_string()));
        }
        let filters = self.task.iter().chain(self.library.iter()).chain(self.tags.iter());
        for filter in filters.map(|f| f.trim()).filter(|f| !f.is_empty()) {
            if filter.len() > 100 || filter.chars().any(|c| c.is_control() || c == ',') {
                return bad(format!("\"{filter}\" is not a task, library or tag"));
            }
            params.push(("filter", filter.to_string()));
        }
        params.push(("sort", self.sort.param().to_string()));
        params.push(("limit", limit.to_string()));
        params.extend(EXPAND.iter().map(|e| ("expand", e.to_string())));
        Ok(params)
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub id: String,
    pub author: Option<String>,
    /// The pipeline tag, such as `text-generation`.
    pub task: Option<String>,
    pub library: Option<String>,
    pub downloads: u64,
    pub likes: u64,
    /// ISO 8601, as the hub sends it.
    pub last_modified: Option<String>,
    /// Needs a token with access (the hub's `gated` is `"auto"` or `"manual"`).
    pub gated: bool,
    /// Some snapshot of it is complete in the local cache.
    pub installed: bool,
}

/// A page of results, and the cursor of the next one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    pub models: Vec<SearchHit>,
    /// Pass back as `next` for the following page; absent on the last one.
    pub next: Option<String>,
}

impl SearchPage {
    /// From the hub's entries; an entry without an id is skipped, a missing count is 0.
    pub fn from_entries(entries: Vec<serde_json::Value>, next: Option<String>) -> SearchPage {
        let models = entries
            .into_iter()
            .filter_map(|e| {
                let text = |k: &str| e.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                let count = |k: &str| e.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                let id = text("id").or_else(|| text("modelId"))?;
                Some(SearchHit {
                    author: text("author").or_else(|| id.split_once('/').map(|(a, _)| a.to_string())),
                    task: text("pipeline_tag"),
                    library: text("library_name"),
                    downloads: count("downloads"),
                    likes: count("likes"),
                    last_modified: text("lastModified"),
                    gated: matches!(e.get("gated"), Some(serde_json::Value::String(_) | serde_json::Value::Bool(true))),
                    installed: false,
                    id,
                })
            })
            .collect();
        SearchPage { models, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_the_hubs_parameters() {
        let q = SearchQuery {
            text: " llama ".into(),
            author: Some("acme".into()),
            task: Some("text-generation".into()),
            library: Some("gguf".into()),
            tags: vec!["en".into()],
            sort: SearchSort::Trending,
            limit: Some(5),
        };
        let p = q.params().unwrap();
        let get = |k: &str| p.iter().filter(|(n, _)| *n == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(get("search"), ["llama"]);
        assert_eq!(get("author"), ["acme"]);
        assert_eq!(get("filter"), ["text-generation", "gguf", "en"]);
        assert_eq!(get("sort"), ["trendingScore"]);
        assert_eq!(get("limit"), ["5"]);
        assert!(get("expand").contains(&"gated"));
    }

    #[test]
    fn bad_queries_are_refused_with_the_reason() {
        let too_many = SearchQuery { limit: Some(1000), ..SearchQuery::text("x") };
        assert!(too_many.params().unwrap_err().to_string().contains("between 1 and 100"));
        let author = SearchQuery { author: Some("a/b".into()), ..SearchQuery::default() };
        assert!(author.params().unwrap_err().to_string().contains("not a user or organisation"));
        assert!(SearchQuery::text(&"x".repeat(201)).params().is_err());
    }

    #[test]
    fn entries_with_missing_fields_still_read() {
        let page = SearchPage::from_entries(
            vec![
                serde_json::json!({"id": "a/b", "gated": "manual", "downloads": 5}),
                serde_json::json!({"likes": 3}),
                serde_json::json!({"modelId": "c", "gated": false}),
            ],
            None,
        );
        assert_eq!(page.models.len(), 2);
        assert!(page.models[0].gated && page.models[0].downloads == 5);
        assert_eq!(page.models[0].author.as_deref(), Some("a"));
        assert!(!page.models[1].gated);
    }
}
