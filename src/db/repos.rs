//! Repository rows.

use super::{optional, Conn, Sql, Tx};
use crate::error::Result;
use rusqlite::params;

pub fn id(c: &Conn, name: &str) -> Result<Option<i64>> {
    optional(
        c.prepare_cached("SELECT id FROM repositories WHERE name = ?1")
            .and_then(|mut s| s.query_row([name], |r| r.get(0))),
        "look up repository",
    )
}

/// The repository's id, creating the row if needed.
pub fn ensure(c: &Tx, name: &str, now: i64) -> Result<i64> {
    if let Some(id) = id(c, name)? {
        return Ok(id);
    }
    c.prepare_cached("INSERT INTO repositories(name, created_at) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![name, now]))
        .sql("insert repository")?;
    Ok(c.last_insert_rowid())
}

/// Names of repositories that hold at least one manifest, after `last`, in
/// byte order, at most `limit`.
pub fn list_with_manifests(c: &Conn, last: &str, limit: usize) -> Result<Vec<String>> {
    let mut s = c
        .prepare_cached(
            "SELECT name FROM repositories r WHERE name > ?1
               AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id)
             ORDER BY name LIMIT ?2",
        )
        .sql("prepare catalog")?;
    let rows = s.query_map(params![last, limit as i64], |r| r.get(0)).sql("query catalog")?;
    rows.collect::<rusqlite::Result<Vec<String>>>().sql("read catalog")
}
