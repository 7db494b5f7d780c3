//! Striped per-digest locks: committing a blob (rename + row) and
//! unlinking it (row check + unlink) hold the digest's stripe, so a blob
//! re-uploaded while garbage collection removes it is never lost.

use crate::model::Digest;
use parking_lot::{Mutex, MutexGuard};

const STRIPES: usize = 64;

pub struct BlobLocks {
    stripes: Vec<Mutex<()>>,
}

impl Default for BlobLocks {
    fn default() -> Self {
        BlobLocks { stripes: (0..STRIPES).map(|_| Mutex::new(())).collect() }
    }
}

impl BlobLocks {
    pub fn lock(&self, d: &Digest) -> MutexGuard<'_, ()> {
        let b = d.hex().as_bytes();
        let i = (usize::from(b[0]) * 31 + usize::from(b[1])) % STRIPES;
        self.stripes[i].lock()
    }
}
