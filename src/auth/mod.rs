//! Credentials → who is asking.  Identity providers behind one trait
//! (`local`, the embedded default), a validation cache, and a limiter for
//! failed logins.
//!
//! Invariant: secrets travel as `Password`/`Token` (redacted in logs) and
//! are only ever stored or cached as SHA-256 hashes.

pub mod cache;
pub mod local;
pub mod mcias;

pub use crate::model::{Credentials, Password, Token};

use crate::db::logins::LoginEvent;
use crate::error::{Error, Result};
use crate::model::Clock;
use crate::policy::Principal;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a token being issued to a principal may be used for.
pub type ScopeFor<'a> = dyn Fn(&Principal) -> Option<crate::model::Scope> + 'a;

/// A token handed out by a provider, with its expiry (Unix seconds).
pub struct Issued {
    pub token: Token,
    pub expires_at: i64,
}

pub trait IdentityProvider: Send + Sync {
    /// Exchanges credentials for a token; `None` for bad credentials.
    /// `scope` says what the token may be used for, given who logged in
    /// (`None`: the user's full authority).
    fn login(&self, username: &str, password: &Password, scope: &ScopeFor) -> Result<Option<Issued>>;
    /// Who a token belongs to and until when; `None` for an invalid token.
    fn validate(&self, token: &Token) -> Result<Option<(Principal, i64)>>;
    /// Whether `mint` issues tokens to principals already authenticated
    /// (the local provider), so that `/v2/token` can reuse the cached
    /// password check instead of hashing again.
    fn mints_tokens(&self) -> bool {
        false
    }
    /// A token for a principal authenticated at credentials generation
    /// `gen` (`None`: the user is gone or disabled, or users changed since
    /// `gen`, so the check may be stale).
    fn mint(&self, _p: &Principal, _scope: &ScopeFor, _gen: i64) -> Result<Option<Issued>> {
        Ok(None)
    }
    /// A number that changes whenever any process changes a user's
    /// credentials or status (cached validations older than it are void).
    fn generation(&self) -> Result<i64> {
        Ok(0)
    }
    /// Renews a password check made at credentials generation `gen`
    /// without the password: the principal as it is now, while no user's
    /// credentials or status changed since (`None`: check the password
    /// again).  The local provider answers from the user's record, so a
    /// cached Basic credential is refreshed without another 7 MiB hash.
    fn recheck(&self, _p: &Principal, _gen: i64) -> Result<Option<(Principal, i64)>> {
        Ok(None)
    }
    /// Checks a password directly (Basic credentials on `/v2` requests).
    fn check_password(&self, username: &str, password: &Password) -> Result<Option<(Principal, i64)>> {
        match self.login(username, password, &|_| None)? {
            Some(issued) => self.validate(&issued.token),
            None => Ok(None),
        }
    }
}

/// Failed logins, throttled per (user, client address) with exponential
/// back-off, plus a budget per client address across all users.  A user is
/// never locked out by failures that came from elsewhere.
pub struct Throttle {
    state: Mutex<ThrottleState>,
}

#[derive(Default)]
struct ThrottleState {
    /// (SHA-256 of the username, peer) → (failures in a row, time of the
    /// last one).  Hashed: a client-chosen name must not size the memory.
    pairs: HashMap<([u8; 32], Option<IpAddr>), (u32, i64)>,
    /// The same key → password checks in flight (only while they run).
    checking: HashMap<([u8; 32], Option<IpAddr>), u32>,
    /// peer → times of its recent failures (at most `PEER_BUDGET`).
    peers: HashMap<IpAddr, VecDeque<i64>>,
    /// peer → (start of its audit window, failures not audited in it).
    audit: HashMap<IpAddr, (i64, u64)>,
    /// (start of the current window, failure events audited in it).
    audit_total: (i64, u64),
}

