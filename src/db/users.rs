//! Users of the local identity provider and their sessions (hashed tokens).

use super::{optional, Conn, Sql, Tx};
use crate::error::Result;
use rusqlite::{params, Row};

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

fn user(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        roles: r.get(3)?,
        account_type: r.get(4)?,
        disabled: r.get::<_, i64>(5)? != 0,
        created_at: r.get(6)?,
    })
}

pub fn count(c: &Conn) -> Result<i64> {
    c.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).sql("count users")
}

pub fn by_name(c: &Conn, username: &str) -> Result<Option<User>> {
    optional(
        c.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE username = ?1"))
            .and_then(|mut s| s.query_row([username], user)),
        "look up user",
    )
}

pub fn insert(
    c: &Tx,
    username: &str,
    password_hash: &str,
    roles: &str,
    account_type: &str,
    now: i64,
) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO users(username, password_hash, roles, account_type, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![username, password_hash, roles, account_type, now]))
    .sql("insert user")?;
    Ok(c.last_insert_rowid())
}

pub fn set_password(c: &Tx, username: &str, password_hash: &str) -> Result<bool> {
    let n = c
        .prepare_cached("UPDATE users SET password_hash = ?2 WHERE username = ?1")
        .and_then(|mut s| s.execute(params![username, password_hash]))
        .sql("set password")?;
    Ok(n > 0)
}

pub fn set_disabled(c: &Tx, username: &str, disabled: bool) -> Result<bool> {
    let n = c
        .prepare_cached("UPDATE users SET disabled = ?2 WHERE username = ?1")
        .and_then(|mut s| s.execute(params![username, disabled as i64]))
        .sql("set disabled")?;
    Ok(n > 0)
}

pub fn list(c: &Conn) -> Result<Vec<User>> {
    let mut s =
        c.prepare_cached(&format!("SELECT {COLUMNS} FROM users ORDER BY username")).sql("prepare users")?;
    let rows = s.query_map([], user).sql("query users")?;
    rows.collect::<rusqlite::Result<Vec<_>>>().sql("read users")
}

/// Marks a change to users' credentials or status, for every process
/// sharing the database.
pub fn bump_generation(c: &Tx) -> Result<()> {
    c.prepare_cached("UPDATE auth_generation SET value = value + 1 WHERE id = 1")
        .and_then(|mut s| s.execute([]))
        .sql("bump auth generation")?;
    Ok(())
}

/// The current credentials generation (see `bump_generation`).
pub fn generation(c: &Conn) -> Result<i64> {
    c.prepare_cached("SELECT value FROM auth_generation WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .sql("read auth generation")
}

/// Ends every session of a user (password change, disable).
pub fn delete_sessions(c: &Tx, user_id: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM sessions WHERE user_id = ?1")
        .and_then(|mut s| s.execute([user_id]))
        .sql("delete sessions")?;
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
    c.prepare_cached(
        "INSERT INTO sessions(token_hash, user_id, created_at, expires_at, scope) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![token_hash, user_id, now, expires_at, scope]))
    .sql("insert session")?;
    // Keep the table from growing without bound.
    c.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")
        .and_then(|mut s| s.execute([now]))
        .sql("purge sessions")?;
    Ok(())
}

/// The enabled user behind an unexpired session, with its expiry and scope.
pub fn by_session(c: &Conn, token_hash: &str, now: i64) -> Result<Option<(User, i64, Option<String>)>> {
    optional(
        c.prepare_cached(
            "SELECT u.id, u.username, u.password_hash, u.roles, u.account_type, u.disabled, u.created_at,
                    s.expires_at, s.scope
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
        )
        .and_then(|mut s| s.query_row(params![token_hash, now], |r| Ok((user(r)?, r.get(7)?, r.get(8)?)))),
        "look up session",
    )
}
