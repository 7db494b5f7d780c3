//! Audit rows: appended with their hash-chain link, streamed for
//! verification, filtered for queries.

use super::{args, Conn, Row, Tx};
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub time: i64,
    pub event_type: String,
    pub actor: Option<String>,
    pub peer: Option<String>,
    pub repository: Option<String>,
    pub reference: Option<String>,
    pub outcome: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str =
    "id, time, event_type, actor, peer, repository, reference, outcome, detail, prev_hash, hash";

fn row(r: &Row) -> Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        time: r.get(1)?,
        event_type: r.get(2)?,
        actor: r.get(3)?,
        peer: r.get(4)?,
        repository: r.get(5)?,
        reference: r.get(6)?,
        outcome: r.get(7)?,
        detail: r.get(8)?,
        prev_hash: r.get(9)?,
        hash: r.get(10)?,
    })
}

/// The last row's id and hash (the chain's head).
pub fn head(c: &Conn) -> Result<Option<(i64, String)>> {
    c.one("read audit head", "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", args![], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}

/// The first row of the keyed chain, once the chain is anchored.
pub fn keyed_from(c: &Conn) -> Result<Option<i64>> {
    c.one("read audit anchor", "SELECT keyed_from FROM audit_meta WHERE id = 1", args![], |r| r.get(0))
}

pub fn set_keyed_from(c: &Tx, id: i64) -> Result<()> {
    c.exec(
        "anchor audit chain",
        "INSERT INTO audit_meta(id, keyed_from) VALUES (1, ?1)
         ON CONFLICT(id) DO UPDATE SET keyed_from = excluded.keyed_from",
        args![id],
    )?;
    Ok(())
}

/// The database file this connection is on (the audit key is per data
/// directory).
pub fn db_path(c: &Conn) -> Option<std::path::PathBuf> {
    c.path().map(std::path::PathBuf::from)
}

/// Appends a row; an insert that wrote nothing (a trigger planted in the
/// database that swallows rows) is an error, so no change commits without
/// its record.
pub fn insert(c: &Tx, r: &AuditRow) -> Result<()> {
    let n = c.exec(
        "insert audit row",
        &format!("INSERT INTO audit_log({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        args![
            r.id,
            r.time,
            r.event_type,
            r.actor,
            r.peer,
            r.repository,
            r.reference,
            r.outcome,
            r.detail,
            r.prev_hash,
            r.hash
        ],
    )?;
    // A row swallowed by a trigger (RAISE(IGNORE)) reports no change; one
    // deleted after its insert leaves a gap that verify names.
    if n != 1 {
        return Err(crate::error::Error::Internal(anyhow::anyhow!(
            "audit row {} was not written (a trigger in the database?); refusing the change",
            r.id
        )));
    }
    Ok(())
}

/// Calls `f` on every row in id order without loading them all; stops when
/// `f` returns false.
pub fn each(c: &Conn, mut f: impl FnMut(AuditRow) -> bool) -> Result<()> {
    c.each("scan audit", &format!("SELECT {COLUMNS} FROM audit_log ORDER BY id"), args![], |r| Ok(f(row(r)?)))
}

#[derive(Default, Debug, Clone)]
pub struct Filter {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub repository: Option<String>,
    /// Only rows with an id above this (for paging and following).
    pub after_id: Option<i64>,
    pub limit: usize,
}

pub fn query(c: &Conn, f: &Filter) -> Result<Vec<AuditRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log
         WHERE (CAST(?1 AS BIGINT) IS NULL OR time >= ?1) AND (CAST(?2 AS BIGINT) IS NULL OR time < ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR event_type = ?3) AND (CAST(?4 AS TEXT) IS NULL OR actor = ?4)
           AND (CAST(?5 AS TEXT) IS NULL OR repository = ?5) AND (CAST(?6 AS BIGINT) IS NULL OR id > ?6)
         ORDER BY id LIMIT ?7"
    );
    c.all(
        "query audit",
        &sql,
        args![f.since, f.until, f.event_type, f.actor, f.repository, f.after_id, f.limit],
        row,
    )
}

/// The newest rows of one event type, newest first.
pub fn recent(c: &Conn, event_type: &str, limit: usize) -> Result<Vec<AuditRow>> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE event_type = ?1 ORDER BY id DESC LIMIT ?2");
    c.all("query recent audit", &sql, args![event_type, limit], row)
}

/// Adds `n` events of `event_type` on UTC day `day` to the daily counts.
pub fn count_day(c: &Tx, day: i64, event_type: &str, n: i64) -> Result<()> {
    c.exec(
        "count audit day",
        "INSERT INTO audit_daily(day, event_type, n) VALUES (?1, ?2, ?3)
         ON CONFLICT(day, event_type) DO UPDATE SET n = audit_daily.n + excluded.n",
        args![day, event_type, n],
    )?;
    Ok(())
}

/// Events of `event_type` per UTC day since `since`: (day number, count).
pub fn per_day(c: &Conn, event_type: &str, since: i64) -> Result<Vec<(i64, i64)>> {
    c.all(
        "count audit per day",
        "SELECT day, n FROM audit_daily WHERE event_type = ?1 AND day >= ?2 ORDER BY day",
        args![event_type, since.div_euclid(86400)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// What in the database's schema the migrations did not make, or made
/// otherwise: every `sqlite_master` entry is compared, type, name, table
/// and SQL (a trigger or view someone added can hide or rewrite audit rows).
pub fn foreign_schema(c: &Conn) -> Result<Vec<String>> {
    let Some(lite) = c.lite() else {
        // PostgreSQL: its catalog is not SQLite's; no trigger or rule is ours.
        return c.pg_foreign_objects();
    };
    let expected = super::migrate::expected_schema()?;
    // Statistics tables that ANALYZE makes are SQLite's own, allowed as
    // SQLite writes them.
    let analyze = |e: &super::migrate::SchemaEntry| {
        matches!(
            (e.0.as_str(), e.1.as_str(), e.3.as_deref()),
            ("table", "sqlite_stat1", Some("CREATE TABLE sqlite_stat1(tbl,idx,stat)"))
                | ("table", "sqlite_stat4", Some("CREATE TABLE sqlite_stat4(tbl,idx,neq,nlt,ndlt,sample)"))
        ) && e.1 == e.2
    };
    let actual: Vec<_> = super::migrate::schema_of(lite)?.into_iter().filter(|e| !analyze(e)).collect();
    let mut out: Vec<String> =
        actual.iter().filter(|e| !expected.contains(e)).map(|(t, n, _, _)| format!("{t} {n}")).collect();
    out.extend(
        expected
            .iter()
            .filter(|e| !actual.contains(e))
            .map(|(t, n, _, _)| format!("{t} {n} (changed or missing)")),
    );
    Ok(out)
}

/// The event type of row `id`, if it exists.
pub fn event_type_of(c: &Conn, id: i64) -> Result<Option<String>> {
    c.one("read audit row type", "SELECT event_type FROM audit_log WHERE id = ?1", args![id], |r| r.get(0))
}

/// The hash of row `id`, if it exists.
pub fn hash_of(c: &Conn, id: i64) -> Result<Option<String>> {
    c.one("read audit row hash", "SELECT hash FROM audit_log WHERE id = ?1", args![id], |r| r.get(0))
}
