//! Running hashes of open upload sessions, kept between requests.
//!
//! Invariant: a cached state is only a shortcut; the store's upload is the
//! truth, and a state whose offset does not match it is rebuilt from it.

use crate::model::Hasher;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Running hashes of open upload sessions, one lock per session so that two
/// requests on the same session never interleave their appends.
#[derive(Default)]
pub struct UploadStates {
    slots: Mutex<HashMap<String, Slot>>,
}

/// The offset and running hash of one session, when known.
pub type Slot = Arc<Mutex<Option<(u64, Hasher)>>>;

impl UploadStates {
    pub fn slot(&self, id: &str) -> Slot {
        self.slots.lock().entry(id.to_string()).or_default().clone()
    }

    pub fn forget(&self, id: &str) {
        self.slots.lock().remove(id);
    }

    /// Runs `f` under the session's lock if no request holds it now, then
    /// drops the session's cached state; `None` when the session is busy.
    pub fn if_idle<R>(&self, id: &str, f: impl FnOnce() -> R) -> Option<R> {
        let slot = self.slot(id);
        let guard = slot.try_lock()?;
        let r = f();
        drop(guard);
        self.forget(id);
        Some(r)
    }
}
