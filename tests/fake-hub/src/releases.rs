//! llama.cpp's releases as GitHub's API serves them, on the hub's own address: `/repos/ggml-org/llama.cpp/releases/
//! latest` and `…/releases/tags/{tag}` answer `{tag_name, assets: [{name, browser_download_url, size, digest}]}`,
//! and an asset's `browser_download_url` (`/ggml-org/llama.cpp/releases/download/{tag}/{name}`) redirects, as
//! GitHub's does, to where its bytes are (`/release-assets/{tag}/{name}`, with `Range`). The last release added is
//! the latest.

use crate::{file_reply, hex, FakeHub, Reply, Request, State};
use sha2::Digest as _;
use std::sync::Arc;

const API: &str = "/repos/ggml-org/llama.cpp/releases";

pub(crate) struct Release {
    tag: String,
    /// Name, bytes, the digest listed (`None`: no digest, as releases before GitHub published them).
    assets: Vec<(String, Arc<Vec<u8>>, Option<String>)>,
}

impl FakeHub {
    /// Adds a release with these assets (name, bytes), listed with their true `sha256:` digests, or with
    /// `digest_override` for every one of them (an empty text: no digest at all).
    pub fn add_release(&self, tag: &str, assets: Vec<(String, Vec<u8>)>, digest_override: Option<String>) {
        let assets = assets
            .into_iter()
            .map(|(name, bytes)| {
                let digest = match &digest_override {
                    Some(d) if d.is_empty() => None,
                    Some(d) => Some(d.clone()),
                    None => Some(format!("sha256:{}", hex(&sha2::Sha256::digest(&bytes)))),
                };
                (name, Arc::new(bytes), digest)
            })
            .collect();
        self.state.lock().unwrap().releases.push(Release { tag: tag.into(), assets });
    }

    /// The releases API to give clients: `{endpoint}/repos/ggml-org/llama.cpp/releases`.
    pub fn releases_url(&self) -> String {
        format!("{}{API}", self.endpoint())
    }
}

/// The answer to a releases path, or `None` for any other path.
pub(crate) fn route(request: &Request, path: &str, state: &State) -> Option<Reply> {
    let base = format!("http://{}", request.headers.get("host").map_or("127.0.0.1", String::as_str));
    if let Some(which) = path.strip_prefix(API).and_then(|p| p.strip_prefix('/')) {
        let release = match which.strip_prefix("tags/") {
            Some(tag) => state.releases.iter().find(|r| r.tag == tag),
            None if which == "latest" => state.releases.last(),
            None => return Some(Reply::json(404, serde_json::json!({ "message": "Not Found" }))),
        };
        let Some(release) = release else {
            return Some(Reply::json(404, serde_json::json!({ "message": "Not Found" })));
        };
        let assets: Vec<_> = release
            .assets
            .iter()
            .map(|(name, bytes, digest)| {
                serde_json::json!({
                    "name": name,
                    "size": bytes.len(),
                    "digest": digest,
                    "browser_download_url": format!("{base}/ggml-org/llama.cpp/releases/download/{}/{name}", release.tag),
                })
            })
            .collect();
        return Some(Reply::json(200, serde_json::json!({ "tag_name": release.tag, "assets": assets })));
    }
    if let Some(rest) = path.strip_prefix("/ggml-org/llama.cpp/releases/download/") {
        let mut reply = Reply::json(302, serde_json::json!({}));
        reply.headers.push(("Location".into(), format!("/release-assets/{rest}")));
        return Some(reply);
    }
    let (tag, name) = path.strip_prefix("/release-assets/")?.split_once('/')?;
    let found = state.releases.iter().filter(|r| r.tag == tag).flat_map(|r| &r.assets).find(|(n, ..)| n == name);
    Some(match found {
        Some((_, bytes, _)) => file_reply(request, bytes.clone(), &format!("{tag}/{name}"), tag, ""),
        None => Reply::error(404, "NotFound", "no such asset"),
    })
}

/// A release archive in llama.cpp's shape (`build/bin/llama-server`, executable), as a `.tar.gz`.
pub fn tar_gz_release(program: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for dir in ["build/", "build/bin/"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty()).expect("a folder entry");
    }
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o755);
    header.set_size(program.len() as u64);
    tar.append_data(&mut header, "build/bin/llama-server", program).expect("the program entry");
    tar.into_inner().and_then(|gz| gz.finish()).expect("the archive")
}

impl FakeHub {
    /// A release `tag` offering this machine's CPU build (`llama-{tag}-bin-ubuntu-x64.tar.gz`) of `program`.
    pub fn add_llama_cpp_release(&self, tag: &str, program: &[u8], digest_override: Option<String>) {
        let name = format!("llama-{tag}-bin-ubuntu-x64.tar.gz");
        self.add_release(tag, vec![(name, tar_gz_release(program))], digest_override);
    }
}
