//! The router above the HTTP transport: maps a request's path to its
//! frontend (`/v2` → `oci`, `/v1` → `admin_api`, `/metrics`, `/` and `/ui/` →
//! `ui`), and stamps
//! the request id on every answer.
//!
//! Invariant: the transport knows no frontend and no frontend knows the
//! transport's internals; each frontend answers its own 404s and panics in
//! its own format.

use crate::app::App;
use crate::config::{parse_duration, Config};
use crate::http::{Handler, Request, Response};
use std::sync::Arc;

pub struct Router {
    pub app: Arc<App>,
}

impl Handler for Router {
    fn handle(&self, req: &mut Request, req_id: &str) -> Response {
        dispatch(&self.app, req, req_id)
    }

    fn refusal(&self, target: Option<&str>, status: u16, message: &str) -> (&'static str, Vec<u8>) {
        match target {
            Some(t) if t == "/v2" || t.starts_with("/v2/") || t.starts_with("/v2?") => {
                crate::oci::refusal(status, message)
            }
            _ => crate::http::generic_refusal(message),
        }
    }

    fn body_limit(&self, _method: &str, target: &str) -> u64 {
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        if path.starts_with("/v2/") && path.contains("/blobs/uploads") {
            u64::MAX
        } else if path.starts_with("/v2/") && path.contains("/manifests/") {
            self.app.config.limits.manifest_max_bytes
        } else {
            crate::http::FORM_BODY_LIMIT
        }
    }
}

/// The transport's limits, from the `[server]` section.
pub fn limits(config: &Config) -> crate::http::Limits {
    let server = &config.server;
    let secs = |s: &str, d| std::time::Duration::from_secs(parse_duration(s).unwrap_or(d));
    crate::http::Limits {
        head: secs(&server.header_timeout, 30),
        idle: secs(&server.idle_timeout, 120),
        body_grace: secs(&server.body_grace, 10),
        min_body_rate: server.min_body_rate,
        max_connections: server.max_connections,
        max_connections_per_peer: server.max_connections_per_peer,
        max_workers_per_peer: match server.max_workers_per_peer {
            0 => (server.workers / 4).max(1),
            n => n,
        },
    }
}

/// Sends one request to its frontend.
pub fn dispatch(app: &App, req: &mut Request, req_id: &str) -> Response {
    let path = req.path();
    let resp = if path == "/v2" || path.starts_with("/v2/") {
        crate::oci::handle(app, req, req_id)
    } else if path == "/v1" || path.starts_with("/v1/") {
        crate::admin_api::handle(app, req, req_id)
    } else if path == "/metrics" {
        crate::admin_api::metrics(app, req, req_id)
    } else if path == "/" || path == "/ui" || path.starts_with("/ui/") {
        crate::ui::handle(app, req, req_id)
    } else {
        let body = serde_json::json!({ "error": { "code": "NOT_FOUND", "message": "no such endpoint", "request_id": req_id } });
        Response::json(404, body.to_string().into_bytes())
    };
    resp.header("X-Request-Id", req_id)
}
