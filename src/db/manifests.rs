//! Manifests, their references (`manifest_blobs`) and referrer lookups.

use super::{args, Conn, Row, Tx};
use crate::error::Result;

pub struct Manifest {
    pub id: i64,
    pub digest: String,
    pub media_type: String,
    pub body: Vec<u8>,
}

pub struct NewManifest<'a> {
    pub digest: &'a str,
    pub media_type: &'a str,
    pub artifact_type: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub annotations: Option<&'a str>,
    pub body: &'a [u8],
}

/// A manifest that names another as its `subject`.
pub struct Referrer {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

fn manifest(r: &Row) -> Result<Manifest> {
    Ok(Manifest { id: r.get(0)?, digest: r.get(1)?, media_type: r.get(2)?, body: r.get(3)? })
}

pub fn by_digest(c: &Conn, repo_id: i64, digest: &str) -> Result<Option<Manifest>> {
    c.one(
        "look up manifest by digest",
        "SELECT id, digest, media_type, body FROM manifests WHERE repo_id = ?1 AND digest = ?2",
        args![repo_id, digest],
        manifest,
    )
}

pub fn by_tag(c: &Conn, repo_id: i64, tag: &str) -> Result<Option<Manifest>> {
    c.one(
        "look up manifest by tag",
        "SELECT m.id, m.digest, m.media_type, m.body FROM tags t
         JOIN manifests m ON m.id = t.manifest_id WHERE t.repo_id = ?1 AND t.name = ?2",
        args![repo_id, tag],
        manifest,
    )
}

pub fn exists(c: &Conn, repo_id: i64, digest: &str) -> Result<bool> {
    Ok(c.one(
        "check manifest",
        "SELECT 1 FROM manifests WHERE repo_id = ?1 AND digest = ?2",
        args![repo_id, digest],
        |_| Ok(()),
    )?
    .is_some())
}

/// Inserts a manifest unless the repository has it already; returns its id
/// and whether it was new.
pub fn insert(c: &Tx, repo_id: i64, m: &NewManifest, now: i64) -> Result<(i64, bool)> {
    if let Some(id) = c.one(
        "check manifest",
        "SELECT id FROM manifests WHERE repo_id = ?1 AND digest = ?2",
        args![repo_id, m.digest],
        |r| r.get(0),
    )? {
        return Ok((id, false));
    }
    let id = c.one(
        "insert manifest",
        "INSERT INTO manifests(repo_id, digest, media_type, artifact_type, subject_digest,
                               annotations, size, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        args![
            repo_id,
            m.digest,
            m.media_type,
            m.artifact_type,
            m.subject,
            m.annotations,
            m.body.len(),
            m.body,
            now
        ],
        |r| r.get(0),
    )?;
    let id =
        id.ok_or_else(|| crate::error::Error::Internal(anyhow::anyhow!("insert manifest returned no id")))?;
    Ok((id, true))
}

pub fn add_reference(c: &Tx, manifest_id: i64, digest: &str, kind: &str) -> Result<()> {
    c.exec(
        "insert manifest reference",
        "INSERT INTO manifest_blobs(manifest_id, digest, kind) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        args![manifest_id, digest, kind],
    )?;
    Ok(())
}

/// Deletes a manifest (tags and references cascade); false when absent.
pub fn delete(c: &Tx, repo_id: i64, digest: &str) -> Result<bool> {
    let n = c.exec(
        "delete manifest",
        "DELETE FROM manifests WHERE repo_id = ?1 AND digest = ?2",
        args![repo_id, digest],
    )?;
    Ok(n > 0)
}

pub fn referrers(c: &Conn, repo_id: i64, subject: &str) -> Result<Vec<Referrer>> {
    c.all(
        "list referrers",
        "SELECT digest, media_type, size, artifact_type, annotations FROM manifests
         WHERE repo_id = ?1 AND subject_digest = ?2 ORDER BY created_at, digest",
        args![repo_id, subject],
        |r| {
            Ok(Referrer {
                digest: r.get(0)?,
                media_type: r.get(1)?,
                size: r.get(2)?,
                artifact_type: r.get(3)?,
                annotations: r.get(4)?,
            })
        },
    )
}
