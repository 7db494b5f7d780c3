//! Upload sessions (the bytes live in storage; this is who owns them and
//! how far they got).

use super::{optional, Conn, Sql, Tx};
use crate::error::Result;
use rusqlite::params;

pub struct Upload {
    pub repo_id: i64,
    pub algorithm: String,
    pub offset: u64,
}

pub fn insert(c: &Tx, id: &str, repo_id: i64, algorithm: &str, now: i64) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO uploads(id, repo_id, algorithm, offset, started_at, touched_at)
         VALUES (?1, ?2, ?3, 0, ?4, ?4)",
    )
    .and_then(|mut s| s.execute(params![id, repo_id, algorithm, now]))
    .sql("insert upload")?;
    Ok(())
}

pub fn get(c: &Conn, id: &str) -> Result<Option<Upload>> {
    optional(
        c.prepare_cached("SELECT repo_id, algorithm, offset FROM uploads WHERE id = ?1").and_then(|mut s| {
            s.query_row([id], |r| {
                Ok(Upload { repo_id: r.get(0)?, algorithm: r.get(1)?, offset: r.get::<_, i64>(2)? as u64 })
            })
        }),
        "look up upload",
    )
}

pub fn touch(c: &Tx, id: &str, offset: u64, now: i64) -> Result<()> {
    c.prepare_cached("UPDATE uploads SET offset = ?2, touched_at = ?3 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id, offset as i64, now]))
        .sql("update upload")?;
    Ok(())
}

pub fn delete(c: &Tx, id: &str) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM uploads WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .sql("delete upload")?;
    Ok(n > 0)
}
