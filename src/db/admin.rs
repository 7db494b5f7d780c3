//! Queries of the admin API: repository summaries, counts, tag listings.

use super::{args, Conn, Row, Tx};
use crate::error::Result;

#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct RepoSummary {
    pub name: String,
    pub tags: i64,
    pub manifests: i64,
    /// Blobs the repository may serve plus its manifests, in bytes.
    pub size_bytes: i64,
    pub created_at: i64,
}

const SUMMARY: &str = "SELECT r.name,
        (SELECT count(*) FROM tags t WHERE t.repo_id = r.id),
        (SELECT count(*) FROM manifests m WHERE m.repo_id = r.id),
        CAST((SELECT coalesce(sum(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
          WHERE rb.repo_id = r.id)
        + (SELECT coalesce(sum(m.size), 0) FROM manifests m WHERE m.repo_id = r.id) AS BIGINT),
        r.created_at
     FROM repositories r";

fn summary(r: &Row) -> Result<RepoSummary> {
    Ok(RepoSummary {
        name: r.get(0)?,
        tags: r.get(1)?,
        manifests: r.get(2)?,
        size_bytes: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub fn list(c: &Conn, last: &str, limit: usize) -> Result<Vec<RepoSummary>> {
    let sql = format!("{SUMMARY} WHERE r.name > ?1 ORDER BY r.name LIMIT ?2");
    c.all("list repositories", &sql, args![last, limit], summary)
}

pub fn get(c: &Conn, name: &str) -> Result<Option<RepoSummary>> {
    c.one("look up repository summary", &format!("{SUMMARY} WHERE r.name = ?1"), args![name], summary)
}

#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct TagInfo {
    pub name: String,
    pub digest: String,
    pub media_type: String,
    pub updated_at: i64,
    /// The manifest and the config and layers it names, in bytes.
    pub size: i64,
}

/// A tag's image size: its manifest plus the config and layers it names.
const TAG_SIZE: &str =
    "CAST(m.size + (SELECT coalesce(sum(b.size), 0) FROM manifest_blobs mb JOIN blobs b ON b.digest = mb.digest
                     WHERE mb.manifest_id = m.id AND mb.kind != 'manifest') AS BIGINT)";

fn tag_info(r: &Row) -> Result<TagInfo> {
    Ok(TagInfo {
        name: r.get(0)?,
        digest: r.get(1)?,
        media_type: r.get(2)?,
        updated_at: r.get(3)?,
        size: r.get(4)?,
    })
}

pub fn tags(c: &Conn, repo_id: i64) -> Result<Vec<TagInfo>> {
    let sql = format!(
        "SELECT t.name, m.digest, m.media_type, t.updated_at, {TAG_SIZE}
             FROM tags t JOIN manifests m ON m.id = t.manifest_id WHERE t.repo_id = ?1 ORDER BY t.name"
    );
    c.all("list tags", &sql, args![repo_id], tag_info)
}

/// Tags of a repository after `last`, in name order, `limit` at most.
pub fn tags_page(c: &Conn, repo_id: i64, last: &str, limit: usize) -> Result<Vec<TagInfo>> {
    let sql = format!(
        "SELECT t.name, m.digest, m.media_type, t.updated_at, {TAG_SIZE}
             FROM tags t JOIN manifests m ON m.id = t.manifest_id
             WHERE t.repo_id = ?1 AND t.name > ?2 ORDER BY t.name LIMIT ?3"
    );
    c.all("list a page of tags", &sql, args![repo_id, last, limit], tag_info)
}

/// Tag names pointing at a manifest.
pub fn tags_of(c: &Conn, manifest_id: i64) -> Result<Vec<String>> {
    c.all(
        "list tags of a manifest",
        "SELECT name FROM tags WHERE manifest_id = ?1 ORDER BY name",
        args![manifest_id],
        |r| r.get(0),
    )
}

pub fn delete_repository(c: &Tx, repo_id: i64) -> Result<()> {
    c.exec("delete repository", "DELETE FROM repositories WHERE id = ?1", args![repo_id])?;
    Ok(())
}

pub fn delete_tag(c: &Tx, repo_id: i64, name: &str) -> Result<Option<String>> {
    let digest: Option<String> = c.one(
        "look up tag",
        "SELECT m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id WHERE t.repo_id = ?1 AND t.name = ?2",
        args![repo_id, name],
        |r| r.get(0),
    )?;
    if digest.is_some() {
        c.exec("delete tag", "DELETE FROM tags WHERE repo_id = ?1 AND name = ?2", args![repo_id, name])?;
    }
    Ok(digest)
}

#[derive(Debug, Clone, serde::Serialize, PartialEq, Default)]
pub struct Counts {
    pub repositories: i64,
    pub manifests: i64,
    pub tags: i64,
    pub blobs: i64,
    pub storage_bytes: i64,
    /// What the repositories' blobs would take without sharing: the sum over
    /// repositories of the blobs each may serve.
    pub logical_bytes: i64,
}

pub fn counts(c: &Conn) -> Result<Counts> {
    let counts = c.one(
        "count",
        "SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM manifests), (SELECT count(*) FROM tags),
                (SELECT count(*) FROM blobs), CAST((SELECT coalesce(sum(size), 0) FROM blobs) AS BIGINT),
                CAST((SELECT coalesce(sum(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest)
                     AS BIGINT)",
        args![],
        |r| {
            Ok(Counts {
                repositories: r.get(0)?,
                manifests: r.get(1)?,
                tags: r.get(2)?,
                blobs: r.get(3)?,
                storage_bytes: r.get(4)?,
                logical_bytes: r.get(5)?,
            })
        },
    )?;
    Ok(counts.unwrap_or_default())
}

/// Repository summaries whose name contains `needle` (any, when empty),
/// after `last` in name order, skipping the first `skip` of those.
pub fn search(c: &Conn, needle: &str, last: &str, skip: usize, limit: usize) -> Result<Vec<RepoSummary>> {
    let pattern = format!("%{}%", needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let sql = format!(
        "{SUMMARY} WHERE r.name > ?1 AND r.name LIKE ?2 ESCAPE '\\' ORDER BY r.name LIMIT ?3 OFFSET ?4"
    );
    c.all("search repositories", &sql, args![last, pattern, limit, skip], summary)
}

/// The registry's id: the one recorded, or `fresh` recorded now.
pub fn registry_id(c: &Tx, fresh: &str) -> Result<String> {
    c.exec(
        "record registry id",
        "INSERT INTO registry(id, registry_id) VALUES (1, ?1) ON CONFLICT DO NOTHING",
        args![fresh],
    )?;
    let id =
        c.one("read registry id", "SELECT registry_id FROM registry WHERE id = 1", args![], |r| r.get(0))?;
    id.ok_or_else(|| crate::error::Error::Internal(anyhow::anyhow!("no registry id")))
}

/// The audit key's check value: the one recorded, or `mine` recorded now.
pub fn audit_key_check(c: &Tx, mine: &str) -> Result<String> {
    c.exec(
        "record audit key check",
        "UPDATE registry SET audit_key_check = ?1 WHERE id = 1 AND audit_key_check IS NULL",
        args![mine],
    )?;
    let v =
        c.one("read audit key check", "SELECT audit_key_check FROM registry WHERE id = 1", args![], |r| {
            r.get::<Option<String>>(0)
        })?;
    Ok(v.flatten().unwrap_or_default())
}
