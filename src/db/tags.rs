//! Tags: repository-scoped names pointing at manifests.

use super::Sql;
use super::{Conn, Tx};
use crate::error::Result;
use rusqlite::params;

/// Points a tag at a manifest; returns the digest it pointed at before,
/// when it moved.
pub fn set(c: &Tx, repo_id: i64, name: &str, manifest_id: i64, now: i64) -> Result<Option<String>> {
    let before: Option<(i64, String)> = super::optional(
        c.prepare_cached(
            "SELECT t.manifest_id, m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id
             WHERE t.repo_id = ?1 AND t.name = ?2",
        )
        .and_then(|mut s| s.query_row(params![repo_id, name], |r| Ok((r.get(0)?, r.get(1)?)))),
        "look up tag",
    )?;
    c.prepare_cached(
        "INSERT INTO tags(repo_id, name, manifest_id, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(repo_id, name) DO UPDATE SET manifest_id = excluded.manifest_id,
                                                  updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![repo_id, name, manifest_id, now]))
    .sql("set tag")?;
    Ok(before.filter(|(id, _)| *id != manifest_id).map(|(_, d)| d))
}

/// Tag names after `last`, in byte order, at most `limit`.
pub fn list(c: &Conn, repo_id: i64, last: &str, limit: usize) -> Result<Vec<String>> {
    let mut s = c
        .prepare_cached("SELECT name FROM tags WHERE repo_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3")
        .sql("prepare tag list")?;
    let rows = s.query_map(params![repo_id, last, limit as i64], |r| r.get(0)).sql("query tag list")?;
    rows.collect::<rusqlite::Result<Vec<String>>>().sql("read tag list")
}
