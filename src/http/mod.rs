//! HTTP plumbing shared by every frontend: the request/response types the
//! handlers see, query parsing, the tiny_http worker pool, request ids, the
//! access log and panic containment.
//!
//! Invariant: a handler's panic never reaches the client as anything but a
//! JSON 500 with the request id, and never takes a worker down.

mod edge;
mod framing;
pub mod metrics;
mod server;
pub mod tls;

pub use edge::{Edge as EdgeHandle, Limits};
pub use server::HttpServer;

use crate::app::App;
use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

/// A request as the frontends see it: metadata copied out of the transport,
/// and the body as a stream.
pub struct Request<'a> {
    pub method: String,
    /// Path and query, as sent (not percent-decoded).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub remote_addr: Option<SocketAddr>,
    pub body: &'a mut dyn Read,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.url.split_once('?').map_or(&self.url, |(p, _)| p)
    }

    pub fn query(&self) -> Vec<(String, String)> {
        parse_query(self.url.split_once('?').map_or("", |(_, q)| q))
    }

    /// Declared body length, if the client sent a valid `Content-Length`.
    pub fn content_length(&self) -> Option<u64> {
        self.header("Content-Length").and_then(|v| v.trim().parse().ok())
    }
}

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// A stream of exactly `len` bytes (files).
    Stream(Box<dyn Read + Send>, u64),
    /// A HEAD answer: `Content-Length: len`, no bytes.
    Head(u64),
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Who the request acted as, for the access log (never sent).
    pub user: Option<String>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Body::Empty, user: None }
    }

    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response::new(status).header("Content-Type", "application/json").body(Body::Bytes(body))
    }

    pub fn header(mut self, k: impl Into<String>, v: impl Into<String>) -> Response {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn body(mut self, body: Body) -> Response {
        self.body = body;
        self
    }

    pub fn body_len(&self) -> Option<u64> {
        match &self.body {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Stream(_, n) | Body::Head(n) => Some(*n),
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs; malformed escapes are
/// kept literally (validation of the values happens later).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

static REQ_SEQ: AtomicU64 = AtomicU64::new(1);

pub fn next_request_id() -> String {
    format!("{:08x}", REQ_SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Routes one request to its frontend under `catch_unwind`.
pub fn dispatch(app: &App, req: &mut Request, req_id: &str) -> Response {
    let r = catch_unwind(AssertUnwindSafe(|| route(app, req, req_id)));
    let resp = r.unwrap_or_else(|_| {
        log::error!("handler panicked req={} method={} path={}", req_id, req.method, req.path());
        crate::oci::internal_error(req_id)
    });
    resp.header("X-Request-Id", req_id)
}

fn route(app: &App, req: &mut Request, req_id: &str) -> Response {
    let path = req.path();
    if path == "/v2" || path.starts_with("/v2/") {
        crate::oci::handle(app, req, req_id)
    } else if path.starts_with("/v1/") {
        crate::admin_api::handle(app, req, req_id)
    } else if path == "/metrics" {
        crate::admin_api::metrics(app, req, req_id)
    } else {
        Response::json(404, br#"{"error":{"code":"NOT_FOUND","message":"no such endpoint"}}"#.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            parse_query("digest=sha256%3Aab&tag=a&tag=b&x&bad=%zz%4"),
            vec![
                ("digest".into(), "sha256:ab".into()),
                ("tag".into(), "a".into()),
                ("tag".into(), "b".into()),
                ("x".into(), "".into()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
    }
}
