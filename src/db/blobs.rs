//! Blob rows and which repositories may serve them.

use super::{args, Conn, Tx};
use crate::error::Result;

/// Records a committed blob file (or refreshes `last_seen`).
pub fn insert(c: &Tx, digest: &str, size: u64, now: i64) -> Result<()> {
    c.exec(
        "insert blob",
        "INSERT INTO blobs(digest, size, created_at, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(digest) DO UPDATE SET last_seen = excluded.last_seen",
        args![digest, size, now],
    )?;
    Ok(())
}

pub fn link(c: &Tx, repo_id: i64, digest: &str, now: i64) -> Result<()> {
    c.exec(
        "link blob",
        "INSERT INTO repository_blobs(repo_id, digest, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        args![repo_id, digest, now],
    )?;
    Ok(())
}

/// Removes a repository's association; false when there was none.
pub fn unlink(c: &Tx, repo_id: i64, digest: &str) -> Result<bool> {
    let n = c.exec(
        "unlink blob",
        "DELETE FROM repository_blobs WHERE repo_id = ?1 AND digest = ?2",
        args![repo_id, digest],
    )?;
    Ok(n > 0)
}

/// Size of a blob the repository may serve.
pub fn size_in_repo(c: &Conn, repo_id: i64, digest: &str) -> Result<Option<u64>> {
    c.one(
        "look up blob in repository",
        "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
         WHERE rb.repo_id = ?1 AND rb.digest = ?2",
        args![repo_id, digest],
        |r| r.get(0),
    )
}

/// Size of a blob, whichever repository has it.
pub fn size(c: &Conn, digest: &str) -> Result<Option<u64>> {
    c.one("look up blob", "SELECT size FROM blobs WHERE digest = ?1", args![digest], |r| r.get(0))
}
