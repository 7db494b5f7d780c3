//! Online copies of the metadata database with SQLite's backup API.

use super::Db;
use crate::error::{Context, Error, Result};
use std::path::Path;

/// Copies every page under one read transaction (a consistent snapshot even
/// while writers go on) into a new database file at `dst`.
pub fn backup_to(db: &Db, dst: &Path) -> Result<()> {
    db.read(|src| {
        let Some(src) = src.lite() else {
            return Err(Error::Unsupported(
                "the metadata database is PostgreSQL: take snapshots with pg_dump (see README, Scaling out)"
                    .into(),
            ));
        };
        let mut out = rusqlite::Connection::open(dst).context("create snapshot file")?;
        let backup = rusqlite::backup::Backup::new(src, &mut out).context("start backup")?;
        backup.step(-1).context("copy pages")?;
        drop(backup);
        out.execute_batch("PRAGMA journal_mode = DELETE;").context("finish snapshot")?;
        Ok(())
    })
}

/// `PRAGMA integrity_check` of a database file: "ok", or SQLite's findings.
pub fn integrity_check(path: &Path) -> Result<String> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .context("open database")?;
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).context("integrity check")
}

/// Puts the snapshot `bytes` in place as the database at `db_path`, with no
/// server running on it: checked with `integrity_check` first, written
/// beside the database, fsynced, then renamed over it; the old WAL and
/// shared-memory files go, so SQLite cannot replay them onto the restored file.
pub fn restore(db_path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = db_path.parent().ok_or_else(|| Error::BadRequest("database path has no directory".into()))?;
    let name = db_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.restoring"));
    // A new file, never through something already there (a planted symlink).
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .context("create restored database")?;
        f.write_all(bytes).context("write restored database")?;
        f.sync_all().context("fsync restored database")?;
        let ok = integrity_check(&tmp)?;
        if ok != "ok" {
            return Err(Error::BadRequest(format!("snapshot fails integrity_check: {ok}")));
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{name}{side}")));
    }
    std::fs::rename(&tmp, db_path).context("put restored database in place")?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).context("fsync data directory")?;
    Ok(())
}
