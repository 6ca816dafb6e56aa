//! `GET /api/models/{repo}/refs`: a repo's branches, tags and pull requests, as `HfApi().list_repo_refs` reads
//! them. The cache's `refs/` say what this mirror serves under each name; the upstream's list (when it is reached)
//! adds the names the cache has not got and tells a tag from a branch, which the cache does not record (a name
//! only the cache knows is listed as a branch).

use super::{allowed, fill, in_hub_layout, kept, owners_token_for, repo_of, upstream_key, HubError};
use crate::Served;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use mm_core::cache::CachedRevision;
use mm_core::hub::{GitRef, GitRefs};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(crate) struct RefsQuery {
    #[serde(default)]
    include_prs: Option<String>,
}

pub(crate) async fn refs(
    State(s): State<Served>,
    Path((org, name)): Path<(String, String)>,
    Query(query): Query<RefsQuery>,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    let repo = repo_of(&org, &name);
    if mm_core::hub::parse_repo_reference(&repo).is_err() {
        return Err(HubError::repo(&repo));
    }
    let local = s.manager.model(&repo).await.ok().filter(|d| in_hub_layout(&d.model));
    let here = local.as_ref().map(|d| kept(&d.model)).unwrap_or_default();
    allowed(&s, &headers, here.restricted, here.gated, &repo)?;
    // Asked of the upstream as this caller may ask it: without the owner's token for a caller of an open mirror
    // who holds none, so the hub itself says what such a caller may see.
    // A repo the upstream said is not there is not asked again for a while (a probe loop would spend the owner's
    // rate limit at the hub).
    let with_token = owners_token_for(&s, &headers);
    let key = upstream_key(with_token, format!("refs:{repo}"));
    let upstream = match fill::may_ask_upstream(&s, &headers, &repo) {
        Ok(()) => Some(match s.recent.miss(&key) {
            Some(miss) => Err(miss),
            None => s.manager.hub_refs(&repo, with_token).await.map_err(|e| {
                let error = fill::hub_error(&s, &repo, "main", e);
                s.recent.put_miss(key.clone(), &error);
                error
            }),
        }),
        Err(refused) if local.is_none() => return Err(refused),
        Err(_) => None,
    };
    let merged = match (&local, upstream) {
        (None, Some(Err(e))) => return Err(e),
        (None, None) => return Err(HubError::repo(&repo)),
        (None, Some(Ok(upstream))) => upstream,
        (Some(details), upstream) => {
            if let Some(Err(e)) = &upstream {
                tracing::debug!(%repo, error = %e.message, "the upstream's refs not had: the cache's only");
            }
            merge(&details.revisions, upstream.and_then(Result::ok).unwrap_or_default())
        }
    };
    let with_prs = query.include_prs.as_deref().is_some_and(|v| matches!(v, "1" | "true" | "True"));
    let mut body = serde_json::json!({ "branches": merged.branches, "tags": merged.tags, "converts": merged.converts });
    if with_prs {
        body["pullRequests"] = serde_json::json!(merged.pull_requests);
    }
    Ok(axum::Json(body).into_response())
}

/// The upstream's refs with the cache's laid over them: a name the cache has points where the cache says (that is
/// the commit this mirror serves for it), and a name only the cache has is added, `pr/N` as a pull request.
fn merge(revisions: &[CachedRevision], mut refs: GitRefs) -> GitRefs {
    for revision in revisions {
        for name in &revision.refs {
            // A pull request is `refs/pr/N` (`pr/N` as this cache's scan names it, `refs/pr/N` as another tool may).
            let pr = name.strip_prefix("refs/").unwrap_or(name).starts_with("pr/");
            let (shown, full) = match pr {
                true => {
                    let full = format!("refs/{}", name.strip_prefix("refs/").unwrap_or(name));
                    (full.clone(), full)
                }
                false => (name.clone(), format!("refs/heads/{name}")),
            };
            let listed = [&mut refs.branches, &mut refs.tags, &mut refs.converts, &mut refs.pull_requests]
                .into_iter()
                .flat_map(|list| list.iter_mut())
                .find(|r| r.name == shown);
            match listed {
                Some(r) => r.target_commit = revision.commit.clone(),
                None => {
                    let list = if pr { &mut refs.pull_requests } else { &mut refs.branches };
                    list.push(GitRef { name: shown, full, target_commit: revision.commit.clone() });
                }
            }
        }
    }
    for list in [&mut refs.branches, &mut refs.tags, &mut refs.pull_requests] {
        list.sort_by(|a, b| (a.name != "main", &a.name).cmp(&(b.name != "main", &b.name)));
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(commit: char, refs: &[&str]) -> CachedRevision {
        CachedRevision {
            commit: commit.to_string().repeat(40),
            refs: refs.iter().map(|r| r.to_string()).collect(),
            status: mm_core::cache::CacheStatus::Complete,
            files: vec![],
            missing: vec![],
            size_on_disk: 0,
            last_modified: None,
        }
    }

    fn git_ref(name: &str, full: &str, commit: char) -> GitRef {
        GitRef { name: name.into(), full: full.into(), target_commit: commit.to_string().repeat(40) }
    }

    #[test]
    fn the_cache_says_where_a_name_points_and_the_upstream_what_kind_it_is() {
        let upstream = GitRefs {
            branches: vec![git_ref("main", "refs/heads/main", 'b'), git_ref("dev", "refs/heads/dev", 'c')],
            tags: vec![git_ref("v1", "refs/tags/v1", 'a')],
            ..GitRefs::default()
        };
        let cache = [revision('a', &["main", "v1"]), revision('d', &["local", "pr/2"])];
        let merged = merge(&cache, upstream);
        assert_eq!(
            merged.branches,
            vec![
                git_ref("main", "refs/heads/main", 'a'),
                git_ref("dev", "refs/heads/dev", 'c'),
                git_ref("local", "refs/heads/local", 'd')
            ]
        );
        assert_eq!(merged.tags, vec![git_ref("v1", "refs/tags/v1", 'a')]);
        assert_eq!(merged.pull_requests, vec![git_ref("refs/pr/2", "refs/pr/2", 'd')]);
        // With no upstream, every name the cache has is a branch (or a pull request).
        let alone = merge(&cache, GitRefs::default());
        assert_eq!(alone.branches.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["main", "local", "v1"]);
    }
}
