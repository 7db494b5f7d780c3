//! Turning credentials into an actor, and issuing tokens, with the audit
//! events for logins (R-AUTH-5).

use crate::app::Ctx;
use crate::auth::{Credentials, Issued, Password, Token};
use crate::db;
use crate::error::{Context, Error, Result};
use crate::model::{AccountType, Actor, Scope};
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
            ctx.audit_async(ev)?;
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
    ctx.audit_anyway(ev);
}

/// A web UI session as its browser holds it: the id (only its hash is
/// stored) for the cookie, and the CSRF token bound to it.
pub struct UiSession {
    pub id: Token,
    pub csrf: String,
}

fn id_hash(id: &Token) -> String {
    crate::auth::local::token_hash(id)
}

/// A UI login: the same password check, throttle and audit as `/v2/token`,
/// then a new session (a new id at every login: no fixation).
pub fn ui_login(ctx: &Ctx, username: &str, password: &Password) -> Result<UiSession> {
    super::access::public(ctx)?;
    let creds = Credentials::Basic(username.to_string(), password.clone());
    let (_, max) = ctx.app.config.ui_session_secs();
    // A change to users between the check and the session's row (a password
    // reset, a disable) voids the check: once more, on the new state.
    for _ in 0..2 {
        let gen = ctx.app.db.read(db::users::generation)?;
        let p = match ctx.app.auth.authenticate(&creds, ctx.peer.map(|a| a.ip())) {
            Ok(p) => p,
            Err(e) => {
                login_failed(ctx, Some(username.escape_debug().take(64).collect()), "ui", &e);
                return Err(e);
            }
        };
        let id = Token::new(crate::model::to_hex(&random::<32>()?));
        let now = ctx.app.now();
        let principal = serde_json::json!({
            "subject": p.subject,
            "username": p.username,
            "roles": p.roles,
            "account_type": p.account_type,
        })
        .to_string();
        let created = ctx.app.db.write(|tx| {
            if db::users::generation(tx)? != gen {
                return Ok(false);
            }
            db::ui::insert(tx, &id_hash(&id), &p.username, &principal, now, now + max)?;
            Ok(true)
        })?;
        if !created {
            continue;
        }
        let mut ev = ctx.event("login", "ok");
        ev.actor = Some(p.username.clone());
        ev.detail = serde_json::json!({ "method": "ui" });
        ctx.audit_async(ev)?;
        let csrf = csrf_token(ctx, &id)?;
        return Ok(UiSession { id, csrf });
    }
    Err(Error::Unavailable("user accounts changed during the login; try again".into()))
}

/// The actor behind a UI session cookie; an unknown, idle or expired
/// session is `Unauthenticated` (and an expired one is removed).
pub fn ui_session(ctx: &Ctx, id: &Token) -> Result<Actor> {
    super::access::public(ctx)?;
    let h = id_hash(id);
    let s = ctx.app.db.read(|c| db::ui::get(c, &h))?.ok_or(Error::Unauthenticated)?;
    let now = ctx.app.now();
    let (idle, _) = ctx.app.config.ui_session_secs();
    if now >= s.expires_at || now - s.last_seen > idle {
        ctx.app.db.write(|tx| db::ui::delete(tx, &h))?;
        return Err(Error::Unauthenticated);
    }
    // Last use is kept to the minute: one write per minute, not per page.
    if now - s.last_seen >= 60 {
        ctx.app.db.write(|tx| db::ui::touch(tx, &h, now))?;
    }
    let v: serde_json::Value = serde_json::from_str(&s.principal).context("stored ui session")?;
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Ok(Actor::User(Principal {
        subject: text("subject"),
        username: s.username,
        roles: serde_json::from_value(v["roles"].clone()).unwrap_or_default(),
        account_type: serde_json::from_value(v["account_type"].clone()).unwrap_or(AccountType::Human),
        scope: None,
    }))
}