/// Failures in a row allowed for a (user, peer) pair before back-off.
pub const FREE_FAILURES: u32 = 10;
/// The first back-off; each further failure doubles it, up to `MAX_BACKOFF`.
const BASE_BACKOFF: i64 = 30;
const MAX_BACKOFF: i64 = 3600;
/// Failures one address may have in `PEER_WINDOW` seconds, across users.
const PEER_BUDGET: usize = 60;
const PEER_WINDOW: i64 = 60;
/// At most one login-failure audit event per address per this many seconds.
const AUDIT_WINDOW: i64 = 60;
/// And at most this many in a window across all addresses.
const AUDIT_MAX_PER_WINDOW: u64 = 100;
/// Bound on the remembered pairs and addresses.
const MAX_TRACKED: usize = 100_000;

/// The unit an address is counted in: an IPv4 address, or an IPv6 /64
/// (one host usually owns a whole /64).
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
    }
}

impl Throttle {
    fn new() -> Throttle {
        Throttle { state: Mutex::new(ThrottleState::default()) }
    }

    /// Seconds until `user` (for `None`, a token, which names nobody) may
    /// try again from `peer`, when it may not now.
    pub fn blocked(&self, user: Option<&str>, peer: Option<IpAddr>, now: i64) -> Option<i64> {
        let peer = peer.map(bucket);
        let mut st = self.state.lock();
        let mut wait = None;
        if let Some(u) = user {
            if let Some((n, last)) = st.pairs.get(&(cache::key(u.as_bytes()), peer)) {
                if *n >= FREE_FAILURES {
                    let backoff =
                        BASE_BACKOFF.saturating_mul(1 << (n - FREE_FAILURES).min(20)).min(MAX_BACKOFF);
                    let until = last + backoff;
                    if until > now {
                        wait = Some(until - now);
                    }
                }
            }
        }
        if let Some(p) = peer {
            if let Some(q) = st.peers.get_mut(&p) {
                while q.front().is_some_and(|t| *t <= now - PEER_WINDOW) {
                    q.pop_front();
                }
                if q.len() >= PEER_BUDGET {
                    let until = q[0] + PEER_WINDOW;
                    wait = Some(wait.map_or(until - now, |w: i64| w.max(until - now)));
                }
            }
        }
        wait
    }

    pub fn record_failure(&self, user: Option<&str>, peer: Option<IpAddr>, now: i64) {
        self.record_failure_of(user.map(|u| cache::key(u.as_bytes())), peer, now);
    }

    /// `record_failure` for a user known by the hash of their name.
    fn record_failure_of(&self, user: Option<[u8; 32]>, peer: Option<IpAddr>, now: i64) {
        let peer = peer.map(bucket);
        let mut st = self.state.lock();
        if let Some(u) = user {
            let key = (u, peer);
            if st.pairs.len() >= MAX_TRACKED && !st.pairs.contains_key(&key) {
                st.pairs.retain(|_, (_, last)| *last > now - MAX_BACKOFF);
                if st.pairs.len() >= MAX_TRACKED {
                    // Flooded with live entries: forget them all rather
                    // than rescan a full table on every failure.
                    st.pairs.clear();
                }
            }
            let e = st.pairs.entry(key).or_insert((0, now));
            if now - e.1 > MAX_BACKOFF {
                // An old run of failures is forgiven.
                e.0 = 0;
            }
            e.0 = e.0.saturating_add(1);
            e.1 = now;
        }
        if let Some(p) = peer {
            if st.peers.len() >= MAX_TRACKED && !st.peers.contains_key(&p) {
                st.peers.retain(|_, q| q.back().is_some_and(|t| *t > now - PEER_WINDOW));
                if st.peers.len() >= MAX_TRACKED {
                    st.peers.clear();
                }
            }
            let q = st.peers.entry(p).or_default();
            if q.len() >= PEER_BUDGET {
                q.pop_front();
            }
            q.push_back(now);
        }
    }

