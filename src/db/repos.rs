//! Repository rows.

use super::{args, Conn, Tx};
use crate::error::Result;

pub fn id(c: &Conn, name: &str) -> Result<Option<i64>> {
    c.one("look up repository", "SELECT id FROM repositories WHERE name = ?1", args![name], |r| r.get(0))
}

/// The repository's id, creating the row if needed.
pub fn ensure(c: &Tx, name: &str, now: i64) -> Result<i64> {
    if let Some(id) = id(c, name)? {
        return Ok(id);
    }
    let id = c.one(
        "insert repository",
        "INSERT INTO repositories(name, created_at) VALUES (?1, ?2) RETURNING id",
        args![name, now],
        |r| r.get(0),
    )?;
    id.ok_or_else(|| crate::error::Error::Internal(anyhow::anyhow!("insert repository returned no id")))
}

/// Names of repositories that hold at least one manifest, after `last`, in
/// byte order, at most `limit`.
pub fn list_with_manifests(c: &Conn, last: &str, limit: usize) -> Result<Vec<String>> {
    c.all(
        "list catalog",
        "SELECT name FROM repositories r WHERE name > ?1
           AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id)
         ORDER BY name LIMIT ?2",
        args![last, limit],
        |r| r.get(0),
    )
}
