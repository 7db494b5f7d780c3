//! The web UI frontend (`/ui/`, and `/` redirecting there): server-rendered
//! pages (`templates/`) with htmx for partial updates, on the same listener
//! as `/v2` and `/v1`.
//!
//! Invariant: calls only `service` (the same gates, the same audit); a GET
//! never changes state; every POST carries the session's CSRF token (a form
//! field, or the `X-CSRF-Token` header htmx sends), which must equal the
//! `mcr_csrf` cookie and verify as the HMAC of the session (a signed double
//! submit); every answer carries the security headers.

mod forms;

use crate::app::{App, Ctx};
use crate::error::{Error, What};
use crate::http::{Body, Request, Response, FORM_BODY_LIMIT};
use crate::model::{Actor, Password, Token};
use crate::service;
use crate::templates::{pages, Page};

const SESSION_COOKIE: &str = "mcr_session";
const CSRF_COOKIE: &str = "mcr_csrf";
const PRELOGIN_COOKIE: &str = "mcr_prelogin";

/// htmx, from the npm registry's `htmx.org` package (fetched and checked by
/// `scripts/deps`), embedded at build time.
const HTMX: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/vendor/htmx.min.js"));

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn handle(app: &App, req: &mut Request, req_id: &str) -> Response {
    let resp =
        crate::http::contain(req_id, || answer(app, req, req_id), || html(500, plain_page("Internal error")));
    let resp = resp
        .header("Content-Security-Policy", CSP)
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "same-origin")
        .header("X-Frame-Options", "DENY");
    if resp.headers.iter().any(|(k, _)| k == "Cache-Control") {
        resp
    } else {
        resp.header("Cache-Control", "no-store")
    }
}

/// A logged-in browser: its session id and CSRF token.
pub(crate) struct Session {
    id: Token,
    csrf: String,
}

fn answer(app: &App, req: &mut Request, req_id: &str) -> Response {
    let mut ctx = Ctx { app, actor: Actor::Anonymous, req_id, peer: req.remote_addr };
    let path = req.path().to_string();
    let method = if req.method == "HEAD" { "GET".to_string() } else { req.method.clone() };
    match (method.as_str(), path.as_str()) {
        ("GET", "/" | "/ui") => return redirect("/ui/"),
        ("GET", "/ui/static/htmx.min.js") => return asset(HTMX.to_vec(), "text/javascript; charset=utf-8"),
        ("GET", "/ui/static/style.css") => {
            return asset(crate::templates::STYLE.as_bytes().to_vec(), "text/css; charset=utf-8")
        }
        ("GET", "/ui/static/favicon.svg") => {
            return asset(crate::templates::FAVICON.as_bytes().to_vec(), "image/svg+xml")
        }
        ("GET", "/ui/login") => return login_page(&ctx, req, None, "", 200),
        ("POST", "/ui/login") => return login(&ctx, req),
        ("GET" | "POST", _) => {}
        _ => return html(405, plain_page("Method not allowed")),
    }
    // Everything else needs a session.
    let Some(id) = req.cookie(SESSION_COOKIE).filter(|c| !c.is_empty() && c.len() <= 128).map(Token::new)
    else {
        return to_login(req);
    };
    match service::session::ui_session(&ctx, &id) {
        Ok(actor) => ctx.actor = actor,
        Err(Error::Unauthenticated) => return to_login(req),
        Err(e) => return html(500, plain_page(&internal(&ctx, &e))),
    }
    let csrf = match service::session::csrf_token(&ctx, &id) {
        Ok(c) => c,
        Err(e) => return html(500, plain_page(&internal(&ctx, &e))),
    };
    let session = Session { id, csrf };
    let form = if method == "POST" {
        let form = match req.read_form(FORM_BODY_LIMIT) {
            Ok(Some(f)) => f,
            Ok(None) => return error_page(&ctx, &session, &Error::BodyTooLarge { limit: FORM_BODY_LIMIT }),
            Err(e) => return error_page(&ctx, &session, &Error::BodyIncomplete(format!("form: {e}"))),
        };
        if !csrf_valid(&ctx, req, &session, &form) {
            log::warn!("ui csrf refused req={} user={} path={path}", ctx.req_id, ctx.actor.name());
            let mut ev = ctx.event("denied", "csrf");
            ev.detail = serde_json::json!({ "path": path });
            ctx.audit_anyway(ev);
            return error_page(
                &ctx,
                &session,
                &Error::Denied(
                    "the form's security token is missing or invalid; reload the page and try again".into(),
                ),
            );
        }
        form
    } else {
        Vec::new()
    };
    let r = forms::route(&ctx, req, &session, &method, &path, &form);
    r.unwrap_or_else(|e| error_page(&ctx, &session, &e))
}

