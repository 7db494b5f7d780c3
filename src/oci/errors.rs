//! Service errors as OCI error JSON, one exhaustive mapping.

use crate::app::Ctx;
use crate::error::{Error, What};
use crate::http::Response;

fn code(e: &Error) -> (u16, &'static str) {
    match e {
        Error::NotFound(What::Repository) => (404, "NAME_UNKNOWN"),
        Error::NotFound(What::Blob) => (404, "BLOB_UNKNOWN"),
        Error::NotFound(What::Manifest) => (404, "MANIFEST_UNKNOWN"),
        Error::NotFound(What::Upload) => (404, "BLOB_UPLOAD_UNKNOWN"),
        Error::NotFound(What::Route | What::Rule | What::User) => (404, "UNSUPPORTED"),
        Error::InvalidName(_) => (400, "NAME_INVALID"),
        Error::InvalidDigest(_) | Error::DigestMismatch { .. } => (400, "DIGEST_INVALID"),
        Error::InvalidManifest(_) => (400, "MANIFEST_INVALID"),
        Error::ManifestTooLarge { .. } => (413, "MANIFEST_INVALID"),
        Error::BodyTooLarge { .. } => (413, "SIZE_INVALID"),
        Error::ManifestBlobUnknown(_) => (400, "MANIFEST_BLOB_UNKNOWN"),
        Error::InvalidUpload(_) => (400, "BLOB_UPLOAD_INVALID"),
        Error::InvalidPagination(_) => (400, "PAGINATION_NUMBER_INVALID"),
        Error::InvalidSize(_) | Error::BodyIncomplete(_) => (400, "SIZE_INVALID"),
        Error::BadRequest(_) => (400, "UNSUPPORTED"),
        Error::UploadOutOfOrder { .. } => (416, "BLOB_UPLOAD_INVALID"),
        Error::RangeNotSatisfiable { .. } => (416, "SIZE_INVALID"),
        Error::Unsupported(_) | Error::MethodNotAllowed => (405, "UNSUPPORTED"),
        Error::Unauthenticated | Error::InsufficientScope { .. } => (401, "UNAUTHORIZED"),
        Error::Denied(_) => (403, "DENIED"),
        Error::Busy(_) | Error::RateLimited { .. } => (429, "TOOMANYREQUESTS"),
        Error::Unavailable(_) => (503, "UNAVAILABLE"),
        Error::Internal(_) => (500, "UNKNOWN"),
    }
}

fn body(code: &str, message: &str, detail: serde_json::Value) -> Vec<u8> {
    serde_json::json!({ "errors": [{ "code": code, "message": message, "detail": detail }] })
        .to_string()
        .into_bytes()
}

pub fn to_response(ctx: &Ctx, e: &Error, method: &str) -> Response {
    let (status, code) = code(e);
    let detail = match e {
        Error::Unavailable(why) => {
            log::warn!("dependency unavailable req={} err={why}", ctx.req_id);
            serde_json::Value::Null
        }
        Error::Internal(err) => {
            log::error!("internal error req={} method={method} err={err:#}", ctx.req_id);
            serde_json::json!({ "request_id": ctx.req_id })
        }
        Error::ManifestBlobUnknown(d) => serde_json::json!({ "digest": d }),
        Error::DigestMismatch { expected, actual } => {
            serde_json::json!({ "expected": expected, "actual": actual })
        }
        _ => serde_json::Value::Null,
    };
    let mut resp = Response::json(status, body(code, &e.to_string(), detail));
    match e {
        Error::RangeNotSatisfiable { size } => {
            resp = resp.header("Content-Range", format!("bytes */{size}"));
        }
        Error::UploadOutOfOrder { offset } => {
            resp = resp.header("Range", format!("0-{}", offset.saturating_sub(1)));
        }
        Error::RateLimited { retry_after } => {
            resp = resp.header("Retry-After", retry_after.to_string());
        }
        _ => {}
    }
    resp
}

/// The answer for a handler that panicked (the panic was logged already).
pub fn internal_error(req_id: &str) -> Response {
    Response::json(500, body("UNKNOWN", "internal error", serde_json::json!({ "request_id": req_id })))
        .header("Docker-Distribution-API-Version", "registry/2.0")
}

/// A refusal the transport answers itself on `/v2` (a malformed or oversized
/// head, a timeout), as OCI error JSON: (content type, body).
pub fn refusal(status: u16, message: &str) -> (&'static str, Vec<u8>) {
    let code = match status {
        411 | 413 => "SIZE_INVALID",
        429 => "TOOMANYREQUESTS",
        503 => "UNAVAILABLE",
        _ => "UNSUPPORTED",
    };
    ("application/json", body(code, message, serde_json::Value::Null))
}
