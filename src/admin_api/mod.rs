//! The `/v1` admin REST frontend: JSON in and out, bearer (or Basic)
//! authentication, the admin role for everything but health.
//!
//! Invariant: handlers call `service` only; every error is
//! `{"error":{"code","message","request_id"}}` from one exhaustive mapping.

mod openapi;
mod routes;

use crate::app::{App, Ctx};
use crate::error::{Error, What};
use crate::http::{Request, Response};
use crate::model::Actor;
use crate::service;

/// Every route: method, path template, summary, whether admin is needed.
/// The OpenAPI document is generated from this table and a test checks it
/// against the dispatcher.
pub const ROUTES: &[(&str, &str, &str, Access)] = &[
    ("GET", "/v1/health", "Liveness; no authentication", Access::Public),
    ("GET", "/v1/openapi.json", "This document; no authentication", Access::Public),
    ("GET", "/v1/status", "Version, uptime, counts, storage, GC state", Access::User),
    ("GET", "/v1/repositories", "Repositories with tag counts and sizes (n, last)", Access::Admin),
    ("GET", "/v1/repositories/{name}", "One repository with its tags", Access::Admin),
    ("DELETE", "/v1/repositories/{name}", "Delete a repository (blobs go at the next GC)", Access::Admin),
    ("DELETE", "/v1/repositories/{name}/tags/{tag}", "Delete a tag", Access::Admin),
    (
        "GET",
        "/v1/repositories/{name}/manifests/{reference}",
        "Manifest detail: layers, platforms, referrers",
        Access::Admin,
    ),
    ("GET", "/v1/policy/rules", "List policy rules", Access::Admin),
    ("POST", "/v1/policy/rules", "Create a policy rule", Access::Admin),
    ("GET", "/v1/policy/rules/{id}", "Get a policy rule", Access::Admin),
    ("PUT", "/v1/policy/rules/{id}", "Replace a policy rule", Access::Admin),
    ("DELETE", "/v1/policy/rules/{id}", "Delete a policy rule", Access::Admin),
    ("POST", "/v1/policy/rules/{id}/enable", "Enable a policy rule", Access::Admin),
    ("POST", "/v1/policy/rules/{id}/disable", "Disable a policy rule", Access::Admin),
    ("POST", "/v1/policy/evaluate", "Decide a request and name the deciding rules", Access::Admin),
    ("GET", "/v1/audit", "Audit events (since, until, type, actor, repository, after, limit)", Access::Admin),
    ("GET", "/v1/audit/verify", "Verify the audit hash chain", Access::Admin),
    ("POST", "/v1/gc", "Start a garbage collection on the GC thread", Access::Admin),
    ("GET", "/v1/gc/status", "Garbage collection status", Access::Admin),
    ("POST", "/v1/gc/reconcile", "Reconcile files and rows; purge stale uploads", Access::Admin),
    ("POST", "/v1/snapshot", "Consistent online copy of the metadata database", Access::Admin),
    ("GET", "/v1/users", "Users of the local provider", Access::Admin),
    ("POST", "/v1/users", "Create a user", Access::Admin),
    ("POST", "/v1/users/{username}/password", "Set a user's password", Access::Admin),
    ("POST", "/v1/users/{username}/disable", "Disable a user", Access::Admin),
    ("POST", "/v1/users/{username}/enable", "Enable a user", Access::Admin),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Public,
    User,
    Admin,
}

const BODY_LIMIT: u64 = crate::http::FORM_BODY_LIMIT;

pub fn handle(app: &App, req: &mut Request, req_id: &str) -> Response {
    let on_panic = || {
        let body = serde_json::json!({ "error": { "code": "INTERNAL", "message": "internal error", "request_id": req_id } });
        json(500, &body)
    };
    crate::http::contain(req_id, || answer(app, req, req_id), on_panic)
}

