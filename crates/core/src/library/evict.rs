//! Making room under the storage limit (`storageLimit`) and the free-space floor (`minFreeSpace`): which models a
//! download would remove, least recently used first, and never one that someone uses. [`plan`] is pure: the
//! caller gives the bytes needed and the models that may go, each with its size and last use.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A model a download would remove to make room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Eviction {
    pub id: String,
    pub bytes: u64,
    /// When it was last used, in Unix seconds.
    pub last_used: Option<u64>,
}

/// What a download needs beyond what is free under the limits, and what would make it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// The bytes to free.
    pub need_bytes: u64,
    /// Which limit asks it: `storageLimit`, `minFreeSpace`, or the disk itself.
    pub why: String,
    /// What would be removed, least recently used first.
    pub evict: Vec<Eviction>,
    /// What would still be missing after removing every model that may go (0: they make room).
    pub shortfall: u64,
}

/// The bytes to free for `download` more bytes: the most any of the limits asks (`limit` with its name).
pub fn need(
    download: u64,
    used: u64,
    free: u64,
    limit: Option<(u64, &str)>,
    floor: Option<u64>,
) -> Option<(u64, String)> {
    let asks = [
        (limit.map(|(l, _)| used.saturating_add(download).saturating_sub(l)), limit.map_or("", |(_, name)| name)),
        (floor.map(|f| f.saturating_add(download).saturating_sub(free)), "minFreeSpace"),
        (Some(download.saturating_sub(free)), "the free disk space"),
    ];
    asks.into_iter()
        .filter_map(|(bytes, why)| bytes.filter(|b| *b > 0).map(|b| (b, why.to_string())))
        .max_by_key(|(b, _)| *b)
}

/// The models to remove for `need` bytes, least recently used first (never used before used; then the larger),
/// and the bytes still missing when all of them are not enough.
pub fn plan(need: u64, mut may_go: Vec<Eviction>) -> (Vec<Eviction>, u64) {
    may_go.sort_by(|a, b| a.last_used.cmp(&b.last_used).then(b.bytes.cmp(&a.bytes)).then(a.id.cmp(&b.id)));
    let mut freed = 0;
    let mut out = Vec::new();
    for m in may_go {
        if freed >= need {
            break;
        }
        freed += m.bytes;
        out.push(m);
    }
    (out, need.saturating_sub(freed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, bytes: u64, used: Option<u64>) -> Eviction {
        Eviction { id: id.into(), bytes, last_used: used }
    }

    #[test]
    fn the_least_recently_used_go_first_until_there_is_room() {
        let all = vec![m("new", 50, Some(300)), m("old", 30, Some(100)), m("mid", 40, Some(200)), m("never", 5, None)];
        let (go, short) = plan(60, all.clone());
        assert_eq!(go.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["never", "old", "mid"]);
        assert_eq!(short, 0);
        let (go, short) = plan(1000, all);
        assert_eq!((go.len(), short), (4, 1000 - 125));
    }

    #[test]
    fn the_limit_that_asks_most_decides() {
        assert_eq!(need(10, 100, 1000, Some((200, "storageLimit")), None), None);
        assert_eq!(need(10, 195, 1000, Some((200, "storageLimit")), None), Some((5, "storageLimit".into())));
        assert_eq!(need(10, 0, 100, None, Some(95)), Some((5, "minFreeSpace".into())));
        assert_eq!(need(150, 0, 100, Some((1000, "--cache-limit")), None), Some((50, "the free disk space".into())));
    }
}
