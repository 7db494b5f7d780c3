//! The queries of garbage collection and reconciliation.

use super::{optional, Conn, Sql, Tx};
use crate::error::Result;
use rusqlite::params;

/// Deletes untagged manifests older than `cutoff` that nothing references:
/// not an index's child in the same repository, and not a referrer whose
/// subject is present.  Returns how many went.
pub fn delete_untagged_manifests(c: &Tx, cutoff: i64) -> Result<u64> {
    let n = c
        .execute(
            "DELETE FROM manifests WHERE id IN (
               SELECT m.id FROM manifests m
               WHERE m.created_at <= ?1
                 AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
                 AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb JOIN manifests p ON p.id = mb.manifest_id
                                 WHERE mb.kind = 'manifest' AND mb.digest = m.digest AND p.repo_id = m.repo_id)
                 AND NOT (m.subject_digest IS NOT NULL AND EXISTS
                          (SELECT 1 FROM manifests s WHERE s.repo_id = m.repo_id AND s.digest = m.subject_digest)))",
            [cutoff],
        )
        .sql("delete untagged manifests")?;
    Ok(n as u64)
}

/// Deletes blob rows older than `cutoff` that no manifest references, and
/// calls `f` with each deleted digest and size.
pub fn delete_unreferenced_blobs(c: &Tx, cutoff: i64, mut f: impl FnMut(String, u64)) -> Result<()> {
    let mut s = c
        .prepare(
            "DELETE FROM blobs WHERE last_seen <= ?1 AND NOT EXISTS
               (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = blobs.digest AND mb.kind IN ('config', 'layer'))
             RETURNING digest, size",
        )
        .sql("prepare blob sweep")?;
    let mut rows = s.query([cutoff]).sql("sweep blobs")?;
    while let Some(r) = rows.next().sql("read swept blob")? {
        f(r.get(0).sql("swept digest")?, r.get::<_, i64>(1).sql("swept size")? as u64);
    }
    Ok(())
}

pub fn blob_exists(c: &Conn, digest: &str) -> Result<bool> {
    Ok(optional(
        c.prepare_cached("SELECT 1 FROM blobs WHERE digest = ?1")
            .and_then(|mut s| s.query_row([digest], |_| Ok(()))),
        "check blob row",
    )?
    .is_some())
}

pub fn upload_exists(c: &Conn, id: &str) -> Result<bool> {
    Ok(optional(
        c.prepare_cached("SELECT 1 FROM uploads WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |_| Ok(()))),
        "check upload row",
    )?
    .is_some())
}

/// Every blob row's digest, streamed.
pub fn each_blob(c: &Conn, mut f: impl FnMut(String)) -> Result<()> {
    let mut s = c.prepare("SELECT digest FROM blobs").sql("prepare blob scan")?;
    let mut rows = s.query([]).sql("scan blobs")?;
    while let Some(r) = rows.next().sql("read blob row")? {
        f(r.get(0).sql("blob digest")?);
    }
    Ok(())
}

/// Upload sessions untouched since `cutoff`.
pub fn stale_uploads(c: &Conn, cutoff: i64) -> Result<Vec<String>> {
    let mut s = c.prepare("SELECT id FROM uploads WHERE touched_at <= ?1").sql("prepare stale uploads")?;
    let rows = s.query_map(params![cutoff], |r| r.get(0)).sql("find stale uploads")?;
    rows.collect::<rusqlite::Result<Vec<String>>>().sql("read stale uploads")
}

/// Deletes one upload session if it is still untouched since `cutoff`.
pub fn delete_stale_upload(c: &Tx, id: &str, cutoff: i64) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM uploads WHERE id = ?1 AND touched_at <= ?2")
        .and_then(|mut s| s.execute(params![id, cutoff]))
        .sql("purge upload")?;
    Ok(n > 0)
}

/// Refreshes a blob's `last_seen` (a mount or a repeated upload).
pub fn touch_blob(c: &Tx, digest: &str, now: i64) -> Result<()> {
    c.prepare_cached("UPDATE blobs SET last_seen = ?2 WHERE digest = ?1")
        .and_then(|mut s| s.execute(params![digest, now]))
        .sql("touch blob")?;
    Ok(())
}
