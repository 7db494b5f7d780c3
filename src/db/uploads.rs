//! Upload sessions (the bytes live in storage; this is who owns them and
//! how far they got).

use super::{args, Conn, Tx};
use crate::error::Result;

pub struct Upload {
    pub repo_id: i64,
    pub algorithm: String,
    pub offset: u64,
}

// `offset` is a reserved word in PostgreSQL: the column is always quoted.

pub fn insert(c: &Tx, id: &str, repo_id: i64, algorithm: &str, now: i64) -> Result<()> {
    c.exec(
        "insert upload",
        r#"INSERT INTO uploads(id, repo_id, algorithm, "offset", started_at, touched_at)
           VALUES (?1, ?2, ?3, 0, ?4, ?4)"#,
        args![id, repo_id, algorithm, now],
    )?;
    Ok(())
}

pub fn get(c: &Conn, id: &str) -> Result<Option<Upload>> {
    c.one(
        "look up upload",
        r#"SELECT repo_id, algorithm, "offset" FROM uploads WHERE id = ?1"#,
        args![id],
        |r| Ok(Upload { repo_id: r.get(0)?, algorithm: r.get(1)?, offset: r.get(2)? }),
    )
}

pub fn touch(c: &Tx, id: &str, offset: u64, now: i64) -> Result<()> {
    c.exec(
        "update upload",
        r#"UPDATE uploads SET "offset" = ?2, touched_at = ?3 WHERE id = ?1"#,
        args![id, offset, now],
    )?;
    Ok(())
}

pub fn delete(c: &Tx, id: &str) -> Result<bool> {
    Ok(c.exec("delete upload", "DELETE FROM uploads WHERE id = ?1", args![id])? > 0)
}
