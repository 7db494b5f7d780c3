//! Web UI sessions: a hash of the id, who logged in, and the two clocks
//! (last use for the idle expiry, `expires_at` for the absolute one).

use super::{args, Conn, Tx};
use crate::error::Result;

/// Most sessions one user keeps; a new login ends the oldest beyond it.
pub const PER_USER: i64 = 10;

pub struct UiSession {
    pub username: String,
    /// The principal at login, as JSON.
    pub principal: String,
    pub last_seen: i64,
    pub expires_at: i64,
}

/// Records a session, and drops sessions past their absolute expiry.
pub fn insert(
    c: &Tx,
    id_hash: &str,
    username: &str,
    principal: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    c.exec(
        "insert ui session",
        "INSERT INTO ui_sessions(id_hash, username, principal, created_at, last_seen, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
        args![id_hash, username, principal, now, expires_at],
    )?;
    c.exec("purge ui sessions", "DELETE FROM ui_sessions WHERE expires_at <= ?1", args![now])?;
    c.exec(
        "cap ui sessions",
        "DELETE FROM ui_sessions WHERE username = ?1 AND id_hash != ?2 AND id_hash NOT IN
           (SELECT id_hash FROM ui_sessions WHERE username = ?1 AND id_hash != ?2
            ORDER BY created_at DESC, last_seen DESC LIMIT ?3)",
        args![username, id_hash, PER_USER - 1],
    )?;
    Ok(())
}

pub fn get(c: &Conn, id_hash: &str) -> Result<Option<UiSession>> {
    c.one(
        "look up ui session",
        "SELECT username, principal, last_seen, expires_at FROM ui_sessions WHERE id_hash = ?1",
        args![id_hash],
        |r| {
            Ok(UiSession {
                username: r.get(0)?,
                principal: r.get(1)?,
                last_seen: r.get(2)?,
                expires_at: r.get(3)?,
            })
        },
    )
}

pub fn touch(c: &Tx, id_hash: &str, now: i64) -> Result<()> {
    c.exec(
        "touch ui session",
        "UPDATE ui_sessions SET last_seen = ?2 WHERE id_hash = ?1",
        args![id_hash, now],
    )?;
    Ok(())
}

/// Ends one session; false when it did not exist.
pub fn delete(c: &Tx, id_hash: &str) -> Result<bool> {
    Ok(c.exec("delete ui session", "DELETE FROM ui_sessions WHERE id_hash = ?1", args![id_hash])? > 0)
}

/// Ends every session of a user (password change, disable).
pub fn delete_for_user(c: &Tx, username: &str) -> Result<()> {
    c.exec("delete ui sessions of user", "DELETE FROM ui_sessions WHERE username = ?1", args![username])?;
    Ok(())
}
