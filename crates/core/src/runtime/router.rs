//! Which process serves which model id: the host's one map of them. A load for an id not in it inserts its
//! process (loading) in the same step, so that every request for that id joins the one load.

use super::process::Process;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub(super) struct Router {
    by_id: Mutex<BTreeMap<String, Arc<Process>>>,
}

impl Router {
    pub(super) fn get(&self, id: &str) -> Option<Arc<Process>> {
        self.by_id.lock().expect("router").get(id).cloned()
    }

    /// The process for `id`, or the one `new` makes (then `true`: the caller starts its load).
    pub(super) fn get_or_insert(&self, id: &str, new: impl FnOnce() -> Process) -> (Arc<Process>, bool) {
        let mut map = self.by_id.lock().expect("router");
        if let Some(p) = map.get(id) {
            return (p.clone(), false);
        }
        let p = Arc::new(new());
        map.insert(id.to_string(), p.clone());
        (p, true)
    }

    /// Takes `process` out, if it is still the one serving its id.
    pub(super) fn remove(&self, process: &Arc<Process>) -> bool {
        let mut map = self.by_id.lock().expect("router");
        if map.get(process.id()).is_some_and(|p| Arc::ptr_eq(p, process)) {
            map.remove(process.id());
            return true;
        }
        false
    }

    pub(super) fn all(&self) -> Vec<Arc<Process>> {
        self.by_id.lock().expect("router").values().cloned().collect()
    }
}
