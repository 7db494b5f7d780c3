//! The single gate for authentication and policy (R-POL-4, R-POL-5).
//!
//! Invariant: every service entry point calls `authorize` first, so REST,
//! gRPC, the UI and `/v2` cannot disagree.  The rule set is cached behind a
//! RwLock and swapped whole when rules change.

use crate::app::Ctx;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::model::{Action, Actor, RepoName};
use crate::policy::{Decision, PolicySet, Principal, Query, Rule};
use parking_lot::RwLock;
use std::sync::Arc;

pub struct PolicyEngine {
    set: RwLock<Arc<PolicySet>>,
}

/// Rules as stored, with the columns (id, priority, enabled) authoritative.
pub fn load_rules(db: &Db) -> Result<Vec<Rule>> {
    let stored = db.read(db::policy::list)?;
    Ok(stored
        .into_iter()
        .filter_map(|s| match serde_json::from_str::<Rule>(&s.rule_json) {
            Ok(mut r) => {
                r.id = s.id;
                r.priority = s.priority;
                r.enabled = s.enabled;
                Some(r)
            }
            Err(e) => {
                log::error!("stored policy rule unreadable, skipped id={} err={e}", s.id);
                None
            }
        })
        .collect())
}

impl PolicyEngine {
    pub fn load(db: &Db) -> Result<PolicyEngine> {
        Ok(PolicyEngine { set: RwLock::new(Arc::new(PolicySet::new(load_rules(db)?))) })
    }

    /// Re-reads the rules and swaps the cached set atomically.
    pub fn reload(&self, db: &Db) -> Result<()> {
        let set = Arc::new(PolicySet::new(load_rules(db)?));
        *self.set.write() = set;
        Ok(())
    }

    pub fn decide(&self, who: &Principal, action: Action, repo: Option<&RepoName>) -> Decision {
        let set = self.set.read().clone();
        set.evaluate(&Query { who, action, repository: repo.map(|r| r.as_str()) })
    }

    pub fn is_allowed(&self, who: &Principal, action: Action, repo: Option<&RepoName>) -> bool {
        self.set.read().is_allowed(&Query { who, action, repository: repo.map(|r| r.as_str()) })
    }
}

pub fn authorize(ctx: &Ctx, action: Action, repo: Option<&RepoName>) -> Result<()> {
    let who = match &ctx.actor {
        Actor::Anonymous => return Err(Error::Unauthenticated),
        Actor::User(p) => p,
    };
    if ctx.app.policy.is_allowed(who, action, repo) {
        // Policy first (its refusal is the clearer one), then the token's
        // scope, which can only narrow it.
        return match &who.scope {
            Some(scope) if !scope.allows(action, repo) => {
                Err(Error::InsufficientScope { needed: crate::model::Scope::needed(action, repo) })
            }
            _ => Ok(()),
        };
    }
    let d = ctx.app.policy.decide(who, action, repo);
    let rules: Vec<String> = d.rules.iter().map(|r| r.id.to_string()).collect();
    log::debug!(
        "access denied req={} user={} action={} repo={} rules={} reason={}",
        ctx.req_id,
        who.username,
        action.as_str(),
        repo.map_or("-", |r| r.as_str()),
        rules.join(","),
        d.reason
    );
    let mut ev = ctx.event("denied", "denied");
    ev.repository = repo.map(|r| r.to_string());
    ev.detail = serde_json::json!({ "action": action.as_str(), "rules": rules, "reason": d.reason });
    ctx.audit_async(ev);
    Err(Error::Denied(format!(
        "{} may not {} {}",
        who.username,
        action.as_str(),
        repo.map_or("on this registry".to_string(), |r| r.to_string())
    )))
}

/// True when the actor may do `action` (no error, no log): for filtering.
pub fn allowed(ctx: &Ctx, action: Action, repo: &RepoName) -> bool {
    match &ctx.actor {
        Actor::Anonymous => false,
        Actor::User(p) => {
            ctx.app.policy.is_allowed(p, action, Some(repo))
                && p.scope.as_ref().is_none_or(|s| s.allows(action, Some(repo)))
        }
    }
}