fn answer(app: &App, req: &mut Request, req_id: &str) -> Response {
    let mut ctx = Ctx { app, actor: Actor::Anonymous, req_id, peer: req.remote_addr };
    let path = req.path().to_string();
    let method = req.method.clone();
    // Health and the API description need no credentials (R-AUTH-4).
    match (method.as_str(), path.as_str()) {
        ("GET" | "HEAD", "/v1/health") => return Response::json(200, br#"{"status":"ok"}"#.to_vec()),
        ("GET", "/v1/openapi.json") => return json(200, &openapi::document()),
        (_, "/v1/health" | "/v1/openapi.json") => return error(&ctx, &Error::MethodNotAllowed),
        _ => {}
    }
    match req.credentials() {
        Ok(None) => {}
        Ok(Some(creds)) => match service::session::authenticate(&ctx, &creds) {
            Ok(a) => ctx.actor = a,
            Err(e) => return error(&ctx, &e),
        },
        Err(crate::http::MalformedCredentials) => return error(&ctx, &Error::Unauthenticated),
    }
    let result = if matches!(ctx.actor, Actor::Anonymous) {
        Err(Error::Unauthenticated)
    } else {
        routes::dispatch(&ctx, req, &method, &path)
    };
    let mut resp = result.unwrap_or_else(|e| error(&ctx, &e));
    resp.user = Some(ctx.actor.name().to_string());
    resp
}

/// `/metrics` in Prometheus text format; public, like health (R-AUTH-4):
/// counts only, no names or secrets.
pub fn metrics(app: &App, req: &mut Request, req_id: &str) -> Response {
    let ctx = Ctx { app, actor: Actor::Anonymous, req_id, peer: req.remote_addr };
    if req.method != "GET" {
        return error(&ctx, &Error::MethodNotAllowed);
    }
    match service::admin::metrics(&ctx) {
        Ok(gauges) => {
            let mut text = String::new();
            crate::http::metrics::METRICS.render(&mut text);
            text.push_str(&gauges);
            Response::new(200)
                .header("Content-Type", "text/plain; version=0.0.4")
                .body(crate::http::Body::Bytes(text.into_bytes()))
        }
        Err(e) => error(&ctx, &e),
    }
}

/// Reads a JSON body of at most 64 KiB.
fn body<T: serde::de::DeserializeOwned>(req: &mut Request) -> Result<T, Error> {
    let buf = req
        .read_capped(BODY_LIMIT)
        .map_err(|e| Error::BodyIncomplete(format!("request body: {e}")))?
        .ok_or(Error::BodyTooLarge { limit: BODY_LIMIT })?;
    serde_json::from_slice(&buf).map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))
}

fn json<T: serde::Serialize>(status: u16, v: &T) -> Response {
    Response::json(status, serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()))
}

fn code(e: &Error) -> (u16, &'static str) {
    match e {
        Error::NotFound(What::Route) => (404, "NOT_FOUND"),
        Error::NotFound(
            What::Repository | What::Blob | What::Manifest | What::Upload | What::Rule | What::User,
        ) => (404, "NOT_FOUND"),
        Error::InvalidName(_)
        | Error::InvalidDigest(_)
        | Error::InvalidManifest(_)
        | Error::ManifestBlobUnknown(_)
        | Error::InvalidUpload(_)
        | Error::InvalidPagination(_)
        | Error::InvalidSize(_)
        | Error::BadRequest(_)
        | Error::DigestMismatch { .. }
        | Error::BodyIncomplete(_) => (400, "INVALID_ARGUMENT"),
        Error::ManifestTooLarge { .. } | Error::BodyTooLarge { .. } => (413, "TOO_LARGE"),
        Error::UploadOutOfOrder { .. } | Error::RangeNotSatisfiable { .. } => (416, "RANGE_INVALID"),
        Error::MethodNotAllowed => (405, "METHOD_NOT_ALLOWED"),
        // A feature this configuration does not have (snapshots of PostgreSQL).
        Error::Unsupported(_) => (501, "NOT_IMPLEMENTED"),
        Error::Unauthenticated => (401, "UNAUTHENTICATED"),
        Error::InsufficientScope { .. } => (403, "PERMISSION_DENIED"),
        Error::Denied(_) => (403, "PERMISSION_DENIED"),
        Error::Busy(_) => (409, "CONFLICT"),
        Error::RateLimited { .. } => (429, "RATE_LIMITED"),
        Error::Unavailable(_) => (503, "UNAVAILABLE"),
        Error::Internal(_) => (500, "INTERNAL"),
    }
}

fn error(ctx: &Ctx, e: &Error) -> Response {
    let (status, code) = code(e);
    if let Error::Internal(err) = e {
        log::error!("internal error req={} err={err:#}", ctx.req_id);
    }
    let body =
        serde_json::json!({ "error": { "code": code, "message": e.to_string(), "request_id": ctx.req_id } });
    let mut resp = json(status, &body);
    if status == 401 {
        let service = &ctx.app.config.auth.service;
        resp = resp.header("WWW-Authenticate", format!("Bearer realm=\"mcr\",service=\"{service}\""));
    }
    if let Error::RateLimited { retry_after } = e {
        resp = resp.header("Retry-After", retry_after.to_string());
    }
    resp
}