    /// Starts a password check for the pair, unless the failures so far
    /// plus the checks already running would pass the free allowance:
    /// concurrent guesses cannot run ahead of the count.
    pub fn begin_check(&self, user: &str, peer: Option<IpAddr>) -> bool {
        let key = (cache::key(user.as_bytes()), peer.map(bucket));
        let mut st = self.state.lock();
        let failures = st.pairs.get(&key).map_or(0, |(n, _)| *n);
        let running = st.checking.get(&key).copied().unwrap_or(0);
        if running > 0 && failures.saturating_add(running) >= FREE_FAILURES {
            return false;
        }
        *st.checking.entry(key).or_insert(0) += 1;
        true
    }

    pub fn end_check(&self, user: &str, peer: Option<IpAddr>) {
        let key = (cache::key(user.as_bytes()), peer.map(bucket));
        let mut st = self.state.lock();
        if let Some(n) = st.checking.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                st.checking.remove(&key);
            }
        }
    }

    /// A success ends the pair's run of failures.
    pub fn record_success(&self, user: &str, peer: Option<IpAddr>) {
        self.record_success_of(cache::key(user.as_bytes()), peer);
    }

    fn record_success_of(&self, user: [u8; 32], peer: Option<IpAddr>) {
        let mut st = self.state.lock();
        if !st.pairs.is_empty() {
            st.pairs.remove(&(user, peer.map(bucket)));
        }
    }

    /// Whether a failure from `peer` gets its own audit event: the first in
    /// each window does, carrying how many earlier ones were folded into
    /// none; the rest are only counted.  Across all addresses at most
    /// `AUDIT_MAX_PER_WINDOW` events a window, so that many addresses cannot
    /// grow the log without bound either.  `Some(folded)` means audit.
    pub fn audit_failure(&self, peer: Option<IpAddr>, now: i64) -> Option<u64> {
        let mut st = self.state.lock();
        let (start, count) = st.audit_total;
        if now >= start.saturating_add(AUDIT_WINDOW) {
            st.audit_total = (now, 0);
        } else if count >= AUDIT_MAX_PER_WINDOW {
            return None;
        }
        let Some(p) = peer.map(bucket) else {
            st.audit_total.1 += 1;
            return Some(0);
        };
        if st.audit.len() >= MAX_TRACKED && !st.audit.contains_key(&p) {
            st.audit.retain(|_, (start, _)| *start > now - AUDIT_WINDOW);
            if st.audit.len() >= MAX_TRACKED {
                st.audit.clear();
            }
        }
        let e = st.audit.entry(p).or_insert((i64::MIN, 0));
        if now >= e.0.saturating_add(AUDIT_WINDOW) {
            let folded = e.1;
            *e = (now, 0);
            st.audit_total.1 += 1;
            Some(folded)
        } else {
            e.1 += 1;
            None
        }
    }
}

/// Validations in progress, by cache key: concurrent callers with the same
/// credentials wait for one computation instead of each running their own.
#[derive(Default)]
struct Flights(Mutex<HashMap<[u8; 32], Arc<Mutex<()>>>>);

struct Flight<'a> {
    flights: &'a Flights,
    key: [u8; 32],
    guard: Option<parking_lot::ArcMutexGuard<parking_lot::RawMutex, ()>>,
}

impl Flights {
    fn entry(&self, key: [u8; 32]) -> Arc<Mutex<()>> {
        self.0.lock().entry(key).or_default().clone()
    }

    /// Joins (or starts) the validation of `key`, waiting for one in progress.
    fn join(&self, key: [u8; 32]) -> Flight<'_> {
        let guard = Some(self.entry(key).lock_arc());
        Flight { flights: self, key, guard }
    }

    /// Starts the validation of `key` unless one is in progress.
    fn try_start(&self, key: [u8; 32]) -> Option<Flight<'_>> {
        let guard = Some(self.entry(key).try_lock_arc()?);
        Some(Flight { flights: self, key, guard })
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut m = self.flights.0.lock();
        if m.get(&self.key).is_some_and(|a| Arc::strong_count(a) == 1) {
            m.remove(&self.key);
        }
    }
}

/// Password checks (memory-hard hashes) run so far: a metric, and how the
/// tests see that concurrent logins share one.
pub static PASSWORD_CHECKS: AtomicU64 = AtomicU64::new(0);

