//! The `/v1` admin REST frontend: JSON in and out, bearer (or Basic)
//! authentication, the admin role for everything but health.
//!
//! Invariant: handlers call `service` only; every error is
//! `{"error":{"code","message","request_id"}}` from one exhaustive mapping.

use crate::app::{App, Ctx};
use crate::error::{Error, What};
use crate::http::{Request, Response};
use crate::model::Actor;
use crate::service;

pub fn handle(app: &App, req: &mut Request, req_id: &str) -> Response {
    let mut ctx = Ctx { app, actor: Actor::Anonymous, req_id, peer: req.remote_addr };
    let path = req.path().to_string();
    let method = req.method.clone();
    // Health needs no credentials (R-AUTH-4).
    if path == "/v1/health" {
        return match method.as_str() {
            "GET" | "HEAD" => Response::json(200, br#"{"status":"ok"}"#.to_vec()),
            _ => error(&ctx, &Error::MethodNotAllowed),
        };
    }
    if let Some(h) = req.header("Authorization") {
        match service::session::authenticate(&ctx, h) {
            Ok(a) => ctx.actor = a,
            Err(e) => return error(&ctx, &e),
        }
    }
    let result = match (method.as_str(), path.as_str()) {
        (_, _) if matches!(ctx.actor, Actor::Anonymous) => Err(Error::Unauthenticated),
        ("POST", "/v1/gc") => {
            service::admin::gc_trigger(&ctx).map(|id| json(202, &serde_json::json!({ "run_id": id })))
        }
        ("GET", "/v1/gc/status") => service::admin::gc_status(&ctx).map(|s| json(200, &s)),
        ("POST", "/v1/gc/reconcile") => service::admin::reconcile(&ctx).map(|r| json(200, &r)),
        (_, "/v1/gc" | "/v1/gc/status" | "/v1/gc/reconcile") => Err(Error::MethodNotAllowed),
        _ => Err(Error::NotFound(What::Route)),
    };
    let mut resp = result.unwrap_or_else(|e| error(&ctx, &e));
    resp.user = Some(ctx.actor.name().to_string());
    resp
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
        Error::ManifestTooLarge { .. } => (413, "TOO_LARGE"),
        Error::UploadOutOfOrder { .. } | Error::RangeNotSatisfiable { .. } => (416, "RANGE_INVALID"),
        Error::Unsupported(_) | Error::MethodNotAllowed => (405, "METHOD_NOT_ALLOWED"),
        Error::Unauthenticated => (401, "UNAUTHENTICATED"),
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
