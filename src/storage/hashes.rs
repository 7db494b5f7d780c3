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
}