/// Ends a UI session; holding its id is the authority to end it.
pub fn ui_logout(ctx: &Ctx, id: &Token) -> Result<()> {
    super::access::public(ctx)?;
    if ctx.app.db.write(|tx| db::ui::delete(tx, &id_hash(id)))? {
        ctx.audit_anyway(ctx.event("logout", "ok"));
    }
    Ok(())
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn csrf_mac(ctx: &Ctx, id: &Token) -> HmacSha256 {
    use hmac::KeyInit as _;
    let mut m = HmacSha256::new_from_slice(&ctx.app.ui_key).expect("HMAC takes any key length");
    hmac::Mac::update(&mut m, b"mcr-ui-csrf\0");
    hmac::Mac::update(&mut m, id_hash(id).as_bytes());
    m
}

/// The CSRF token of a UI session: HMAC-SHA256, under a key kept in the
/// data directory, of the session id's hash.
pub fn csrf_token(ctx: &Ctx, id: &Token) -> Result<String> {
    super::access::public(ctx)?;
    Ok(crate::model::to_hex(&hmac::Mac::finalize(csrf_mac(ctx, id)).into_bytes()))
}

/// How long a login form's token is good for.
const PRELOGIN_SECS: i64 = 900;

fn prelogin_mac(ctx: &Ctx, pre: &Token, issued: i64) -> HmacSha256 {
    use hmac::KeyInit as _;
    let mut m = HmacSha256::new_from_slice(&ctx.app.ui_key).expect("HMAC takes any key length");
    hmac::Mac::update(&mut m, b"mcr-ui-prelogin\0");
    hmac::Mac::update(&mut m, issued.to_string().as_bytes());
    hmac::Mac::update(&mut m, b"\0");
    hmac::Mac::update(&mut m, id_hash(pre).as_bytes());
    m
}

/// A new pre-login id (the login form's cookie) and its form token.
pub fn prelogin(ctx: &Ctx) -> Result<(Token, String)> {
    super::access::public(ctx)?;
    let pre = Token::new(crate::model::to_hex(&random::<32>()?));
    let token = prelogin_token(ctx, &pre)?;
    Ok((pre, token))
}

/// The token of a login form, bound to the browser's pre-login cookie and
/// to the time it was issued: `<unix time>.<HMAC>`, good for 15 minutes.
pub fn prelogin_token(ctx: &Ctx, pre: &Token) -> Result<String> {
    super::access::public(ctx)?;
    let now = ctx.app.now();
    Ok(format!(
        "{now}.{}",
        crate::model::to_hex(&hmac::Mac::finalize(prelogin_mac(ctx, pre, now)).into_bytes())
    ))
}

/// Whether `submitted` is a login form token of this pre-login cookie,
/// issued in the last 15 minutes.
pub fn prelogin_ok(ctx: &Ctx, pre: &Token, submitted: &str) -> Result<bool> {
    super::access::public(ctx)?;
    let Some((issued, mac)) = submitted.split_once('.') else { return Ok(false) };
    let (Ok(issued), Some(mac)) = (issued.parse::<i64>(), from_hex(mac)) else { return Ok(false) };
    let now = ctx.app.now();
    if issued > now + 60 || now - issued > PRELOGIN_SECS {
        return Ok(false);
    }
    Ok(hmac::Mac::verify_slice(prelogin_mac(ctx, pre, issued), &mac).is_ok())
}

/// Whether `submitted` is this session's CSRF token (constant time).
pub fn csrf_ok(ctx: &Ctx, id: &Token, submitted: &str) -> Result<bool> {
    super::access::public(ctx)?;
    let Some(bytes) = from_hex(submitted) else { return Ok(false) };
    Ok(hmac::Mac::verify_slice(csrf_mac(ctx, id), &bytes).is_ok())
}

/// A 32-byte MAC in hex.
fn from_hex(s: &str) -> Option<Vec<u8>> {
    (s.len() == 64).then(|| crate::model::from_hex(s)).flatten()
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(anyhow::anyhow!("random bytes: {e}")))?;
    Ok(b)
}
