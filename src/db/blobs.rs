//! Blob rows and which repositories may serve them.

use super::{optional, Conn, Sql, Tx};
use crate::error::Result;
use rusqlite::params;

/// Records a committed blob file (or refreshes `last_seen`).
pub fn insert(c: &Tx, digest: &str, size: u64, now: i64) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO blobs(digest, size, created_at, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(digest) DO UPDATE SET last_seen = excluded.last_seen",
    )
    .and_then(|mut s| s.execute(params![digest, size as i64, now]))
    .sql("insert blob")?;
    Ok(())
}

pub fn link(c: &Tx, repo_id: i64, digest: &str, now: i64) -> Result<()> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO repository_blobs(repo_id, digest, created_at) VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut s| s.execute(params![repo_id, digest, now]))
    .sql("link blob")?;
    Ok(())
}

/// Removes a repository's association; false when there was none.
pub fn unlink(c: &Tx, repo_id: i64, digest: &str) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM repository_blobs WHERE repo_id = ?1 AND digest = ?2")
        .and_then(|mut s| s.execute(params![repo_id, digest]))
        .sql("unlink blob")?;
    Ok(n > 0)
}

/// Size of a blob the repository may serve.
pub fn size_in_repo(c: &Conn, repo_id: i64, digest: &str) -> Result<Option<u64>> {
    optional(
        c.prepare_cached(
            "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
             WHERE rb.repo_id = ?1 AND rb.digest = ?2",
        )
        .and_then(|mut s| s.query_row(params![repo_id, digest], |r| r.get::<_, i64>(0))),
        "look up blob in repository",
    )
    .map(|o| o.map(|v| v as u64))
}

/// Size of a blob, whichever repository has it.
pub fn size(c: &Conn, digest: &str) -> Result<Option<u64>> {
    optional(
        c.prepare_cached("SELECT size FROM blobs WHERE digest = ?1")
            .and_then(|mut s| s.query_row([digest], |r| r.get::<_, i64>(0))),
        "look up blob",
    )
    .map(|o| o.map(|v| v as u64))
}