/// The CSRF token of a POST: sent in the form or the htmx header, equal to
/// the cookie, and the HMAC of this session.
fn csrf_valid(ctx: &Ctx, req: &Request, s: &Session, form: &[(String, String)]) -> bool {
    let submitted = forms::field(form, "csrf")
        .map(str::to_string)
        .or_else(|| req.header("X-CSRF-Token").map(str::to_string));
    let (Some(submitted), Some(cookie)) = (submitted, req.cookie(CSRF_COOKIE)) else { return false };
    submitted == cookie && service::session::csrf_ok(ctx, &s.id, &submitted).unwrap_or(false)
}

fn page<'a>(ctx: &'a Ctx, s: &'a Session) -> Page<'a> {
    Page {
        user: ctx.actor.name(),
        admin: service::access::require_admin(ctx).is_ok(),
        csrf: &s.csrf,
        error: None,
        notice: None,
    }
}

fn cookie(ctx: &Ctx, name: &str, value: &str, path: &str, max_age: i64) -> String {
    // Secure is left out only on a plain-HTTP listener, which mcr allows on
    // loopback addresses alone.
    let secure = if ctx.app.config.tls_enabled() { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The login page, with a fresh pre-login token whose HMAC guards the form.
fn login_page(ctx: &Ctx, req: &Request, error: Option<&str>, username: &str, status: u16) -> Response {
    if error.is_none() {
        if let Some(id) = req.cookie(SESSION_COOKIE).map(Token::new) {
            if service::session::ui_session(ctx, &id).is_ok() {
                return redirect("/ui/");
            }
        }
    }
    let (pre, csrf) = match service::session::prelogin(ctx) {
        Ok(v) => v,
        Err(e) => return html(500, plain_page(&internal(ctx, &e))),
    };
    let p = Page { user: "", admin: false, csrf: &csrf, error, notice: None };
    html(status, pages::login(&p, username))
        .header("Set-Cookie", cookie(ctx, PRELOGIN_COOKIE, pre.expose(), "/ui/login", 900))
}

fn login(ctx: &Ctx, req: &mut Request) -> Response {
    let form = match req.read_form(FORM_BODY_LIMIT) {
        Ok(Some(f)) => f,
        Ok(None) => return login_page(ctx, req, Some("The form is too large."), "", 413),
        Err(_) => return login_page(ctx, req, Some("The form did not arrive whole; try again."), "", 400),
    };
    let username = forms::field(&form, "username").unwrap_or("").trim().to_string();
    let shown: String = username.chars().take(64).collect();
    let pre_ok = match (req.cookie(PRELOGIN_COOKIE), forms::field(&form, "csrf")) {
        (Some(pre), Some(sent)) => {
            service::session::prelogin_ok(ctx, &Token::new(pre), sent).unwrap_or(false)
        }
        _ => false,
    };
    if !pre_ok {
        return login_page(
            ctx,
            req,
            Some("The login form expired or was not sent from this site; try again."),
            &shown,
            403,
        );
    }
    let password = Password::new(forms::field(&form, "password").unwrap_or(""));
    if username.is_empty() || password.expose().is_empty() {
        return login_page(ctx, req, Some("Enter a username and a password."), &shown, 400);
    }
    match service::session::ui_login(ctx, &username, &password) {
        Ok(s) => {
            let (_, max) = ctx.app.config.ui_session_secs();
            redirect("/ui/")
                .header("Set-Cookie", cookie(ctx, SESSION_COOKIE, s.id.expose(), "/", max))
                .header("Set-Cookie", cookie(ctx, CSRF_COOKIE, &s.csrf, "/", max))
                .header("Set-Cookie", cookie(ctx, PRELOGIN_COOKIE, "", "/ui/login", 0))
        }
        Err(Error::Unauthenticated) => login_page(ctx, req, Some("Wrong username or password."), &shown, 401),
        Err(Error::RateLimited { retry_after }) => {
            let msg = format!("Too many failed logins; try again in {retry_after} s.");
            login_page(ctx, req, Some(&msg), &shown, 429).header("Retry-After", retry_after.to_string())
        }
        Err(e) => login_page(ctx, req, Some(&internal(ctx, &e)), &shown, 503),
    }
}

pub(crate) fn logout(ctx: &Ctx, s: &Session) -> Result<Response, Error> {
    service::session::ui_logout(ctx, &s.id)?;
    Ok(redirect("/ui/login")
        .header("Set-Cookie", cookie(ctx, SESSION_COOKIE, "", "/", 0))
        .header("Set-Cookie", cookie(ctx, CSRF_COOKIE, "", "/", 0)))
}

/// No session: GETs go to the login page; anything else is told so.
fn to_login(req: &Request) -> Response {
    if req.header("HX-Request").is_some() {
        // htmx follows this header with a full page load.
        return Response::new(401).header("HX-Redirect", "/ui/login");
    }
    redirect("/ui/login")
}

pub(crate) fn redirect(to: &str) -> Response {
    Response::new(303).header("Location", to)
}

pub(crate) fn html(status: u16, body: String) -> Response {
    Response::new(status)
        .header("Content-Type", "text/html; charset=utf-8")
        .body(Body::Bytes(body.into_bytes()))
}

fn asset(bytes: Vec<u8>, content_type: &str) -> Response {
    Response::new(200)
        .header("Content-Type", content_type)
        .header("Cache-Control", "public, max-age=3600")
        .body(Body::Bytes(bytes))
}

/// A page for when there is no session to show the navigation with.
fn plain_page(title: &str) -> String {
    let p = Page { user: "", admin: false, csrf: "", error: None, notice: None };
    pages::message(&p, title)
}

/// Logs an internal error with the request id; the page gets the id only.
fn internal(ctx: &Ctx, e: &Error) -> String {
    log::error!("internal error req={} err={e:#}", ctx.req_id);
    format!("Something went wrong on the server (request {}).", ctx.req_id)
}

/// An error as a page: the status the error means, its message in the page.
pub(crate) fn error_page(ctx: &Ctx, s: &Session, e: &Error) -> Response {
    let (status, title) = match e {
        Error::Unauthenticated => return redirect("/ui/login"),
        Error::Denied(_) | Error::InsufficientScope { .. } => (403, "Not allowed"),
        Error::NotFound(What::Route) => (404, "No such page"),
        Error::NotFound(_) => (404, "Not found"),
        Error::BodyTooLarge { .. } | Error::ManifestTooLarge { .. } => (413, "Too large"),
        Error::RateLimited { .. } => (429, "Too many requests"),
        Error::Busy(_) => (409, "Busy"),
        Error::Unavailable(_) => (503, "Unavailable"),
        Error::MethodNotAllowed | Error::Unsupported(_) => (405, "Not possible"),
        Error::Internal(_) => (500, "Internal error"),
        Error::InvalidName(_)
        | Error::InvalidDigest(_)
        | Error::InvalidManifest(_)
        | Error::ManifestBlobUnknown(_)
        | Error::InvalidUpload(_)
        | Error::InvalidPagination(_)
        | Error::InvalidSize(_)
        | Error::BadRequest(_)
        | Error::DigestMismatch { .. }
        | Error::BodyIncomplete(_)
        | Error::UploadOutOfOrder { .. }
        | Error::RangeNotSatisfiable { .. } => (400, "Bad request"),
    };
    let msg = match e {
        Error::Internal(_) => internal(ctx, e),
        other => other.to_string(),
    };
    let p = Page { error: Some(&msg), ..page(ctx, s) };
    html(status, pages::message(&p, title))
}
