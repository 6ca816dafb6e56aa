//! A model file from a plain http(s) URL into the app's models folder: resumed with `Range` after a cut or a
//! restart, retried with backoff, named by `Content-Disposition` or the URL (sanitised), sha256 computed while
//! streaming (and md5 when one is given to check), verified, then renamed into place. The hub token is never
//! sent: these are not hub requests.

use super::progress::{Counters, RateLimiter};
use super::DownloadError;
use crate::hub::{HubError, RetryPolicy};
use crate::local::{self, FileRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

/// A direct download: the URL, an optional checksum to verify, an optional file name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct UrlSource {
    pub url: String,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    /// The file name to store it under (else from `Content-Disposition`, else from the URL).
    pub name: Option<String>,
}

impl UrlSource {
    /// Checks the URL and checksums; returns the id the download shows under (`local/{name}`).
    pub fn check(&mut self) -> Result<String, DownloadError> {
        let bad = |why: String| DownloadError::InvalidUrl { url: self.url.clone(), reason: why };
        let parsed = reqwest::Url::parse(self.url.trim()).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(bad("only http and https URLs can be downloaded".into()));
        }
        for (name, value, len) in [("sha256", &mut self.sha256, 64), ("md5", &mut self.md5, 32)] {
            if let Some(v) = value.as_mut() {
                *v = v.trim().to_ascii_lowercase();
                if v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(format!("the {name} must be {len} hexadecimal characters")));
                }
            }
        }
        self.url = parsed.to_string();
        Ok(format!("{}{}", local::LOCAL_PREFIX, self.file_name_from_url()))
    }

    /// The name the URL itself suggests (the given name first).
    pub fn file_name_from_url(&self) -> String {
        if let Some(name) = self.name.as_deref().and_then(local::sanitize_file_name) {
            return name;
        }
        let from_path = reqwest::Url::parse(&self.url).ok().and_then(|u| {
            let last = u.path_segments()?.rev().find(|s| !s.is_empty())?.to_string();
            local::sanitize_file_name(&percent_decode(&last))
        });
        from_path.unwrap_or_else(|| "download".into())
    }

    /// Where the bytes gather until verified: named by the URL, so a restart finds them.
    pub fn part_path(&self, models: &Path) -> PathBuf {
        let key = crate::format::hex(&Sha256::digest(self.url.as_bytes()));
        models.join(".partial").join(format!("{}.part", &key[..24]))
    }
}

/// `%XX` escapes decoded (a stray `%` stays as it is; bytes that are not UTF-8 become U+FFFD).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The file name a `Content-Disposition` header gives (`filename*=UTF-8''…` first, then `filename="…"`).
pub fn disposition_name(header: &str) -> Option<String> {
    let mut plain = None;
    for part in header.split(';').map(str::trim) {
        if let Some(v) = part.strip_prefix("filename*=") {
            let v = v.trim_matches('"');
            let encoded = v.split_once("''").map(|(_, n)| n).unwrap_or(v);
            return local::sanitize_file_name(&percent_decode(encoded));
        }
        if let Some(v) = part.strip_prefix("filename=") {
            plain = local::sanitize_file_name(v.trim_matches('"'));
        }
    }
    plain
}

pub(crate) struct UrlJob {
    pub http: reqwest::Client,
    pub source: UrlSource,
    pub models: PathBuf,
    pub counters: Arc<Counters>,
    pub limiter: Arc<RateLimiter>,
    pub cancel: CancellationToken,
    pub retry: RetryPolicy,
    pub stall_timeout: Duration,
}

