//! The HTTP/1.1 transport every frontend enters through: connections,
//! request heads, bodies, answers, request ids, the access log.  It knows
//! nothing of its callers: `HttpServer` takes a `Handler`, and the router
//! above it (`crate::router`) sends each request to its frontend.
//!
//! Invariant: no number a client sends sizes an allocation; a handler's
//! panic never takes a worker down (each frontend answers its own panics in
//! its own format through `contain`; the transport's last resort is a
//! generic JSON 500).

mod body;
mod conn;
mod head;
mod input;
pub mod metrics;
mod reactor;
mod relay;
mod server;
pub mod tls;

pub use input::{credentials, parse_query, MalformedCredentials};
pub use relay::{PeerMap, Relay};
pub use server::HttpServer;

use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The cap on small request bodies (JSON, forms) every frontend uses.
pub const FORM_BODY_LIMIT: u64 = 64 * 1024;

/// What the transport calls for each request.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &mut Request, req_id: &str) -> Response;

    /// The largest body the route at `target` accepts.  A request declaring
    /// more goes to the handler at once (which refuses it before reading),
    /// instead of waiting in the reactor for the start of its body.
    fn body_limit(&self, _method: &str, _target: &str) -> u64 {
        u64::MAX
    }

    /// The body of a refusal the transport answers itself (a malformed or
    /// oversized head, a timeout), in the format of the route at `target`
    /// when it could be read: (content type, body).
    fn refusal(&self, _target: Option<&str>, _status: u16, message: &str) -> (&'static str, Vec<u8>) {
        generic_refusal(message)
    }
}

/// A refusal in no route's format: `{"error":{"code":"BAD_REQUEST",...}}`.
pub fn generic_refusal(message: &str) -> (&'static str, Vec<u8>) {
    let body = serde_json::json!({ "error": { "code": "BAD_REQUEST", "message": message } });
    ("application/json", body.to_string().into_bytes())
}

/// Limits of a connection (from `[server]` in the configuration).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A request head must arrive whole within this of its first byte.
    pub head: Duration,
    /// Silence allowed between requests and inside a body.
    pub idle: Duration,
    /// A body may start slowly for this long ...
    pub body_grace: Duration,
    /// ... then must average at least this many bytes per second.
    pub min_body_rate: u64,
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    /// Most requests of one client address served at once; more wait
    /// their turn in the reactor.
    pub max_workers_per_peer: usize,
}

impl Limits {
    fn pace(&self) -> body::Pace {
        body::Pace { grace: self.body_grace, min_rate: self.min_body_rate, idle: self.idle }
    }
}

/// Runs a frontend's handler, turning a panic into that frontend's own
/// answer.
pub fn contain(
    req_id: &str,
    handler: impl FnOnce() -> Response,
    on_panic: impl FnOnce() -> Response,
) -> Response {
    catch_unwind(AssertUnwindSafe(handler)).unwrap_or_else(|_| {
        log::error!("handler panicked req={req_id}");
        on_panic()
    })
}

/// The reason phrase for a status we send.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A request as the frontends see it: metadata copied out of the transport,
/// and the body as a stream.
pub struct Request<'a> {
    pub method: String,
    /// Path and query, as sent (not percent-decoded).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub remote_addr: Option<SocketAddr>,
    /// The address the client connected to (this server's own, never
    /// something the client wrote).
    pub local_addr: Option<SocketAddr>,
    pub body: &'a mut dyn Read,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.url.split_once('?').map_or(&self.url, |(p, _)| p)
    }
}

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// A stream of exactly `len` bytes.
    Stream(Box<dyn Read + Send>, u64),
    /// `len` bytes of a file from its current position.
    File(std::fs::File, u64),
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

    pub fn body_len(&self) -> u64 {
        match &self.body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Stream(_, n) | Body::File(_, n) | Body::Head(n) => *n,
        }
    }
}

static REQ_SEQ: AtomicU64 = AtomicU64::new(1);

pub fn next_request_id() -> String {
    format!("{:08x}", REQ_SEQ.fetch_add(1, Ordering::Relaxed))
}
