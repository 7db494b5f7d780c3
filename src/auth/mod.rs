//! Credentials → who is asking.  Identity providers behind one trait
//! (`local`, the embedded default), a validation cache, and a limiter for
//! failed logins.
//!
//! Invariant: secrets travel as `Password`/`Token` (redacted in logs) and
//! are only ever stored or cached as SHA-256 hashes.

pub mod cache;
pub mod local;
pub mod mcias;
mod secret;

pub use secret::{Password, Token};

use crate::app::Clock;
use crate::error::{Error, Result};
use crate::policy::Principal;
use base64::Engine as _;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A token handed out by a provider, with its expiry (Unix seconds).
pub struct Issued {
    pub token: Token,
    pub expires_at: i64,
}

pub trait IdentityProvider: Send + Sync {
    /// Exchanges credentials for a token; `None` for bad credentials.
    fn login(&self, username: &str, password: &Password) -> Result<Option<Issued>>;
    /// Who a token belongs to and until when; `None` for an invalid token.
    fn validate(&self, token: &Token) -> Result<Option<(Principal, i64)>>;
    /// Checks a password directly (Basic credentials on `/v2` requests).
    fn check_password(&self, username: &str, password: &Password) -> Result<Option<(Principal, i64)>> {
        match self.login(username, password)? {
            Some(issued) => self.validate(&issued.token),
            None => Ok(None),
        }
    }
}

/// What a request presented in its `Authorization` header.
pub enum Credentials {
    Bearer(Token),
    Basic(String, Password),
}

impl Credentials {
    /// Parses `Bearer <token>` or `Basic <base64(user:pass)>`.
    pub fn parse(header: &str) -> Option<Credentials> {
        let (scheme, rest) = header.trim().split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Some(Credentials::Bearer(Token::new(rest)));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (user, pass) = text.split_once(':')?;
            if user.is_empty() {
                return None;
            }
            return Some(Credentials::Basic(user.to_string(), Password::new(pass)));
        }
        None
    }
}

/// Failed logins in a sliding window, per peer address and per username.
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<i64>>>,
    pub window: i64,
    pub max_failures: usize,
}

impl LoginLimiter {
    /// The buckets of a login: the user's, and the peer's when it is known
    /// (an unknown peer must not share one bucket with every other).
    fn keys(user: &str, peer: Option<IpAddr>) -> Vec<String> {
        let mut k = vec![format!("user:{user}")];
        if let Some(p) = peer {
            k.push(format!("peer:{p}"));
        }
        k
    }

    /// Seconds until the caller may try again, when it is limited.
    pub fn blocked(&self, user: &str, peer: Option<IpAddr>, now: i64) -> Option<i64> {
        let mut m = self.failures.lock();
        let mut wait = None;
        for k in Self::keys(user, peer) {
            if let Some(v) = m.get_mut(&k) {
                v.retain(|t| *t > now - self.window);
                if v.len() >= self.max_failures {
                    let retry = v[0] + self.window - now;
                    wait = Some(wait.map_or(retry, |w: i64| w.max(retry)));
                }
            }
        }
        wait
    }

    pub fn record_failure(&self, user: &str, peer: Option<IpAddr>, now: i64) {
        let mut m = self.failures.lock();
        if m.len() > 100_000 {
            m.retain(|_, v| v.iter().any(|t| *t > now - self.window));
        }
        for k in Self::keys(user, peer) {
            m.entry(k).or_default().push(now);
        }
    }
}

pub struct Auth {
    provider: Box<dyn IdentityProvider>,
    cache: cache::TokenCache,
    pub limiter: LoginLimiter,
    clock: Arc<dyn Clock>,
}

