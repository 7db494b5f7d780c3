//! Policy rules as stored: JSON of the rule, with id, priority and enabled
//! kept in columns so they can be queried and toggled.

use super::{optional, Conn, Sql, Tx};
use crate::error::Result;
use crate::policy::Rule;
use rusqlite::params;

pub struct StoredRule {
    pub id: i64,
    pub priority: i64,
    pub enabled: bool,
    pub rule_json: String,
}

pub fn list(c: &Conn) -> Result<Vec<StoredRule>> {
    let mut s = c
        .prepare_cached("SELECT id, priority, enabled, rule_json FROM policy_rules ORDER BY priority, id")
        .sql("prepare rules")?;
    let rows = s
        .query_map([], |r| {
            Ok(StoredRule {
                id: r.get(0)?,
                priority: r.get(1)?,
                enabled: r.get::<_, i64>(2)? != 0,
                rule_json: r.get(3)?,
            })
        })
        .sql("query rules")?;
    rows.collect::<rusqlite::Result<Vec<_>>>().sql("read rules")
}

/// The rules as the engine takes them, in priority order; the columns (id,
/// priority, enabled) are authoritative, and a row whose JSON no longer
/// parses is logged and skipped rather than failing every decision.
pub fn rules(c: &Conn) -> Result<Vec<Rule>> {
    Ok(list(c)?
        .into_iter()
        .filter_map(|s| match serde_json::from_str::<Rule>(&s.rule_json) {
            Ok(r) => Some(Rule { id: s.id, priority: s.priority, enabled: s.enabled, ..r }),
            Err(e) => {
                log::error!("stored policy rule unreadable, skipped id={} err={e}", s.id);
                None
            }
        })
        .collect())
}

pub fn get(c: &Conn, id: i64) -> Result<Option<StoredRule>> {
    optional(
        c.prepare_cached("SELECT id, priority, enabled, rule_json FROM policy_rules WHERE id = ?1").and_then(
            |mut s| {
                s.query_row([id], |r| {
                    Ok(StoredRule {
                        id: r.get(0)?,
                        priority: r.get(1)?,
                        enabled: r.get::<_, i64>(2)? != 0,
                        rule_json: r.get(3)?,
                    })
                })
            },
        ),
        "look up rule",
    )
}

pub fn insert(c: &Tx, priority: i64, enabled: bool, rule_json: &str, now: i64) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO policy_rules(priority, enabled, rule_json, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    )
    .and_then(|mut s| s.execute(params![priority, enabled as i64, rule_json, now]))
    .sql("insert rule")?;
    Ok(c.last_insert_rowid())
}

pub fn update(c: &Tx, id: i64, priority: i64, enabled: bool, rule_json: &str, now: i64) -> Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE policy_rules SET priority = ?2, enabled = ?3, rule_json = ?4, updated_at = ?5 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, priority, enabled as i64, rule_json, now]))
        .sql("update rule")?;
    Ok(n > 0)
}

pub fn delete(c: &Tx, id: i64) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM policy_rules WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .sql("delete rule")?;
    Ok(n > 0)
}
