//! Turning credentials into an actor, and issuing tokens, with the audit
//! events for logins (R-AUTH-5).

use crate::app::Ctx;
use crate::auth::{Credentials, Issued, Password};
use crate::error::{Error, Result};
use crate::model::{Actor, Scope};
use crate::policy::Principal;

/// The actor behind the credentials a request presented; failures are audited.
pub fn authenticate(ctx: &Ctx, creds: &Credentials) -> Result<Actor> {
    super::access::public(ctx)?;
    let peer = ctx.peer.map(|a| a.ip());
    match ctx.app.auth.authenticate(creds, peer) {
        Ok(p) => Ok(Actor::User(p)),
        Err(e) => {
            // The name is the client's input: keep a short, printable prefix.
            let (user, method) = match creds {
                Credentials::Basic(u, _) => (Some(u.escape_debug().take(64).collect()), "basic"),
                Credentials::Bearer(_) => (None, "bearer"),
            };
            login_failed(ctx, user, method, &e);
            Err(e)
        }
    }
}

/// The token endpoint's login.  With a requested scope, the token is bound
/// to the part of it that policy allows the user.
pub fn issue_token(
    ctx: &Ctx,
    username: &str,
    password: &Password,
    requested: Option<Scope>,
) -> Result<Issued> {
    super::access::public(ctx)?;
    let peer = ctx.peer.map(|a| a.ip());
    let grant = |p: &Principal| {
        requested
            .clone()
            .map(|s| s.narrow(|action, repo| ctx.app.policy.is_allowed(p, action, repo.map(|r| r.as_str()))))
    };
    match ctx.app.auth.login(username, password, peer, &grant) {
        Ok(i) => {
            let mut ev = ctx.event("login", "ok");
            ev.actor = Some(username.to_string());
            ev.detail = serde_json::json!({ "method": "token" });
            ctx.audit_async(ev);
            Ok(i)
        }
        Err(e) => {
            login_failed(ctx, Some(username.escape_debug().take(64).collect()), "token", &e);
            Err(e)
        }
    }
}

/// Audits a failed login; repeated failures from one address are folded
/// into one event per window (the next event says how many), so a flood of
/// bad credentials cannot grow the audit log without bound.
fn login_failed(ctx: &Ctx, user: Option<String>, method: &str, e: &Error) {
    let outcome = match e {
        Error::RateLimited { .. } => "rate_limited",
        Error::Unauthenticated => "bad_credentials",
        _ => "error",
    };
    let Some(folded) = ctx.app.auth.audit_failure(ctx.peer.map(|a| a.ip())) else { return };
    let mut ev = ctx.event("login_failed", outcome);
    ev.actor = user;
    ev.detail = serde_json::json!({ "method": method, "folded_before": folded });
    ctx.audit_async(ev);
}
