//! Where a file's bytes come from (the hub, with its token kept to the hub's origin, or a plain URL), and reading
//! a body chunk by chunk with a stall timeout.

use crate::hub::{HubClient, HubError};
use bytes::Bytes;
use reqwest::header::{IF_RANGE, RANGE};
use reqwest::{Response, Url};
use std::time::Duration;

/// Where the bytes come from, and who may see the token.
#[derive(Clone)]
pub(crate) enum Origin {
    /// A file of a hub commit: the client sends the token to the hub's own origin only.
    Hub { hub: Box<HubClient>, url: Url, repo: crate::cache::RepoId, commit: String, path: String },
    /// A direct URL: a plain client (through `proxies`, which its errors name), no token.
    Plain { http: reqwest::Client, proxies: crate::proxy::Proxies, url: Url },
}

impl Origin {
    /// Whether the token goes with some of its requests (a hub file), so a redirect's target is worth keeping.
    pub fn is_hub(&self) -> bool {
        matches!(self, Origin::Hub { .. })
    }

    /// What messages call the file's source: the repo, or the URL without its query.
    pub fn label(&self) -> String {
        match self {
            Origin::Hub { repo, .. } => repo.to_string(),
            Origin::Plain { url, .. } => crate::logs::redact_url(url.as_str()),
        }
    }

    /// Bytes `start..=end` (a closed range, for one piece of a file fetched in parallel), from `target` when a
    /// redirect led there before. A URL's `validator` goes with it as `If-Range`.
    pub async fn request_range(
        &self,
        target: Option<&Url>,
        start: u64,
        end: u64,
        validator: Option<&str>,
    ) -> Result<Response, HubError> {
        let range = format!("bytes={start}-{end}");
        match self {
            Origin::Hub { hub, url, .. } => hub.get_range(target.unwrap_or(url).clone(), range).await,
            Origin::Plain { http, proxies, url } => {
                let target = target.unwrap_or(url);
                let mut request = http.get(target.clone()).header(RANGE, range);
                if let Some(validator) = validator {
                    request = request.header(IF_RANGE, validator);
                }
                send_plain(proxies, target, request).await
            }
        }
    }

    pub async fn request(&self, offset: u64, if_range: Option<&str>) -> Result<Response, HubError> {
        match self {
            Origin::Hub { hub, url, .. } => hub.get(url.clone(), Some(offset)).await,
            Origin::Plain { http, proxies, url } => {
                let mut request = http.get(url.clone());
                if offset > 0 {
                    request = request.header(RANGE, format!("bytes={offset}-"));
                    if let Some(validator) = if_range {
                        request = request.header(IF_RANGE, validator);
                    }
                }
                send_plain(proxies, url, request).await
            }
        }
    }

    /// The error a failed status stands for.
    pub fn status_error(&self, response: &Response) -> HubError {
        match self {
            Origin::Hub { hub, repo, commit, path, .. } => hub.status_error(response, repo, Some(commit), Some(path)),
            Origin::Plain { url, .. } => {
                let status = response.status();
                HubError::Status {
                    url: crate::logs::redact_url(url.as_str()),
                    status: status.as_u16(),
                    message: Some(match status.as_u16() {
                        401 | 403 => "the server refused access; check the link (it may have expired)".into(),
                        404 | 410 => "there is no file at this URL; check it".into(),
                        _ => status.canonical_reason().unwrap_or("error").to_string(),
                    }),
                }
            }
        }
    }
}

/// Sends a URL's request: a proxy's `407`, or no connection through it, is said to be the proxy's.
async fn send_plain(
    proxies: &crate::proxy::Proxies,
    url: &Url,
    request: reqwest::RequestBuilder,
) -> Result<Response, HubError> {
    let response =
        crate::http::send_idempotent(request).await.map_err(|e| HubError::from_transport(proxies, url, &e))?;
    match HubError::from_proxy_answer(proxies, url, &response) {
        Some(refused) => Err(refused),
        None => Ok(response),
    }
}

/// The next chunk of a body; `Err` with the reason when the connection failed or no byte came for `stall`.
pub(crate) async fn next_chunk(response: &mut Response, stall: Duration) -> Result<Option<Bytes>, String> {
    match tokio::time::timeout(stall, response.chunk()).await {
        Err(_) => Err(format!("no bytes for {} s", stall.as_secs_f32())),
        Ok(result) => result.map_err(|e| e.to_string()),
    }
}