impl UrlJob {
    /// Fetches, verifies and places the file; returns where it is.
    pub async fn run(self) -> Result<PathBuf, DownloadError> {
        let part = self.source.part_path(&self.models);
        std::fs::create_dir_all(part.parent().unwrap())
            .map_err(|e| DownloadError::io(format!("create {}", self.models.display()), e))?;
        let mut attempt = 0;
        let name = loop {
            attempt += 1;
            match self.once(&part).await {
                Ok(name) => break name,
                Err(DownloadError::Cancelled) => return Err(DownloadError::Cancelled),
                Err(e) if retryable(&e) && attempt < self.retry.attempts => {
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(DownloadError::Cancelled),
                        _ = tokio::time::sleep(self.retry.delay(attempt, None)) => {}
                    }
                }
                Err(e) => return Err(e),
            }
        };
        self.finish(&part, &name)
    }

    /// One request, from what is already on disk. Returns the file name to place it under.
    async fn once(&self, part: &Path) -> Result<String, DownloadError> {
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let url = reqwest::Url::parse(&self.source.url).expect("checked when queued");
        let mut request = self.http.get(url.clone());
        if have > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let send = request.send();
        let mut response = tokio::select! {
            _ = self.cancel.cancelled() => return Err(DownloadError::Cancelled),
            r = send => r.map_err(|e| DownloadError::Hub(HubError::from_reqwest(&url, &e)))?,
        };
        let status = response.status();
        if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
            // Everything is already here (the cut came after the last byte).
            self.counters.bytes_total.store(have, Ordering::Relaxed);
            self.counters.bytes_done.store(have, Ordering::Relaxed);
            return Ok(self.name_for(&response));
        }
        if !status.is_success() {
            return Err(DownloadError::Hub(HubError::Status {
                url: self.source.url.clone(),
                status: status.as_u16(),
                message: Some(match status.as_u16() {
                    401 | 403 => "the server refused access; check the link (it may have expired)".into(),
                    404 | 410 => "there is no file at this URL; check it".into(),
                    _ => status.canonical_reason().unwrap_or("error").to_string(),
                }),
            }));
        }
        let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0;
        let start = if resumed { have } else { 0 };
        let total = response.content_length().map(|n| n + start);
        self.counters.bytes_total.store(total.unwrap_or(0), Ordering::Relaxed);
        self.counters.bytes_done.store(start, Ordering::Relaxed);
        let name = self.name_for(&response);
        if let Some(total) = total {
            let free = crate::disk::free_space(&self.models).unwrap_or(u64::MAX);
            if free < total - start {
                return Err(DownloadError::InsufficientSpace {
                    repo: name.clone(),
                    path: self.models.display().to_string(),
                    needed: total - start,
                    free,
                });
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(resumed)
            .truncate(!resumed)
            .open(part)
            .map_err(|e| DownloadError::io(format!("write {}", part.display()), e))?;
        loop {
            let next = tokio::select! {
                _ = self.cancel.cancelled() => return Err(DownloadError::Cancelled),
                r = tokio::time::timeout(self.stall_timeout, response.chunk()) => r,
            };
            let chunk = match next {
                Err(_) => return Err(transfer(&name, "no bytes arrived for too long")),
                Ok(Err(e)) => return Err(transfer(&name, &e.to_string())),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => c,
            };
            self.limiter.take(chunk.len() as u64).await;
            file.write_all(&chunk).map_err(|e| DownloadError::io(format!("write {}", part.display()), e))?;
            self.counters.bytes_done.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        file.sync_all().map_err(|e| DownloadError::io(format!("write {}", part.display()), e))?;
        let got = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if let Some(total) = total {
            if got < total {
                return Err(transfer(&name, &format!("the body ended at {got} of {total} bytes")));
            }
        }
        Ok(name)
    }

    fn name_for(&self, response: &reqwest::Response) -> String {
        if self.source.name.is_none() {
            let header = response.headers().get(reqwest::header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok());
            if let Some(name) = header.and_then(disposition_name) {
                return name;
            }
        }
        self.source.file_name_from_url()
    }

    /// Hashes what arrived, checks it against what was given, and moves it into place with its record.
    fn finish(&self, part: &Path, name: &str) -> Result<PathBuf, DownloadError> {
        self.counters.verifying.fetch_add(1, Ordering::Relaxed);
        let hashed = local::hash_file(part, self.source.md5.is_some(), |_| Ok(()));
        self.counters.verifying.fetch_sub(1, Ordering::Relaxed);
        let (sha256, md5) = hashed.map_err(|e| DownloadError::io(format!("read {}", part.display()), e))?;
        for (algorithm, expected, actual) in
            [("sha256", &self.source.sha256, Some(&sha256)), ("md5", &self.source.md5, md5.as_ref())]
        {
            if let (Some(expected), Some(actual)) = (expected, actual) {
                if expected != actual {
                    let _ = std::fs::remove_file(part);
                    return Err(DownloadError::ChecksumMismatch {
                        repo: self.source.url.clone(),
                        path: name.to_string(),
                        algorithm,
                        expected: expected.clone(),
                        actual: actual.clone(),
                    });
                }
            }
        }
        // The same content already there is kept; another file of that name keeps its name, this one gets a number.
        let mut target = self.models.join(name);
        let mut n = 2;
        while target.exists() {
            if local::read_record(&self.models, &target.file_name().unwrap().to_string_lossy())
                .is_some_and(|r| r.sha256 == sha256)
            {
                let _ = std::fs::remove_file(part);
                return Ok(target);
            }
            target = self.models.join(format!("{n}-{name}"));
            n += 1;
        }
        let final_name = target.file_name().unwrap().to_string_lossy().to_string();
        let record =
            FileRecord { sha256, md5, url: Some(self.source.url.clone()), added_at: crate::format::now_unix() };
        local::write_record(&self.models, &final_name, &record)
            .map_err(|e| DownloadError::io(format!("record {final_name}"), std::io::Error::other(e.to_string())))?;
        std::fs::rename(part, &target).map_err(|e| DownloadError::io(format!("move into {}", target.display()), e))?;
        self.counters.files_done.fetch_add(1, Ordering::Relaxed);
        Ok(target)
    }
}

fn transfer(name: &str, reason: &str) -> DownloadError {
    DownloadError::Transfer { repo: name.to_string(), path: name.to_string(), reason: reason.to_string(), attempts: 1 }
}

fn retryable(e: &DownloadError) -> bool {
    match e {
        DownloadError::Transfer { .. } => true,
        DownloadError::Hub(h) => h.is_transient(),
        _ => false,
    }
}

/// Deletes the partial bytes of a cancelled download.
pub fn discard(source: &UrlSource, models: &Path) {
    let _ = std::fs::remove_file(source.part_path(models));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_content_disposition_or_the_url_and_are_sanitised() {
        assert_eq!(disposition_name("attachment; filename=\"model.gguf\"").as_deref(), Some("model.gguf"));
        assert_eq!(disposition_name("attachment; filename*=UTF-8''caf%C3%A9.gguf").as_deref(), Some("café.gguf"));
        assert_eq!(disposition_name("attachment; filename=\"../../etc/passwd\"").as_deref(), Some("passwd"));
        assert_eq!(disposition_name("inline"), None);
        // A `%` before a multi-byte character is no escape (the hand-written decoder sliced inside the character).
        assert_eq!(disposition_name("attachment; filename*=UTF-8''%a\u{e9}.gguf").as_deref(), Some("%a\u{e9}.gguf"));
        let s = |url: &str| UrlSource { url: url.into(), ..UrlSource::default() }.file_name_from_url();
        assert_eq!(s("https://x.test/a/b/My%20Model.Q4.gguf?download=1"), "My Model.Q4.gguf");
        assert_eq!(s("https://x.test/"), "download");
        assert_eq!(s("https://x.test/..%2F.hidden"), "hidden");
    }

    #[test]
    fn bad_urls_and_checksums_are_refused() {
        let mut bad = UrlSource { url: "file:///etc/passwd".into(), ..UrlSource::default() };
        assert!(bad.check().unwrap_err().to_string().contains("only http and https"));
        let mut short =
            UrlSource { url: "https://x.test/m.gguf".into(), sha256: Some("abc".into()), ..UrlSource::default() };
        assert!(short.check().unwrap_err().to_string().contains("64 hexadecimal"));
        let mut ok = UrlSource {
            url: "https://x.test/m.gguf".into(),
            md5: Some("D41D8CD98F00B204E9800998ECF8427E".into()),
            ..UrlSource::default()
        };
        assert_eq!(ok.check().unwrap(), "local/m.gguf");
        assert_eq!(ok.md5.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"));
    }
}
