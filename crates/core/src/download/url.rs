//! A model file from a plain http(s) URL into the app's models folder, through the ranged fetch every download
//! shares ([`super::ranged`]: resumed with `Range` and `If-Range` after a cut or a restart, retried with backoff,
//! every answer checked against what was asked), under a lock so that two processes never write one partial file;
//! named by `Content-Disposition` or the URL (sanitised), sha256 computed while streaming (and md5 when one is
//! given to check), verified, then placed under a name no other file has. The hub token is never sent: these are
//! not hub requests.

use super::hasher::Hasher;
use super::origin::Origin;
use super::progress::{Counters, RateLimiter};
use super::ranged::RangedFetch;
use super::DownloadError;
use crate::cache::lock;
use crate::hub::RetryPolicy;
use crate::models_folder::{self as local, FileRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

/// A direct download: the URL, an optional checksum to verify, an optional file name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
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
    /// The proxies `http` goes through, for messages.
    pub proxies: crate::proxy::Proxies,
    pub source: UrlSource,
    pub models: PathBuf,
    pub counters: Arc<Counters>,
    pub limiter: Arc<RateLimiter>,
    pub cancel: CancellationToken,
    pub retry: RetryPolicy,
    pub stall_timeout: Duration,
    /// Connections the file may use.
    pub connections: super::parts::Connections,
}

impl UrlJob {
    /// Fetches, verifies and places the file; returns where it is.
    pub async fn run(self) -> Result<PathBuf, DownloadError> {
        let part = self.source.part_path(&self.models);
        fs::create_dir_all(part.parent().unwrap())
            .map_err(|e| DownloadError::io(format!("creating {}", self.models.display()), e))?;
        // One writer per URL: the app and `mm` downloading the same URL take turns, the second finding the
        // first's bytes.
        let cancel = self.cancel.clone();
        let _lock = lock::lock_at(&part.with_extension("lock"), || cancel.is_cancelled())
            .await
            .map_err(|e| DownloadError::io(format!("locking {}", part.display()), e))?
            .ok_or(DownloadError::Cancelled)?;
        // A resumed job counts again from what is on disk.
        self.counters.bytes_done.store(0, Ordering::Relaxed);
        self.counters.bytes_total.store(0, Ordering::Relaxed);
        let url = reqwest::Url::parse(&self.source.url).expect("checked when queued");
        let label = self.source.file_name_from_url();
        let checked = self.source.sha256.is_some() || self.source.md5.is_some();
        tracing::debug!(file = %label, transport = "http", checked, "fetching");
        let fetched = RangedFetch {
            origin: Origin::Plain { http: self.http.clone(), proxies: self.proxies.clone(), url },
            part: part.clone(),
            size: None,
            validator_file: Some(validator_path(&part)),
            verified_at_end: checked,
            hasher: Hasher::sha256(self.source.md5.is_some()),
            // Messages (and so the logs) name the URL without its query: a signed link's signature stays out.
            repo: crate::logs::redact_url(&self.source.url),
            path: label,
            stall_timeout: self.stall_timeout,
            retry: self.retry,
            limiter: self.limiter.clone(),
            counters: self.counters.clone(),
            cancel: self.cancel.clone(),
            report_total: true,
            connections: self.connections,
        }
        .run()
        .await?;
        let name = match (&self.source.name, fetched.disposition.as_deref().and_then(disposition_name)) {
            (None, Some(name)) => name,
            _ => self.source.file_name_from_url(),
        };
        self.finish(&part, &name, fetched.digest, fetched.md5)
    }

    /// Checks what arrived against what was given, and moves it into place with its record.
    fn finish(&self, part: &Path, name: &str, sha256: String, md5: Option<String>) -> Result<PathBuf, DownloadError> {
        for (algorithm, expected, actual) in
            [("sha256", &self.source.sha256, Some(&sha256)), ("md5", &self.source.md5, md5.as_ref())]
        {
            if let (Some(expected), Some(actual)) = (expected, actual) {
                if expected != actual {
                    remove_partial(part);
                    return Err(DownloadError::ChecksumMismatch {
                        repo: crate::logs::redact_url(&self.source.url),
                        path: name.to_string(),
                        algorithm,
                        expected: expected.clone(),
                        actual: actual.clone(),
                    });
                }
            }
        }
        // The same content already there is kept; another file of that name keeps its name, this one gets a
        // number. The name is taken in one step, so a second writer that saw it free never replaces this file.
        let place = |e| DownloadError::io(format!("placing {name} in {}", self.models.display()), e);
        for n in 1.. {
            let candidate = if n == 1 { name.to_string() } else { format!("{n}-{name}") };
            let target = self.models.join(&candidate);
            if local::read_record(&self.models, &candidate).is_some_and(|r| r.sha256 == sha256) && target.exists() {
                remove_partial(part);
                return Ok(target);
            }
            if crate::disk::place_new(part, &target).map_err(place)? {
                let record =
                    FileRecord { sha256, md5, url: Some(self.source.url.clone()), added_at: crate::format::now_unix() };
                local::write_record(&self.models, &candidate, &record)
                    .map_err(|e| DownloadError::io(format!("record {candidate}"), e))?;
                let _ = fs::remove_file(validator_path(part));
                self.counters.files_done.fetch_add(1, Ordering::Relaxed);
                return Ok(target);
            }
        }
        unreachable!("some numbered name is free")
    }
}

/// Removes a partial file and its validator (the caller holds the URL's lock).
fn remove_partial(part: &Path) {
    let _ = fs::remove_file(part);
    let _ = fs::remove_file(validator_path(part));
    let _ = fs::remove_file(super::parts::record_path(part));
}

/// Where the validator (`ETag` or `Last-Modified`) of a partial file is kept, for `If-Range` on resume.
fn validator_path(part: &Path) -> PathBuf {
    part.with_extension("validator")
}

/// Deletes the partial bytes of a cancelled or refused download, with their validator.
/// Left alone when another process holds the URL's lock (it is writing those bytes).
pub fn discard(source: &UrlSource, models: &Path) {
    let part = source.part_path(models);
    let Ok(Some(_lock)) = lock::try_lock_at(&part.with_extension("lock")) else { return };
    remove_partial(&part);
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

    proptest::proptest! {
        #[test]
        fn content_disposition_names_are_always_plain_file_names(header in "\\PC{0,80}") {
            if let Some(name) = disposition_name(&header) {
                proptest::prop_assert!(!name.is_empty() && !name.contains('/') && !name.contains('\\'));
                proptest::prop_assert!(!name.starts_with('.') && !name.chars().any(char::is_control));
            }
        }
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
