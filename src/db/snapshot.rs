//! Online copies of the metadata database with SQLite's backup API.

use super::Db;
use crate::error::{Context, Result};
use std::path::Path;

/// Copies every page under one read transaction (a consistent snapshot even
/// while writers go on) into a new database file at `dst`.
pub fn backup_to(db: &Db, dst: &Path) -> Result<()> {
    db.read(|src| {
        let mut out = rusqlite::Connection::open(dst).context("create snapshot file")?;
        let backup = rusqlite::backup::Backup::new(src, &mut out).context("start backup")?;
        backup.step(-1).context("copy pages")?;
        drop(backup);
        out.execute_batch("PRAGMA journal_mode = DELETE;").context("finish snapshot")?;
        Ok(())
    })
}

/// `PRAGMA integrity_check` of a database file.
pub fn integrity_check(path: &Path) -> Result<String> {
    let conn = rusqlite::Connection::open(path).context("open database")?;
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).context("integrity check")
}