/// At most `max` password checks at once, whatever the number of workers:
/// each Argon2id hash holds 7 MiB.
struct HashSlots {
    busy: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

struct HashSlot<'a>(&'a HashSlots);

impl HashSlots {
    fn acquire(&self) -> HashSlot<'_> {
        let mut n = self.busy.lock();
        while *n >= self.max {
            self.freed.wait(&mut n);
        }
        *n += 1;
        PASSWORD_CHECKS.fetch_add(1, Ordering::Relaxed);
        HashSlot(self)
    }
}

impl Drop for HashSlot<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock() -= 1;
        self.0.freed.notify_one();
    }
}

pub struct Auth {
    provider: Box<dyn IdentityProvider>,
    cache: cache::TokenCache,
    pub throttle: Throttle,
    flights: Flights,
    hashes: HashSlots,
    clock: Arc<dyn Clock>,
    /// Login outcomes for the other replicas (`None`: not shared).
    outbox: Mutex<Option<Vec<LoginEvent>>>,
}

/// Outcomes kept for the other replicas between two refreshes at most; a
/// refresh every 2 s never sees this many (password checks are bounded).
const OUTBOX_MAX: usize = 10_000;

impl Auth {
    /// Forgets every cached validation (after a password change or a
    /// disable, so old credentials stop working at once).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    pub fn new(provider: Box<dyn IdentityProvider>, clock: Arc<dyn Clock>) -> Auth {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Auth {
            provider,
            cache: cache::TokenCache::new(10_000, clock.clone()),
            throttle: Throttle::new(),
            flights: Flights::default(),
            hashes: HashSlots { busy: Mutex::new(0), freed: Condvar::new(), max: cores },
            clock,
            outbox: Mutex::new(None),
        }
    }

    /// From now on, login outcomes are kept for `take_shared` (replicas:
    /// one throttle across all of them).
    pub fn share_logins(&self) {
        self.outbox.lock().get_or_insert_with(Vec::new);
    }

    /// The login outcomes recorded here since the last call.
    pub fn take_shared(&self) -> Vec<LoginEvent> {
        self.outbox.lock().as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn share(&self, user: Option<&str>, peer: Option<IpAddr>, ok: bool) {
        if let Some(out) = self.outbox.lock().as_mut() {
            if out.len() < OUTBOX_MAX {
                out.push(LoginEvent {
                    user_key: user.map(|u| crate::model::to_hex(&cache::key(u.as_bytes()))),
                    peer: peer.map(|p| bucket(p).to_string()),
                    ok,
                    time: self.clock.now(),
                });
            }
        }
    }

    /// Applies another replica's login outcome to this replica's throttle;
    /// an event that does not parse (written by nothing mcr knows) is skipped.
    pub fn replay(&self, e: &LoginEvent) {
        let user = match e.user_key.as_deref().map(crate::model::from_hex) {
            None => None,
            Some(k) => match k.and_then(|k| <[u8; 32]>::try_from(k).ok()) {
                Some(key) => Some(key),
                None => return,
            },
        };
        let peer = match e.peer.as_deref().map(str::parse::<IpAddr>) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => return,
        };
        match (e.ok, user) {
            (true, Some(u)) => self.throttle.record_success_of(u, peer),
            (true, None) => {}
            (false, u) => self.throttle.record_failure_of(u, peer, e.time),
        }
    }

    /// Who the credentials belong to; `Unauthenticated` when they are not valid.
    pub fn authenticate(&self, creds: &Credentials, peer: Option<IpAddr>) -> Result<Principal> {
        // Changes made by any process sharing the database (`mcr user …`)
        // move the generation; entries cached before it are never served.
        let gen = self.provider.generation()?;
        match creds {
            Credentials::Bearer(t) => {
                let k = cache::key(format!("bearer\0{}", t.expose()).as_bytes());
                if let Some((p, _)) = self.cache.get(&k, gen) {
                    return self.fresh(k, gen, p, || self.provider.validate(t));
                }
                // A token names no user: its failures count against the
                // address's budget only (which decays), never against the
                // valid tokens used from the same address.
                self.check_peer_budget(peer)?;
                match self.shared(k, gen, || self.provider.validate(t))? {
                    Some(p) => Ok(p),
                    None => {
                        self.fail(None, peer);
                        Err(Error::Unauthenticated)
                    }
                }
            }
            Credentials::Basic(user, pass) => self.basic(user, pass, peer, gen),
        }
    }

    /// The credentials generation now: it moves whenever any process
    /// changes a user's password or status.
    pub fn generation(&self) -> Result<i64> {
        self.provider.generation()
    }

    /// Basic credentials: cached, shared among concurrent callers, throttled.
    fn basic(&self, user: &str, pass: &Password, peer: Option<IpAddr>, gen: i64) -> Result<Principal> {
        // A throttled (user, address) is refused before the cache is asked:
        // otherwise a cached right password would answer a guessing run at
        // full speed, and tell it when it guessed right.
        self.check_limit(user, peer)?;
        // Length-prefixed fields: no two credential pairs share a key.
        let k = cache::key(format!("basic\0{}\0{user}\0{}", user.len(), pass.expose()).as_bytes());
        if let Some((p, _)) = self.cache.get(&k, gen) {
            let checked = p.clone();
            return self.fresh(k, gen, p, || match self.provider.recheck(&checked, gen)? {
                Some(renewed) => Ok(Some(renewed)),
                None => self.check_password(user, pass),
            });
        }
        // The check that this caller ran (if any) ends only after its
        // outcome is counted: ended before, a concurrent guess would see
        // neither the running check nor its failure, and run ahead.
        let led = std::cell::Cell::new(false);
        let checked = self.shared(k, gen, || {
            if !self.throttle.begin_check(user, peer) {
                return Err(Error::RateLimited { retry_after: 1 });
            }
            led.set(true);
            self.check_password(user, pass)
        });
        let out = checked.and_then(|c| self.settle(user, peer, c));
        if led.get() {
            self.throttle.end_check(user, peer);
        }
        out
    }

    fn check_password(&self, user: &str, pass: &Password) -> Result<Option<(Principal, i64)>> {
        let _slot = self.hashes.acquire();
        self.provider.check_password(user, pass)
    }

    /// A cached answer, refreshed by one caller when it nears expiry (the
    /// others keep using it meanwhile).
    fn fresh(
        &self,
        k: [u8; 32],
        gen: i64,
        p: Principal,
        check: impl FnOnce() -> Result<Option<(Principal, i64)>>,
    ) -> Result<Principal> {
        let exp = self.cache.get(&k, gen).map_or(0, |(_, e)| e);
        if exp - self.clock.now() > cache::REFRESH_AHEAD_SECS {
            return Ok(p);
        }
        let Some(_flight) = self.flights.try_start(k) else { return Ok(p) };
        match check()? {
            Some((p, until)) => {
                self.cache.put(k, p.clone(), until, gen);
                Ok(p)
            }
            None => {
                self.cache.forget(&k);
                Err(Error::Unauthenticated)
            }
        }
    }

    /// The cached principal for `k`, or the result of one validation shared
    /// by every concurrent caller with the same credentials.
    fn shared(
        &self,
        k: [u8; 32],
        gen: i64,
        check: impl FnOnce() -> Result<Option<(Principal, i64)>>,
    ) -> Result<Option<Principal>> {
        if let Some((p, _)) = self.cache.get(&k, gen) {
            return self.fresh(k, gen, p, check).map(Some);
        }
        let _flight = self.flights.join(k);
        // Whoever held the flight may have just cached the answer.
        if let Some((p, _)) = self.cache.get(&k, gen) {
            return Ok(Some(p));
        }
        match check()? {
            Some((p, until)) => {
                self.cache.put(k, p.clone(), until, gen);
                Ok(Some(p))
            }
            None => Ok(None),
        }
    }

    /// The token endpoint's login: throttled, failures recorded.
    pub fn login(
        &self,
        user: &str,
        pass: &Password,
        peer: Option<IpAddr>,
        scope: &ScopeFor,
    ) -> Result<Issued> {
        if self.provider.mints_tokens() {
            // The password check is the shared, cached one of Basic
            // credentials: a burst of `docker pull`s costs one hash. A
            // change to users between the check and the mint (a password
            // reset, a disable) voids the check: once more, on the new state.
            for _ in 0..2 {
                let gen = self.provider.generation()?;
                let p = self.basic(user, pass, peer, gen)?;
                if let Some(issued) = self.provider.mint(&p, scope, gen)? {
                    return Ok(issued);
                }
            }
            return Err(Error::Unauthenticated);
        }
        self.check_limit(user, peer)?;
        let issued = {
            let _slot = self.hashes.acquire();
            self.provider.login(user, pass, scope)?
        };
        self.settle(user, peer, issued)
    }

    /// A password check's outcome for the throttle: a success ends the
    /// pair's run of failures, `None` (bad credentials) is one more.
    fn settle<T>(&self, user: &str, peer: Option<IpAddr>, outcome: Option<T>) -> Result<T> {
        match outcome {
            Some(v) => {
                self.throttle.record_success(user, peer);
                self.share(Some(user), peer, true);
                Ok(v)
            }
            None => {
                self.fail(Some(user), peer);
                Err(Error::Unauthenticated)
            }
        }
    }

    fn check_limit(&self, user: &str, peer: Option<IpAddr>) -> Result<()> {
        match self.throttle.blocked(Some(user), peer, self.clock.now()) {
            Some(wait) => Err(Error::RateLimited { retry_after: wait.max(1) }),
            None => Ok(()),
        }
    }

    fn check_peer_budget(&self, peer: Option<IpAddr>) -> Result<()> {
        match self.throttle.blocked(None, peer, self.clock.now()) {
            Some(wait) => Err(Error::RateLimited { retry_after: wait.max(1) }),
            None => Ok(()),
        }
    }

    /// Records a failed login (of any kind: Basic, Bearer, token, UI, gRPC);
    /// `user` is `None` for a token, which names nobody.
    pub fn fail(&self, user: Option<&str>, peer: Option<IpAddr>) {
        log::info!(
            "login failed user={} peer={}",
            user.unwrap_or("-").escape_debug().take(64).collect::<String>(),
            peer.map_or("-".to_string(), |p| p.to_string())
        );
        self.throttle.record_failure(user, peer, self.clock.now());
        self.share(user, peer, false);
    }

    /// See `Throttle::audit_failure`.
    pub fn audit_failure(&self, peer: Option<IpAddr>) -> Option<u64> {
        self.throttle.audit_failure(peer, self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_backs_off_per_user_and_address_and_budgets_addresses() {
        let t = Throttle::new();
        let (a, b): (Option<IpAddr>, Option<IpAddr>) =
            (Some("10.0.0.1".parse().unwrap()), Some("10.0.0.2".parse().unwrap()));
        for i in 0..FREE_FAILURES {
            assert!(t.blocked(Some("bob"), a, 100).is_none(), "failure {i} is free");
            t.record_failure(Some("bob"), a, 100);
        }
        assert_eq!(t.blocked(Some("bob"), a, 100), Some(30));
        // Nobody else is locked out: not bob from elsewhere, not carol here.
        assert!(t.blocked(Some("bob"), b, 100).is_none());
        assert!(t.blocked(Some("carol"), a, 100).is_none());
        assert!(t.blocked(Some("bob"), a, 130).is_none(), "the back-off ends");
        t.record_failure(Some("bob"), a, 130);
        assert_eq!(t.blocked(Some("bob"), a, 130), Some(60), "and doubles");
        t.record_success("bob", a);
        assert!(t.blocked(Some("bob"), a, 130).is_none(), "a success resets it");
        // One address failing for many users runs out of its budget.
        let c: Option<IpAddr> = Some("10.0.0.3".parse().unwrap());
        for i in 0..PEER_BUDGET {
            t.record_failure(Some(&format!("u{i}")), c, 200);
        }
        assert!(t.blocked(Some("anyone"), c, 200).is_some());
        assert!(t.blocked(Some("anyone"), c, 200 + PEER_WINDOW).is_none(), "the window slides");
        assert!(t.blocked(Some("anyone"), b, 200).is_none());
    }

    #[test]
    fn failure_audits_are_folded_per_address_and_window() {
        let t = Throttle::new();
        let a: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        assert_eq!(t.audit_failure(a, 100), Some(0));
        for _ in 0..50 {
            assert_eq!(t.audit_failure(a, 110), None);
        }
        assert_eq!(t.audit_failure(Some("10.0.0.2".parse().unwrap()), 110), Some(0));
        assert_eq!(
            t.audit_failure(a, 100 + AUDIT_WINDOW),
            Some(50),
            "the next window says how many were folded"
        );
    }
}

#[cfg(test)]
mod renewal_tests {
    use super::*;
    use crate::db::{self, Db};
    use std::sync::atomic::AtomicI64;

    struct Clock(AtomicI64);
    impl crate::model::Clock for Clock {
        fn now(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// The local provider, counting the password checks it is asked for.
    struct Counting(local::LocalProvider, Arc<AtomicU64>);
    impl IdentityProvider for Counting {
        fn login(&self, u: &str, p: &Password, s: &ScopeFor) -> Result<Option<Issued>> {
            self.0.login(u, p, s)
        }
        fn validate(&self, t: &Token) -> Result<Option<(Principal, i64)>> {
            self.0.validate(t)
        }
        fn generation(&self) -> Result<i64> {
            self.0.generation()
        }
        fn recheck(&self, p: &Principal, gen: i64) -> Result<Option<(Principal, i64)>> {
            self.0.recheck(p, gen)
        }
        fn check_password(&self, u: &str, p: &Password) -> Result<Option<(Principal, i64)>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.check_password(u, p)
        }
    }

    #[test]
    fn a_cached_basic_credential_is_renewed_without_hashing_until_users_change() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("mcr.db")).unwrap();
        let hash = local::hash_password(&Password::new(String::from("pw-1"))).unwrap();
        db.write(|tx| db::users::insert(tx, "bob", &hash, "[]", "human", 0)).unwrap();
        let clock = Arc::new(Clock(AtomicI64::new(1_000)));
        let checks = Arc::new(AtomicU64::new(0));
        let provider = Counting(local::LocalProvider::new(db.clone(), clock.clone(), 3600), checks.clone());
        let auth = Auth::new(Box::new(provider), clock.clone());
        let creds = |p: &str| Credentials::Basic("bob".into(), Password::new(String::from(p)));
        assert_eq!(auth.authenticate(&creds("pw-1"), None).unwrap().username, "bob");
        // Five minutes of steady use, well past the cache's expiry: renewed
        // from the user's record, never hashed again.
        for _ in 0..75 {
            clock.0.fetch_add(4, Ordering::SeqCst);
            assert_eq!(auth.authenticate(&creds("pw-1"), None).unwrap().username, "bob");
        }
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        // A password change (by any process) voids the cached check.
        let new = local::hash_password(&Password::new(String::from("pw-2"))).unwrap();
        db.write(|tx| {
            db::users::set_password(tx, "bob", &new)?;
            db::users::bump_generation(tx)
        })
        .unwrap();
        assert!(auth.authenticate(&creds("pw-1"), None).is_err());
        assert_eq!(auth.authenticate(&creds("pw-2"), None).unwrap().username, "bob");
        assert_eq!(checks.load(Ordering::SeqCst), 3);
        // So does a disable.
        db.write(|tx| {
            db::users::set_disabled(tx, "bob", true)?;
            db::users::bump_generation(tx)
        })
        .unwrap();
        assert!(auth.authenticate(&creds("pw-2"), None).is_err());
    }
}
