//! The one gate: authentication, policy and token scope (R-POL-4, R-POL-5).
//!
//! Invariant: every public service function begins with one of the gates
//! below, so REST, gRPC, the UI and `/v2` cannot disagree (held by
//! `tests/it/tidy.rs`):
//! - `authorize(ctx, action, repo)`: the policy, then the token's scope;
//! - `require_admin(ctx)`: the admin role, with an unscoped credential;
//! - `require_user(ctx)`: any authenticated caller with an unscoped credential;
//! - `require_system(ctx)`: mcr itself only (start-up, offline commands);
//! - `public(ctx)`: deliberately open (authentication itself, counts for
//!   `/metrics`), so that "no check" is a decision written down.
//!
//! The system actor passes every gate but `public`'s callers' own checks:
//! it is the operator on the host, who can read and write the data
//! directory anyway; what it does is audited under its `system:` name.

use crate::app::Ctx;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::model::{Action, Actor, RepoName};
use crate::policy::Rule;

/// The rules as stored, for the engine and for listing.
pub(super) fn load_rules(db: &Db) -> Result<Vec<Rule>> {
    db.read(db::policy::rules)
}

/// Re-reads the rules and puts them in force.
pub(super) fn reload(ctx: &Ctx) -> Result<()> {
    ctx.app.policy.replace(load_rules(&ctx.app.db)?);
    Ok(())
}

pub fn authorize(ctx: &Ctx, action: Action, repo: Option<&RepoName>) -> Result<()> {
    let who = match &ctx.actor {
        Actor::Anonymous => return Err(Error::Unauthenticated),
        Actor::System(_) => return Ok(()),
        Actor::User(p) => p,
    };
    let repo_str = repo.map(|r| r.as_str());
    if ctx.app.policy.is_allowed(who, action, repo_str) {
        // Policy first (its refusal is the clearer one), then the token's
        // scope, which can only narrow it.
        return match &who.scope {
            Some(scope) if !scope.allows(action, repo) => {
                Err(Error::InsufficientScope { needed: crate::model::Scope::needed(action, repo) })
            }
            _ => Ok(()),
        };
    }
    let d = ctx.app.policy.decide(who, action, repo_str);
    let rules: Vec<String> = d.rules.iter().map(|r| r.id.to_string()).collect();
    log::debug!(
        "access denied req={} user={} action={} repo={} rules={} reason={}",
        ctx.req_id,
        who.username,
        action.as_str(),
        repo_str.unwrap_or("-"),
        rules.join(","),
        d.reason
    );
    let mut ev = ctx.event("denied", "denied");
    ev.repository = repo.map(|r| r.to_string());
    ev.detail = serde_json::json!({ "action": action.as_str(), "rules": rules, "reason": d.reason });
    ctx.audit_anyway(ev);
    Err(Error::Denied(format!(
        "{} may not {} {}",
        who.username,
        action.as_str(),
        repo.map_or("on this registry".to_string(), |r| r.to_string())
    )))
}

/// True when the actor may do `action` (no error, no log): for filtering
/// a listing the caller was already authorized to ask for.
pub fn allowed(ctx: &Ctx, action: Action, repo: &RepoName) -> bool {
    match &ctx.actor {
        Actor::Anonymous => false,
        Actor::System(_) => true,
        Actor::User(p) => {
            ctx.app.policy.is_allowed(p, action, Some(repo.as_str()))
                && p.scope.as_ref().is_none_or(|s| s.allows(action, Some(repo)))
        }
    }
}

/// Administration: the admin role, with a credential not scoped to
/// repositories.
pub fn require_admin(ctx: &Ctx) -> Result<()> {
    match &ctx.actor {
        Actor::Anonymous => Err(Error::Unauthenticated),
        Actor::System(_) => Ok(()),
        // A token scoped to repositories carries no administration.
        Actor::User(p) if p.scope.is_some() => Err(Error::InsufficientScope { needed: None }),
        Actor::User(p) if p.roles.iter().any(|r| r == "admin") => Ok(()),
        Actor::User(p) => Err(Error::Denied(format!("{} is not an administrator", p.username))),
    }
}

/// Any authenticated caller whose credential is not scoped to repositories.
pub fn require_user(ctx: &Ctx) -> Result<()> {
    match &ctx.actor {
        Actor::Anonymous => Err(Error::Unauthenticated),
        Actor::System(_) => Ok(()),
        // Registry-wide information is beyond a token scoped to repositories.
        Actor::User(p) if p.scope.is_some() => Err(Error::InsufficientScope { needed: None }),
        Actor::User(_) => Ok(()),
    }
}

/// mcr itself, and nobody else: what only start-up or the host may do.
pub fn require_system(ctx: &Ctx) -> Result<()> {
    match &ctx.actor {
        Actor::System(_) => Ok(()),
        Actor::Anonymous => Err(Error::Unauthenticated),
        Actor::User(p) => Err(Error::Denied(format!("{} may not do what only mcr itself does", p.username))),
    }
}

/// A deliberately public entry point: anyone, authenticated or not.
pub fn public(_ctx: &Ctx) -> Result<()> {
    Ok(())
}
