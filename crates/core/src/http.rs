//! What every source reads from an HTTP answer, read the same careful way: bodies up to a cap (a hostile server
//! cannot make us hold more than we asked for), `Content-Range`, and the `Link` header's next page. The parsers
//! never trust a number they cannot check, and refuse what does not match the grammar instead of guessing.

use reqwest::header::HeaderMap;

/// Why a capped body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {limit} bytes, more than such an answer can be")]
    TooLarge { limit: usize },
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// The whole body of `response`, refusing it as soon as it passes `limit` bytes (checked against the announced
/// `Content-Length` first, then while reading, since the announcement may lie).
pub async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends a GET or HEAD, once more when the first try went out on a kept-alive connection the other side had
/// already closed (a proxy such as tinyproxy closes idle ones): no answer came, and such a request may be repeated.
pub async fn send_idempotent(request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    let again = request.try_clone();
    match (request.send().await, again) {
        (Err(e), Some(again)) if closed_before_the_answer(&e) => {
            tracing::debug!(error = %e, "the connection was closed before the answer; sending the request again");
            again.send().await
        }
        (result, _) => result,
    }
}

/// Whether the connection closed before any answer to the request (hyper's incomplete message).
fn closed_before_the_answer(err: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message();
        }
        source = s.source();
    }
    false
}

/// A `Content-Range` header: `bytes START-END/TOTAL` (`end` inclusive), or `bytes */TOTAL` (no range, as a
/// `416` answers). The total may be `*` (unknown) in the first form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// `(start, end)`, inclusive; `None` for `bytes */TOTAL`.
    pub range: Option<(u64, u64)>,
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parses the header's value; `None` for anything that is not exactly the grammar, or a range whose end is
    /// before its start or past the total.
    pub fn parse(value: &str) -> Option<ContentRange> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
        };
        let total = match total {
            "*" => None,
            t => Some(number(t)?),
        };
        let range = match range {
            "*" => {
                total?;
                None
            }
            r => {
                let (start, end) = r.split_once('-')?;
                let (start, end) = (number(start)?, number(end)?);
                if end < start || total.is_some_and(|t| end >= t) {
                    return None;
                }
                Some((start, end))
            }
        };
        Some(ContentRange { range, total })
    }

    /// The header of an answer, if it has a valid one.
    pub fn of(headers: &HeaderMap) -> Option<ContentRange> {
        ContentRange::parse(headers.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?)
    }
}

/// The `rel="next"` target of a `Link` header (`<url>; rel="next"`, among other links).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// Headers from name and value pairs, for tests of what an answer means.
#[cfg(test)]
pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs.iter().map(|(k, v)| (reqwest::header::HeaderName::from_static(k), v.parse().unwrap())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_ranges_are_read_exactly() {
        let cr = |s| ContentRange::parse(s);
        assert_eq!(cr("bytes 100-199/200"), Some(ContentRange { range: Some((100, 199)), total: Some(200) }));
        assert_eq!(cr("bytes */200"), Some(ContentRange { range: None, total: Some(200) }));
        assert_eq!(cr("bytes 0-9/*"), Some(ContentRange { range: Some((0, 9)), total: None }));
        for bad in ["bytes 5-4/10", "bytes 0-10/10", "bytes */*", "bytes -1-5/10", "items 0-1/2", "bytes 0-1", ""] {
            assert_eq!(cr(bad), None, "{bad:?}");
        }
        assert_eq!(cr("bytes 0-1/99999999999999999999999"), None, "no overflow");
    }

    #[test]
    fn next_links_are_read_from_the_link_header() {
        let mut h = HeaderMap::new();
        h.insert("link", "<https://h/api/x?cursor=abc>; rel=\"next\"".parse().unwrap());
        assert_eq!(next_link(&h).as_deref(), Some("https://h/api/x?cursor=abc"));
        h.insert("link", "<https://h/p1>; rel=\"prev\", <https://h/p3>; rel=\"next\"".parse().unwrap());
        assert_eq!(next_link(&h).as_deref(), Some("https://h/p3"));
        h.insert("link", "<https://h/p1>; rel=\"prev\"".parse().unwrap());
        assert_eq!(next_link(&h), None);
        h.insert("link", "https://h/p1; rel=\"next\"".parse().unwrap());
        assert_eq!(next_link(&h), None, "a target must be in angle brackets");
        h.insert("link", "<https://h/p1>; title=\"rel=\\\"next\\\"\"".parse().unwrap());
        assert_eq!(next_link(&h), None, "rel=next inside another parameter is not the relation");
    }

    proptest! {
        #[test]
        fn content_range_round_trips_and_never_panics(start in 0u64..1 << 40, len in 1u64..1 << 30, extra in 0u64..1 << 30) {
            let (end, total) = (start + len - 1, start + len + extra);
            let parsed = ContentRange::parse(&format!("bytes {start}-{end}/{total}")).unwrap();
            prop_assert_eq!(parsed, ContentRange { range: Some((start, end)), total: Some(total) });
            prop_assert_eq!(ContentRange::parse(&format!("bytes */{total}")).unwrap().total, Some(total));
        }

        #[test]
        fn content_range_parses_any_text_without_panicking(s in ".{0,64}") {
            if let Some(cr) = ContentRange::parse(&s) {
                if let (Some((a, b)), Some(t)) = (cr.range, cr.total) {
                    prop_assert!(a <= b && b < t);
                }
            }
        }

        #[test]
        fn link_headers_never_panic_and_only_bracketed_next_targets_come_back(s in "[ -~]{0,80}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = s.parse() {
                h.insert("link", v);
                if let Some(target) = next_link(&h) {
                    let bracketed = format!("<{}>", target);
                    prop_assert!(s.contains(&bracketed));
                }
            }
        }
    }
}
