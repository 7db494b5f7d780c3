//! The embedded identity provider: users in SQLite with Argon2id password
//! hashes, opaque random tokens stored as SHA-256 hashes with an expiry.

use super::{Issued, Password, Token};
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::model::to_hex;
use crate::model::Clock;
use crate::policy::{AccountType, Principal};
use argon2::password_hash::{self, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, Block};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub struct LocalProvider {
    db: Db,
    clock: Arc<dyn Clock>,
    token_ttl: i64,
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(anyhow::anyhow!("random bytes: {e}")))?;
    Ok(b)
}

/// Argon2id with OWASP's 7 MiB / 5 passes setting: as strong as the
/// 19 MiB / 2 default, at a third of the memory per concurrent login.
fn argon2() -> Argon2<'static> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None).expect("static argon2 params are valid");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

pub fn hash_password(p: &Password) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| Error::Internal(anyhow::anyhow!("salt: {e}")))?;
    argon2()
        .hash_password(p.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(anyhow::anyhow!("hash password: {e}")))
}

/// A stored hash never makes a check take more than this (64 MiB).
const MAX_BLOCKS: usize = 64 * 1024;

impl LocalProvider {
    /// Checks a password against a stored Argon2 hash; the comparison is
    /// constant-time (`password_hash::Output`).  The working memory (7 MiB)
    /// is mapped for this check and unmapped after it (the mmap threshold
    /// set by `mcr serve`), and `Auth` runs at most one check per core.
    fn verify_password(&self, p: &Password, hash: &str) -> bool {
        let Ok(h) = PasswordHash::new(hash) else { return false };
        let (Some(salt), Some(expected)) = (h.salt, h.hash) else { return false };
        let (Ok(params), Ok(algorithm)) =
            (argon2::Params::try_from(&h), argon2::Algorithm::try_from(h.algorithm))
        else {
            return false;
        };
        let version = match h.version.map(argon2::Version::try_from) {
            None => argon2::Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        if params.block_count() > MAX_BLOCKS {
            return false;
        }
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
        let mut out = vec![0u8; expected.len()];
        let mut mem = vec![Block::default(); params.block_count()];
        let hashed = Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(p.expose().as_bytes(), salt, &mut out, &mut mem)
            .is_ok();
        drop(mem);
        hashed && password_hash::Output::new(&out).is_ok_and(|o| o == expected)
    }
}

/// A random password for generated accounts (letters and digits, 24 chars).
pub fn random_password() -> Result<Password> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let b = random_bytes::<24>()?;
    Ok(Password::new(b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect::<String>()))
}

pub fn token_hash(t: &Token) -> String {
    to_hex(&Sha256::digest(t.expose().as_bytes()))
}

fn principal(u: &db::users::User) -> Principal {
    Principal {
        subject: format!("local:{}", u.id),
        username: u.username.clone(),
        roles: serde_json::from_str(&u.roles).unwrap_or_default(),
        account_type: if u.account_type == "system" { AccountType::System } else { AccountType::Human },
        scope: None,
    }
}

impl LocalProvider {
    pub fn new(db: Db, clock: Arc<dyn Clock>, token_ttl: i64) -> LocalProvider {
        LocalProvider { db, clock, token_ttl }
    }
}

impl super::IdentityProvider for LocalProvider {
    fn check_password(&self, username: &str, password: &Password) -> Result<Option<(Principal, i64)>> {
        let user = self.db.read(|c| db::users::by_name(c, username))?;
        match user {
            Some(u) if !u.disabled && self.verify_password(password, &u.password_hash) => {
                Ok(Some((principal(&u), i64::MAX)))
            }
            Some(u) if !u.disabled => Ok(None),
            _ => {
                // Spend the same time as for a real user: neither unknown nor
                // disabled accounts can be told apart by timing.
                let _ = self.verify_password(password, DUMMY_HASH);
                Ok(None)
            }
        }
    }

    fn login(&self, username: &str, password: &Password, scope: &super::ScopeFor) -> Result<Option<Issued>> {
        let gen = self.generation()?;
        let Some((p, _)) = self.check_password(username, password)? else { return Ok(None) };
        self.mint(&p, scope, gen)
    }

    fn mints_tokens(&self) -> bool {
        true
    }

    fn mint(&self, p: &Principal, scope: &super::ScopeFor, gen: i64) -> Result<Option<Issued>> {
        let token = Token::new(to_hex(&random_bytes::<32>()?));
        let now = self.clock.now();
        let expires_at = now + self.token_ttl;
        let hash = token_hash(&token);
        let scope = match scope(p) {
            Some(s) => Some(
                serde_json::to_string(&s)
                    .map_err(|e| Error::Internal(anyhow::anyhow!("encode scope: {e}")))?,
            ),
            None => None,
        };
        let minted = self.db.write(|tx| {
            // Users changed since the password check (a reset, a disable):
            // no token from that check.
            if db::users::generation(tx)? != gen {
                return Ok(false);
            }
            let Some(u) = db::users::by_name(tx, &p.username)?.filter(|u| !u.disabled) else {
                return Ok(false);
            };
            db::users::insert_session(tx, &hash, u.id, now, expires_at, scope.as_deref())?;
            Ok(true)
        })?;
        Ok(minted.then_some(Issued { token, expires_at }))
    }

    fn generation(&self) -> Result<i64> {
        self.db.read(db::users::generation)
    }

    fn recheck(&self, p: &Principal, gen: i64) -> Result<Option<(Principal, i64)>> {
        // The generation moves with every password change and disable, in
        // any process: unchanged, the checked password is still the user's.
        self.db.read(|c| {
            if db::users::generation(c)? != gen {
                return Ok(None);
            }
            let user = db::users::by_name(c, &p.username)?.filter(|u| !u.disabled);
            Ok(user.map(|u| principal(&u)).filter(|now| now.subject == p.subject).map(|now| (now, i64::MAX)))
        })
    }

    fn validate(&self, token: &Token) -> Result<Option<(Principal, i64)>> {
        let now = self.clock.now();
        let found = self.db.read(|c| db::users::by_session(c, &token_hash(token), now))?;
        Ok(found.map(|(u, exp, scope)| {
            let mut p = principal(&u);
            // A scope that no longer parses grants nothing rather than everything.
            p.scope = scope.map(|s| std::sync::Arc::new(serde_json::from_str(&s).unwrap_or_default()));
            (p, exp)
        }))
    }
}

/// Argon2id hash of a random string, verified against when the user does not exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=7168,t=5,p=1$c29tZXNhbHRzb21lc2FsdA$0C0k6BpszE2Uq0BvGBkBRVEjhjg9fMRKmEFVfT6h7tw";
