//! What people type or paste to name a repo: `org/name`, `org/name@revision`, or a hub URL such as
//! `https://huggingface.co/org/name/tree/v1.0` or `.../blob/main/model.gguf`.

use crate::cache::layout::InvalidRepoId;
use crate::cache::RepoId;

/// The repo and, when the text names one, the revision.
pub fn parse_repo_reference(input: &str) -> Result<(RepoId, Option<String>), InvalidRepoId> {
    let text = input.trim();
    let path = match text.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, path)| path).unwrap_or(""),
        None => text,
    };
    let path = path.split(['?', '#']).next().unwrap_or("").trim_matches('/');
    let path = path.strip_prefix("models/").unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    // org/name/{tree,blob,resolve}/{revision}/...
    if parts.len() >= 4 && matches!(parts[2], "tree" | "blob" | "resolve") {
        return Ok((RepoId::parse(&format!("{}/{}", parts[0], parts[1]))?, Some(parts[3].to_string())));
    }
    if text.contains("://") && parts.len() > 2 {
        return Ok((RepoId::parse(&format!("{}/{}", parts[0], parts[1]))?, None));
    }
    match path.split_once('@') {
        Some((repo, revision)) if !revision.is_empty() => Ok((RepoId::parse(repo)?, Some(revision.to_string()))),
        _ => Ok((RepoId::parse(path).map_err(|_| RepoId::parse(text).unwrap_err())?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> (String, Option<String>) {
        let (repo, rev) = parse_repo_reference(s).unwrap();
        (repo.to_string(), rev)
    }

    #[test]
    fn ids_urls_and_revisions() {
        assert_eq!(parsed("Qwen/Qwen2.5-0.5B"), ("Qwen/Qwen2.5-0.5B".into(), None));
        assert_eq!(parsed("  gpt2 "), ("gpt2".into(), None));
        assert_eq!(parsed("acme/m@v1.0"), ("acme/m".into(), Some("v1.0".into())));
        assert_eq!(parsed("https://huggingface.co/acme/m"), ("acme/m".into(), None));
        assert_eq!(parsed("https://huggingface.co/acme/m/"), ("acme/m".into(), None));
        assert_eq!(parsed("https://huggingface.co/acme/m/tree/dev"), ("acme/m".into(), Some("dev".into())));
        assert_eq!(parsed("https://hf.co/acme/m/blob/main/model.gguf?x=1"), ("acme/m".into(), Some("main".into())));
        assert_eq!(parsed("http://127.0.0.1:8080/acme/m/resolve/abc/f.bin"), ("acme/m".into(), Some("abc".into())));
        assert_eq!(parsed("https://huggingface.co/acme/m/discussions"), ("acme/m".into(), None));
    }

    #[test]
    fn nonsense_is_an_invalid_repo_id_naming_the_input() {
        let err = parse_repo_reference("not a repo").unwrap_err();
        assert_eq!(err.id, "not a repo");
        assert!(parse_repo_reference("").is_err());
        assert!(parse_repo_reference("https://huggingface.co/").is_err());
    }
}
