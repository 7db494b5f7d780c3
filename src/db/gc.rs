//! The queries of garbage collection and reconciliation.

use super::{args, Conn, Tx};
use crate::error::Result;

/// Deletes untagged manifests older than `cutoff` that nothing references:
/// not an index's child in the same repository, and not a referrer whose
/// subject is present.  Returns how many went.
pub fn delete_untagged_manifests(c: &Tx, cutoff: i64) -> Result<u64> {
    let n = c.exec(
        "delete untagged manifests",
        "DELETE FROM manifests WHERE id IN (
           SELECT m.id FROM manifests m
           WHERE m.created_at <= ?1
             AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
             AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb JOIN manifests p ON p.id = mb.manifest_id
                             WHERE mb.kind = 'manifest' AND mb.digest = m.digest AND p.repo_id = m.repo_id)
             AND NOT (m.subject_digest IS NOT NULL AND EXISTS
                      (SELECT 1 FROM manifests s WHERE s.repo_id = m.repo_id AND s.digest = m.subject_digest)))",
        args![cutoff],
    )?;
    Ok(n as u64)
}

/// Deletes blob rows older than `cutoff` that no manifest references, and
/// calls `f` with each deleted digest and size.
pub fn delete_unreferenced_blobs(c: &Tx, cutoff: i64, mut f: impl FnMut(String, u64)) -> Result<()> {
    c.each(
        "sweep blobs",
        "DELETE FROM blobs WHERE last_seen <= ?1 AND NOT EXISTS
           (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = blobs.digest AND mb.kind IN ('config', 'layer'))
         RETURNING digest, size",
        args![cutoff],
        |r| {
            f(r.get(0)?, r.get(1)?);
            Ok(true)
        },
    )
}

pub fn blob_exists(c: &Conn, digest: &str) -> Result<bool> {
    Ok(c.one("check blob row", "SELECT 1 FROM blobs WHERE digest = ?1", args![digest], |_| Ok(()))?.is_some())
}

pub fn upload_exists(c: &Conn, id: &str) -> Result<bool> {
    Ok(c.one("check upload row", "SELECT 1 FROM uploads WHERE id = ?1", args![id], |_| Ok(()))?.is_some())
}

/// Every blob row's digest, streamed.
pub fn each_blob(c: &Conn, mut f: impl FnMut(String)) -> Result<()> {
    c.each("scan blobs", "SELECT digest FROM blobs", args![], |r| {
        f(r.get(0)?);
        Ok(true)
    })
}

/// Upload sessions untouched since `cutoff`.
pub fn stale_uploads(c: &Conn, cutoff: i64) -> Result<Vec<String>> {
    c.all("find stale uploads", "SELECT id FROM uploads WHERE touched_at <= ?1", args![cutoff], |r| r.get(0))
}

/// Deletes one upload session if it is still untouched since `cutoff`.
pub fn delete_stale_upload(c: &Tx, id: &str, cutoff: i64) -> Result<bool> {
    let n =
        c.exec("purge upload", "DELETE FROM uploads WHERE id = ?1 AND touched_at <= ?2", args![id, cutoff])?;
    Ok(n > 0)
}

/// Refreshes a blob's `last_seen` (a mount or a repeated upload).
pub fn touch_blob(c: &Tx, digest: &str, now: i64) -> Result<()> {
    c.exec("touch blob", "UPDATE blobs SET last_seen = ?2 WHERE digest = ?1", args![digest, now])?;
    Ok(())
}
