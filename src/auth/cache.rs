//! The validation cache (R-AUTH-2): a token (or a Basic credential pair)
//! that validated is trusted for 30 s without asking the provider again.
//!
//! Invariant: keys are SHA-256 of the secret, never the secret; only
//! successful validations are stored; the size is bounded; expiry uses the
//! injected clock, so tests need no sleeping; an entry made under an older
//! credentials generation (a password change or disable anywhere) is never
//! served.

use crate::model::Clock;
use crate::policy::Principal;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

pub const TTL_SECS: i64 = 30;
/// An entry this close to expiry is refreshed by one caller while the
/// others keep using it, so a steady load never meets a miss.
pub const REFRESH_AHEAD_SECS: i64 = 5;

pub struct TokenCache {
    /// Key → (principal, expiry, credentials generation).
    entries: Mutex<HashMap<[u8; 32], (Principal, i64, i64)>>,
    max: usize,
    clock: Arc<dyn Clock>,
}

pub fn key(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

impl TokenCache {
    pub fn new(max: usize, clock: Arc<dyn Clock>) -> TokenCache {
        TokenCache { entries: Mutex::new(HashMap::new()), max: max.max(1), clock }
    }

    /// The principal and expiry cached for `k` under generation `gen`.
    pub fn get(&self, k: &[u8; 32], gen: i64) -> Option<(Principal, i64)> {
        let now = self.clock.now();
        let mut m = self.entries.lock();
        match m.get(k) {
            Some((p, exp, g)) if *exp > now && *g == gen => Some((p.clone(), *exp)),
            Some(_) => {
                m.remove(k);
                None
            }
            None => None,
        }
    }

    /// Caches a successful validation until `min(now + 30 s, valid_until)`.
    pub fn put(&self, k: [u8; 32], p: Principal, valid_until: i64, gen: i64) {
        let now = self.clock.now();
        let exp = (now + TTL_SECS).min(valid_until);
        if exp <= now {
            return;
        }
        let mut m = self.entries.lock();
        if m.len() >= self.max && !m.contains_key(&k) {
            m.retain(|_, (_, e, g)| *e > now && *g == gen);
            if m.len() >= self.max {
                // Still full of live entries: drop the one closest to expiry.
                if let Some(victim) = m.iter().min_by_key(|(_, (_, e, _))| *e).map(|(k, _)| *k) {
                    m.remove(&victim);
                }
            }
        }
        m.insert(k, (p, exp, gen));
    }

    pub fn clear(&self) {
        self.entries.lock().clear();
    }

    pub fn forget(&self, k: &[u8; 32]) {
        self.entries.lock().remove(k);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::AccountType;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct FakeClock(AtomicI64);
    impl Clock for FakeClock {
        fn now(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn p(name: &str) -> Principal {
        Principal {
            subject: name.into(),
            username: name.into(),
            roles: vec![],
            account_type: AccountType::Human,
            scope: None,
        }
    }

    #[test]
    fn hit_expiry_and_bound() {
        let clock = Arc::new(FakeClock(AtomicI64::new(1000)));
        let c = TokenCache::new(3, clock.clone());
        let k = key(b"token-a");
        assert!(c.get(&k, 0).is_none());
        c.put(k, p("a"), i64::MAX, 0);
        assert_eq!(c.get(&k, 0).unwrap().0.username, "a");
        assert!(c.get(&k, 1).is_none(), "another generation never sees it");
        c.put(k, p("a"), i64::MAX, 0);
        clock.0.store(1029, Ordering::SeqCst);
        assert!(c.get(&k, 0).is_some(), "still valid at 29 s");
        clock.0.store(1030, Ordering::SeqCst);
        assert!(c.get(&k, 0).is_none(), "expired at 30 s");
        assert!(c.is_empty(), "expired entries are evicted on lookup");
        // A token that expires sooner than 30 s is cached only that long.
        c.put(k, p("a"), 1035, 0);
        clock.0.store(1036, Ordering::SeqCst);
        assert!(c.get(&k, 0).is_none());
        // An already-expired token is not cached at all.
        c.put(k, p("a"), 1000, 0);
        assert!(c.get(&k, 0).is_none());
        // The bound holds; the entry nearest expiry goes first.
        for (i, name) in ["w", "x", "y", "z"].iter().enumerate() {
            c.put(key(name.as_bytes()), p(name), 1036 + 10 + i as i64, 0);
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&key(b"w"), 0).is_none(), "oldest evicted");
        assert!(c.get(&key(b"z"), 0).is_some());
    }

    #[test]
    fn keys_are_hashes() {
        assert_ne!(&key(b"secret")[..], b"secret");
        assert_eq!(key(b"secret"), key(b"secret"));
    }
}
