//! Managing policy rules (admin only) and explaining decisions.
//!
//! Invariant: every change reloads the engine's cached rule set before it
//! returns, so the next request sees it.

use super::access::{load_rules, reload, require_admin};
use crate::app::Ctx;
use crate::db;
use crate::error::{Context, Error, Result};
use crate::model::{Action, RepoName};
use crate::policy::{Decision, Principal, Rule};

fn store_form(rule: &Rule) -> Result<String> {
    rule.validate().map_err(Error::BadRequest)?;
    // id, priority and enabled live in columns; the JSON keeps the rest.
    let mut r = rule.clone();
    r.id = 0;
    serde_json::to_string(&r).context("encode rule")
}

pub fn list(ctx: &Ctx) -> Result<Vec<Rule>> {
    require_admin(ctx)?;
    load_rules(&ctx.app.db)
}

pub fn get(ctx: &Ctx, id: i64) -> Result<Rule> {
    require_admin(ctx)?;
    load_rules(&ctx.app.db)?.into_iter().find(|r| r.id == id).ok_or(Error::NotFound(crate::error::What::Rule))
}

pub fn create(ctx: &Ctx, rule: &Rule) -> Result<Rule> {
    require_admin(ctx)?;
    let json = store_form(rule)?;
    let now = ctx.app.now();
    let id = ctx.app.db.write(|tx| {
        let id = db::policy::insert(tx, rule.priority, rule.enabled, &json, now)?;
        crate::audit::record(tx, &rule_event(ctx, "policy_create", id, Some(rule)), now)?;
        Ok(id)
    })?;
    reload(ctx)?;
    Ok(Rule { id, ..rule.clone() })
}

pub fn update(ctx: &Ctx, id: i64, rule: &Rule) -> Result<Rule> {
    require_admin(ctx)?;
    let json = store_form(rule)?;
    let now = ctx.app.now();
    let found = ctx.app.db.write(|tx| {
        let found = db::policy::update(tx, id, rule.priority, rule.enabled, &json, now)?;
        if found {
            crate::audit::record(tx, &rule_event(ctx, "policy_update", id, Some(rule)), now)?;
        }
        Ok(found)
    })?;
    if !found {
        return Err(Error::NotFound(crate::error::What::Rule));
    }
    reload(ctx)?;
    Ok(Rule { id, ..rule.clone() })
}

pub fn set_enabled(ctx: &Ctx, id: i64, enabled: bool) -> Result<Rule> {
    require_admin(ctx)?;
    let rule = get(ctx, id)?;
    update(ctx, id, &Rule { enabled, ..rule })
}

pub fn delete(ctx: &Ctx, id: i64) -> Result<()> {
    require_admin(ctx)?;
    let now = ctx.app.now();
    let found = ctx.app.db.write(|tx| {
        let found = db::policy::delete(tx, id)?;
        if found {
            crate::audit::record(tx, &rule_event(ctx, "policy_delete", id, None), now)?;
        }
        Ok(found)
    })?;
    if !found {
        return Err(Error::NotFound(crate::error::What::Rule));
    }
    reload(ctx)
}

/// What the engine would decide for `who` (the explain of R-POL-2).
pub fn explain(ctx: &Ctx, who: &Principal, action: Action, repo: Option<&RepoName>) -> Result<Decision> {
    require_admin(ctx)?;
    Ok(ctx.app.policy.decide(who, action, repo.map(|r| r.as_str())))
}

fn rule_event(ctx: &Ctx, event_type: &'static str, id: i64, rule: Option<&Rule>) -> crate::audit::Event {
    let mut ev = ctx.event(event_type, "ok");
    ev.reference = Some(format!("rule:{id}"));
    ev.detail = match rule {
        Some(r) => serde_json::to_value(Rule { id, ..r.clone() }).unwrap_or_default(),
        None => serde_json::json!({ "id": id }),
    };
    ev
}