impl Auth {
    /// Forgets every cached validation (after a password change or a
    /// disable, so old credentials stop working at once).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    pub fn new(provider: Box<dyn IdentityProvider>, clock: Arc<dyn Clock>) -> Auth {
        Auth {
            provider,
            cache: cache::TokenCache::new(10_000, clock.clone()),
            limiter: LoginLimiter { failures: Mutex::new(HashMap::new()), window: 60, max_failures: 10 },
            clock,
        }
    }

    /// Who the credentials belong to; `Unauthenticated` when they are not valid.
    pub fn authenticate(&self, creds: &Credentials, peer: Option<IpAddr>) -> Result<Principal> {
        match creds {
            Credentials::Bearer(t) => {
                let k = cache::key(format!("bearer\0{}", t.expose()).as_bytes());
                if let Some(p) = self.cache.get(&k) {
                    return Ok(p);
                }
                match self.provider.validate(t)? {
                    Some((p, until)) => {
                        self.cache.put(k, p.clone(), until);
                        Ok(p)
                    }
                    None => Err(Error::Unauthenticated),
                }
            }
            Credentials::Basic(user, pass) => {
                // Length-prefixed fields: no two credential pairs share a key.
                let k = cache::key(format!("basic\0{}\0{user}\0{}", user.len(), pass.expose()).as_bytes());
                if let Some(p) = self.cache.get(&k) {
                    return Ok(p);
                }
                self.check_limit(user, peer)?;
                match self.provider.check_password(user, pass)? {
                    Some((p, until)) => {
                        self.cache.put(k, p.clone(), until);
                        Ok(p)
                    }
                    None => {
                        self.fail(user, peer);
                        Err(Error::Unauthenticated)
                    }
                }
            }
        }
    }

    /// The token endpoint's login: rate-limited, failures recorded.
    pub fn login(&self, user: &str, pass: &Password, peer: Option<IpAddr>) -> Result<Issued> {
        self.check_limit(user, peer)?;
        match self.provider.login(user, pass)? {
            Some(i) => Ok(i),
            None => {
                self.fail(user, peer);
                Err(Error::Unauthenticated)
            }
        }
    }

    fn check_limit(&self, user: &str, peer: Option<IpAddr>) -> Result<()> {
        match self.limiter.blocked(user, peer, self.clock.now()) {
            Some(wait) => Err(Error::RateLimited { retry_after: wait.max(1) }),
            None => Ok(()),
        }
    }

    fn fail(&self, user: &str, peer: Option<IpAddr>) {
        log::info!(
            "login failed user={} peer={}",
            user.escape_debug().take(64).collect::<String>(),
            peer.map_or("-".to_string(), |p| p.to_string())
        );
        self.limiter.record_failure(user, peer, self.clock.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_authorization_headers() {
        assert!(
            matches!(Credentials::parse("Bearer abc"), Some(Credentials::Bearer(t)) if t.expose() == "abc")
        );
        let b = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        match Credentials::parse(&format!("Basic {b}")) {
            Some(Credentials::Basic(u, p)) => assert_eq!((u.as_str(), p.expose()), ("alice", "pa:ss")),
            _ => panic!("basic not parsed"),
        }
        for bad in ["", "Bearer", "Bearer ", "Basic !!!", "Basic Og==", "Digest x", "Basic bm9jb2xvbg=="] {
            assert!(Credentials::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn limiter_blocks_after_failures_and_recovers() {
        let l = LoginLimiter { failures: Mutex::new(HashMap::new()), window: 60, max_failures: 3 };
        let peer: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        for t in 0..3 {
            assert!(l.blocked("bob", peer, 100 + t).is_none());
            l.record_failure("bob", peer, 100 + t);
        }
        assert_eq!(l.blocked("bob", peer, 103), Some(57));
        // Another user from the same peer is blocked too; the user from elsewhere as well.
        assert!(l.blocked("carol", peer, 103).is_some());
        assert!(l.blocked("bob", Some("10.0.0.2".parse().unwrap()), 103).is_some());
        assert!(l.blocked("carol", Some("10.0.0.2".parse().unwrap()), 103).is_none());
        assert!(l.blocked("bob", peer, 161).is_none(), "the window slides");
        // Failures from an unknown peer only count against the user.
        for t in 0..3 {
            l.record_failure("dave", None, 200 + t);
        }
        assert!(l.blocked("dave", None, 203).is_some());
        assert!(l.blocked("erin", None, 203).is_none(), "no shared bucket for unknown peers");
    }
}
