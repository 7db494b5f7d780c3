//! The embedded identity provider: users in SQLite with Argon2id password
//! hashes, opaque random tokens stored as SHA-256 hashes with an expiry.

use super::{Issued, Password, Token};
use crate::app::Clock;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::model::to_hex;
use crate::policy::{AccountType, Principal};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
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

fn verify_password(p: &Password, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|h| Argon2::default().verify_password(p.expose().as_bytes(), &h).is_ok())
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
            Some(u) if !u.disabled && verify_password(password, &u.password_hash) => {
                Ok(Some((principal(&u), i64::MAX)))
            }
            Some(_) => Ok(None),
            None => {
                // Spend the same time as for a real user: no user enumeration by timing.
                let _ = verify_password(password, DUMMY_HASH);
                Ok(None)
            }
        }
    }

    fn login(&self, username: &str, password: &Password, scope: &super::ScopeFor) -> Result<Option<Issued>> {
        let Some((p, _)) = self.check_password(username, password)? else { return Ok(None) };
        let token = Token::new(to_hex(&random_bytes::<32>()?));
        let now = self.clock.now();
        let expires_at = now + self.token_ttl;
        let hash = token_hash(&token);
        let scope = match scope(&p) {
            Some(s) => Some(
                serde_json::to_string(&s)
                    .map_err(|e| Error::Internal(anyhow::anyhow!("encode scope: {e}")))?,
            ),
            None => None,
        };
        self.db.write(|tx| {
            let Some(u) = db::users::by_name(tx, &p.username)? else { return Ok(()) };
            db::users::insert_session(tx, &hash, u.id, now, expires_at, scope.as_deref())
        })?;
        Ok(Some(Issued { token, expires_at }))
    }

    fn generation(&self) -> Result<i64> {
        self.db.read(db::users::generation)
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
