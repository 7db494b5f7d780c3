//! Versioned migrations on `PRAGMA user_version`.
//!
//! Invariant: migrations only ever add; each runs in one transaction with
//! its version bump, so a crash leaves the database at a whole version.

use crate::error::{Context, Error, Result};
use rusqlite::Connection;

/// Index i holds the SQL that takes the database from version i to i + 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../../schema.sql"),
    include_str!("migrations/2-auth.sql"),
    include_str!("migrations/3-ui.sql"),
    include_str!("migrations/4-audit-key.sql"),
    include_str!("migrations/5-registry.sql"),
    include_str!("migrations/6-logins.sql"),
];

/// One entry of `sqlite_master`: type, name, table, SQL.
pub(super) type SchemaEntry = (String, String, String, Option<String>);

/// Every `sqlite_master` entry of a connection, whatever its name (SQLite
/// loads entries named `sqlite_…` too, when someone writes them directly).
pub(super) fn schema_of(conn: &Connection) -> Result<Vec<SchemaEntry>> {
    let mut s = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name, type")
        .context("read schema")?;
    let rows =
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).context("read schema")?;
    rows.collect::<rusqlite::Result<Vec<_>>>().context("read schema")
}

/// The schema the migrations make, entry for entry (built once, in memory).
pub(super) fn expected_schema() -> Result<&'static [SchemaEntry]> {
    static EXPECTED: std::sync::OnceLock<Vec<SchemaEntry>> = std::sync::OnceLock::new();
    if let Some(e) = EXPECTED.get() {
        return Ok(e);
    }
    let mut conn = Connection::open_in_memory().context("open schema reference")?;
    run(&mut conn)?;
    let schema = schema_of(&conn)?;
    Ok(EXPECTED.get_or_init(|| schema))
}

/// Migrates to the latest version; returns the version the file had.
pub(super) fn run(conn: &mut Connection) -> Result<i64> {
    let version: i64 =
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).context("read schema version")?;
    let latest = MIGRATIONS.len() as i64;
    if version > latest {
        return Err(Error::Internal(anyhow::anyhow!(
            "database schema version {version} is newer than this mcr ({latest}); refusing to touch it"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().context("begin migration")?;
        tx.execute_batch(sql).context("apply migration")?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).context("bump schema version")?;
        tx.commit().context("commit migration")?;
        log::info!("schema migrated version={}", i + 1);
    }
    Ok(version)
}

#[cfg(test)]
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut c = Connection::open(&path).unwrap();
        run(&mut c).unwrap();
        c.execute("INSERT INTO repositories(name, created_at) VALUES ('a', 1)", []).unwrap();
        run(&mut c).unwrap();
        let n: i64 = c.query_row("SELECT count(*) FROM repositories", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, latest_version());
        c.pragma_update(None, "user_version", 99).unwrap();
        assert!(run(&mut c).is_err(), "a newer schema must be refused");
    }
}
