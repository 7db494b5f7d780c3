//! Policy rules as stored: JSON of the rule, with id, priority and enabled
//! kept in columns so they can be queried and toggled.

use super::{args, Conn, Row, Tx};
use crate::error::Result;
use crate::policy::Rule;

pub struct StoredRule {
    pub id: i64,
    pub priority: i64,
    pub enabled: bool,
    pub rule_json: String,
}

fn stored(r: &Row) -> Result<StoredRule> {
    Ok(StoredRule { id: r.get(0)?, priority: r.get(1)?, enabled: r.get(2)?, rule_json: r.get(3)? })
}

pub fn list(c: &Conn) -> Result<Vec<StoredRule>> {
    c.all(
        "list rules",
        "SELECT id, priority, enabled, rule_json FROM policy_rules ORDER BY priority, id",
        args![],
        stored,
    )
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
    c.one(
        "look up rule",
        "SELECT id, priority, enabled, rule_json FROM policy_rules WHERE id = ?1",
        args![id],
        stored,
    )
}

pub fn insert(c: &Tx, priority: i64, enabled: bool, rule_json: &str, now: i64) -> Result<i64> {
    let id = c.one(
        "insert rule",
        "INSERT INTO policy_rules(priority, enabled, rule_json, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
        args![priority, enabled, rule_json, now],
        |r| r.get(0),
    )?;
    id.ok_or_else(|| crate::error::Error::Internal(anyhow::anyhow!("insert rule returned no id")))
}

pub fn update(c: &Tx, id: i64, priority: i64, enabled: bool, rule_json: &str, now: i64) -> Result<bool> {
    let n = c.exec(
        "update rule",
        "UPDATE policy_rules SET priority = ?2, enabled = ?3, rule_json = ?4, updated_at = ?5 WHERE id = ?1",
        args![id, priority, enabled, rule_json, now],
    )?;
    Ok(n > 0)
}

pub fn delete(c: &Tx, id: i64) -> Result<bool> {
    Ok(c.exec("delete rule", "DELETE FROM policy_rules WHERE id = ?1", args![id])? > 0)
}
