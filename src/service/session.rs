//! Turning credentials into an actor, and issuing tokens, with the audit
//! events for logins (R-AUTH-5).

use crate::app::Ctx;
use crate::auth::{Credentials, Issued, Password};
use crate::error::{Error, Result};
use crate::model::Actor;

/// The actor behind an `Authorization` header value; failures are audited.
pub fn authenticate(ctx: &Ctx, header: &str) -> Result<Actor> {
    let creds = Credentials::parse(header).ok_or(Error::Unauthenticated)?;
    let peer = ctx.peer.map(|a| a.ip());
    match ctx.app.auth.authenticate(&creds, peer) {
        Ok(p) => Ok(Actor::User(p)),
        Err(e) => {
            // The name is the client's input: keep a short, printable prefix.
            let user = match &creds {
                Credentials::Basic(u, _) => Some(u.escape_debug().take(64).collect()),
                Credentials::Bearer(_) => None,
            };
            login_failed(ctx, user, "basic", &e);
            Err(e)
        }
    }
}

/// The token endpoint's login.
pub fn issue_token(ctx: &Ctx, username: &str, password: &Password) -> Result<Issued> {
    let peer = ctx.peer.map(|a| a.ip());
    match ctx.app.auth.login(username, password, peer) {
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

fn login_failed(ctx: &Ctx, user: Option<String>, method: &str, e: &Error) {
    let outcome = match e {
        Error::RateLimited { .. } => "rate_limited",
        Error::Unauthenticated => "bad_credentials",
        _ => "error",
    };
    let mut ev = ctx.event("login_failed", outcome);
    ev.actor = user;
    ev.detail = serde_json::json!({ "method": method });
    ctx.audit_async(ev);
}
