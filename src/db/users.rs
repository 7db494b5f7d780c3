//! Users of the local identity provider and their sessions (hashed tokens).

use super::{args, Conn, Row, Tx};
use crate::error::Result;

#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    /// JSON array of role names.
    pub roles: String,
    pub account_type: String,
    pub disabled: bool,
    pub created_at: i64,
}

const COLUMNS: &str = "id, username, password_hash, roles, account_type, disabled, created_at";

fn user(r: &Row) -> Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        roles: r.get(3)?,
        account_type: r.get(4)?,
        disabled: r.get(5)?,
        created_at: r.get(6)?,
    })
}

pub fn count(c: &Conn) -> Result<i64> {
    Ok(c.one("count users", "SELECT count(*) FROM users", args![], |r| r.get(0))?.unwrap_or(0))
}

pub fn by_name(c: &Conn, username: &str) -> Result<Option<User>> {
    c.one("look up user", &format!("SELECT {COLUMNS} FROM users WHERE username = ?1"), args![username], user)
}

pub fn insert(
    c: &Tx,
    username: &str,
    password_hash: &str,
    roles: &str,
    account_type: &str,
    now: i64,
) -> Result<i64> {
    let id = c.one(
        "insert user",
        "INSERT INTO users(username, password_hash, roles, account_type, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        args![username, password_hash, roles, account_type, now],
        |r| r.get(0),
    )?;
    id.ok_or_else(|| crate::error::Error::Internal(anyhow::anyhow!("insert user returned no id")))
}

pub fn set_password(c: &Tx, username: &str, password_hash: &str) -> Result<bool> {
    let n = c.exec(
        "set password",
        "UPDATE users SET password_hash = ?2 WHERE username = ?1",
        args![username, password_hash],
    )?;
    Ok(n > 0)
}

pub fn set_disabled(c: &Tx, username: &str, disabled: bool) -> Result<bool> {
    let n = c.exec(
        "set disabled",
        "UPDATE users SET disabled = ?2 WHERE username = ?1",
        args![username, disabled],
    )?;
    Ok(n > 0)
}

pub fn list(c: &Conn) -> Result<Vec<User>> {
    c.all("list users", &format!("SELECT {COLUMNS} FROM users ORDER BY username"), args![], user)
}

/// Marks a change to users' credentials or status, for every process
/// sharing the database.
pub fn bump_generation(c: &Tx) -> Result<()> {
    c.exec("bump auth generation", "UPDATE auth_generation SET value = value + 1 WHERE id = 1", args![])?;
    Ok(())
}

/// The current credentials generation (see `bump_generation`).
pub fn generation(c: &Conn) -> Result<i64> {
    Ok(c.one("read auth generation", "SELECT value FROM auth_generation WHERE id = 1", args![], |r| {
        r.get(0)
    })?
    .unwrap_or(0))
}

/// Ends every session of a user (password change, disable).
pub fn delete_sessions(c: &Tx, user_id: i64) -> Result<()> {
    c.exec("delete sessions", "DELETE FROM sessions WHERE user_id = ?1", args![user_id])?;
    Ok(())
}

pub fn insert_session(
    c: &Tx,
    token_hash: &str,
    user_id: i64,
    now: i64,
    expires_at: i64,
    scope: Option<&str>,
) -> Result<()> {
    c.exec(
        "insert session",
        "INSERT INTO sessions(token_hash, user_id, created_at, expires_at, scope) VALUES (?1, ?2, ?3, ?4, ?5)",
        args![token_hash, user_id, now, expires_at, scope],
    )?;
    // Keep the table from growing without bound.
    c.exec("purge sessions", "DELETE FROM sessions WHERE expires_at <= ?1", args![now])?;
    Ok(())
}

/// The enabled user behind an unexpired session, with its expiry and scope.
pub fn by_session(c: &Conn, token_hash: &str, now: i64) -> Result<Option<(User, i64, Option<String>)>> {
    c.one(
        "look up session",
        "SELECT u.id, u.username, u.password_hash, u.roles, u.account_type, u.disabled, u.created_at,
                s.expires_at, s.scope
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
        args![token_hash, now],
        |r| Ok((user(r)?, r.get(7)?, r.get(8)?)),
    )
}
