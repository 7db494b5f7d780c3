//! Tags: repository-scoped names pointing at manifests.

use super::{args, Conn, Tx};
use crate::error::Result;

/// Points a tag at a manifest; returns the digest it pointed at before,
/// when it moved.
pub fn set(c: &Tx, repo_id: i64, name: &str, manifest_id: i64, now: i64) -> Result<Option<String>> {
    let before: Option<(i64, String)> = c.one(
        "look up tag",
        "SELECT t.manifest_id, m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id
         WHERE t.repo_id = ?1 AND t.name = ?2",
        args![repo_id, name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    c.exec(
        "set tag",
        "INSERT INTO tags(repo_id, name, manifest_id, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(repo_id, name) DO UPDATE SET manifest_id = excluded.manifest_id,
                                                  updated_at = excluded.updated_at",
        args![repo_id, name, manifest_id, now],
    )?;
    Ok(before.filter(|(id, _)| *id != manifest_id).map(|(_, d)| d))
}

/// Tag names after `last`, in byte order, at most `limit`.
pub fn list(c: &Conn, repo_id: i64, last: &str, limit: usize) -> Result<Vec<String>> {
    c.all(
        "list tags",
        "SELECT name FROM tags WHERE repo_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
        args![repo_id, last, limit],
        |r| r.get(0),
    )
}
