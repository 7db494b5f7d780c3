//! Manifests, their references (`manifest_blobs`) and referrer lookups.

use super::{optional, Conn, Sql, Tx};
use crate::error::Result;
use rusqlite::{params, Row};

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

fn manifest(r: &Row) -> rusqlite::Result<Manifest> {
    Ok(Manifest { id: r.get(0)?, digest: r.get(1)?, media_type: r.get(2)?, body: r.get(3)? })
}

pub fn by_digest(c: &Conn, repo_id: i64, digest: &str) -> Result<Option<Manifest>> {
    optional(
        c.prepare_cached(
            "SELECT id, digest, media_type, body FROM manifests WHERE repo_id = ?1 AND digest = ?2",
        )
        .and_then(|mut s| s.query_row(params![repo_id, digest], manifest)),
        "look up manifest by digest",
    )
}

pub fn by_tag(c: &Conn, repo_id: i64, tag: &str) -> Result<Option<Manifest>> {
    optional(
        c.prepare_cached(
            "SELECT m.id, m.digest, m.media_type, m.body FROM tags t
             JOIN manifests m ON m.id = t.manifest_id WHERE t.repo_id = ?1 AND t.name = ?2",
        )
        .and_then(|mut s| s.query_row(params![repo_id, tag], manifest)),
        "look up manifest by tag",
    )
}

pub fn exists(c: &Conn, repo_id: i64, digest: &str) -> Result<bool> {
    Ok(optional(
        c.prepare_cached("SELECT 1 FROM manifests WHERE repo_id = ?1 AND digest = ?2")
            .and_then(|mut s| s.query_row(params![repo_id, digest], |_| Ok(()))),
        "check manifest",
    )?
    .is_some())
}

/// Inserts a manifest unless the repository has it already; returns its id
/// and whether it was new.
pub fn insert(c: &Tx, repo_id: i64, m: &NewManifest, now: i64) -> Result<(i64, bool)> {
    if let Some(id) = optional(
        c.prepare_cached("SELECT id FROM manifests WHERE repo_id = ?1 AND digest = ?2")
            .and_then(|mut s| s.query_row(params![repo_id, m.digest], |r| r.get(0))),
        "check manifest",
    )? {
        return Ok((id, false));
    }
    c.prepare_cached(
        "INSERT INTO manifests(repo_id, digest, media_type, artifact_type, subject_digest,
                               annotations, size, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            repo_id,
            m.digest,
            m.media_type,
            m.artifact_type,
            m.subject,
            m.annotations,
            m.body.len() as i64,
            m.body,
            now
        ])
    })
    .sql("insert manifest")?;
    Ok((c.last_insert_rowid(), true))
}

pub fn add_reference(c: &Tx, manifest_id: i64, digest: &str, kind: &str) -> Result<()> {
    c.prepare_cached("INSERT OR IGNORE INTO manifest_blobs(manifest_id, digest, kind) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![manifest_id, digest, kind]))
        .sql("insert manifest reference")?;
    Ok(())
}

/// Deletes a manifest (tags and references cascade); false when absent.
pub fn delete(c: &Tx, repo_id: i64, digest: &str) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM manifests WHERE repo_id = ?1 AND digest = ?2")
        .and_then(|mut s| s.execute(params![repo_id, digest]))
        .sql("delete manifest")?;
    Ok(n > 0)
}

pub fn referrers(c: &Conn, repo_id: i64, subject: &str) -> Result<Vec<Referrer>> {
    let mut s = c
        .prepare_cached(
            "SELECT digest, media_type, size, artifact_type, annotations FROM manifests
             WHERE repo_id = ?1 AND subject_digest = ?2 ORDER BY created_at, digest",
        )
        .sql("prepare referrers")?;
    let rows = s
        .query_map(params![repo_id, subject], |r| {
            Ok(Referrer {
                digest: r.get(0)?,
                media_type: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                artifact_type: r.get(3)?,
                annotations: r.get(4)?,
            })
        })
        .sql("query referrers")?;
    rows.collect::<rusqlite::Result<Vec<_>>>().sql("read referrers")
}
