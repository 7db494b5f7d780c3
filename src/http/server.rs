//! The HTTP listener: tiny_http parses connections, a fixed pool of worker
//! threads runs handlers.
//!
//! We drive tiny_http directly rather than through `rouille::Server`:
//! rouille drops any `Content-Length` a handler sets and leaves tiny_http's
//! default of chunked encoding for bodies of 32 KiB and more, so blob GET
//! and HEAD answers would lose the `Content-Length` the OCI spec requires,
//! and its request body cannot be streamed into in-process tests.
//!
//! Invariant: every worker is joined by `shutdown`, which first lets the
//! requests already received finish.

use super::edge::{Edge, PeerMap};
use super::{dispatch, next_request_id, Body, Request};
use crate::app::App;
use anyhow::Context as _;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    edge: Edge,
}

impl HttpServer {
    pub fn start(
        app: Arc<App>,
        addr: SocketAddr,
        workers: usize,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: super::edge::Limits,
    ) -> anyhow::Result<HttpServer> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("cannot bind the loopback backend listener")?;
        let backend = server.server_addr().to_ip().context("backend has no IP address")?;
        let server = Arc::new(server);
        let peers = PeerMap::default();
        let edge = Edge::start(addr, backend, peers.clone(), workers * 16, tls, limits)
            .with_context(|| format!("cannot listen on {addr}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|i| {
                let (server, stop) = (server.clone(), stop.clone());
                let (app, peers) = (app.clone(), peers.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || worker(&server, &stop, &app, &peers))
                    .context("spawn http worker")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(HttpServer { server, workers, stop, edge })
    }

    pub fn addr(&self) -> SocketAddr {
        self.edge.addr()
    }

    /// Stops taking connections and requests, lets the requests received
    /// finish, joins the workers.
    pub fn shutdown(mut self) {
        self.edge.stop();
        self.stop.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
    }
}

fn worker(server: &tiny_http::Server, stop: &AtomicBool, app: &App, peers: &PeerMap) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(rq)) => serve(app, rq, peers),
            Ok(None) => {}
            Err(e) => {
                log::error!("http accept failed err={e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    // Drain what tiny_http has already queued so no accepted request is lost.
    while let Ok(Some(rq)) = server.try_recv() {
        serve(app, rq, peers);
    }
}

/// Reads the body lazily, so that `Expect: 100-continue` is only answered
/// when a handler actually wants the body.
struct LazyBody<'a> {
    rq: &'a mut tiny_http::Request,
    started: bool,
    eof: bool,
}

impl Read for LazyBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.started = true;
        let n = self.rq.as_reader().read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}

/// tiny_http discards an unread `Content-Length` body but not an unread
/// chunked one: its bytes would be parsed as the next request, out of step
/// with the edge's framing.  So an unread chunked body is read to its end
/// (the edge's idle timeout bounds a client that stalls).  A client that
/// waits for `100-continue` and has sent nothing is left alone: whatever it
/// sends later starts with a hex chunk-size line, which the edge refuses to
/// let pass as anything else and tiny_http cannot parse as a request line.
fn drain_chunked(body: &mut LazyBody, chunked: bool, expects_continue: bool) {
    if !chunked || body.eof || (expects_continue && !body.started) {
        return;
    }
    let mut sink = [0u8; 64 * 1024];
    while let Ok(n) = body.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

fn serve(app: &App, mut rq: tiny_http::Request, peers: &PeerMap) {
    let started = Instant::now();
    let req_id = next_request_id();
    let method = rq.method().as_str().to_string();
    let url = rq.url().to_string();
    let headers: Vec<(String, String)> = rq
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let peer = rq.remote_addr().and_then(|relay| peers.lookup(*relay));
    let header = |name: &str| {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_ascii_lowercase())
    };
    let chunked = header("Transfer-Encoding").is_some_and(|v| v.contains("chunked"));
    let expects_continue = header("Expect").is_some_and(|v| v.contains("100-continue"));
    let (resp, url) = {
        let mut body = LazyBody { rq: &mut rq, started: false, eof: false };
        let mut req = Request { method: method.clone(), url, headers, remote_addr: peer, body: &mut body };
        let resp = dispatch(app, &mut req, &req_id);
        let url = req.url;
        drain_chunked(&mut body, chunked, expects_continue);
        (resp, url)
    };
    let status = resp.status;
    let len = resp.body_len();
    let user = resp.user.clone().unwrap_or_else(|| "-".to_string());
    let mut headers = Vec::with_capacity(resp.headers.len() + 1);
    for (k, v) in &resp.headers {
        match tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            Ok(h) => headers.push(h),
            Err(_) => log::warn!("dropped invalid response header req={req_id} name={k}"),
        }
    }
    headers.push(tiny_http::Header::from_bytes(&b"Server"[..], &b"mcr"[..]).expect("static header"));
    let reader: Box<dyn Read + Send> = match resp.body {
        Body::Empty | Body::Head(_) => Box::new(io::empty()),
        Body::Bytes(b) => Box::new(io::Cursor::new(b)),
        Body::Stream(r, _) => r,
    };
    let response = tiny_http::Response::new(
        tiny_http::StatusCode(status),
        headers,
        reader,
        len.map(|n| n as usize),
        None,
    )
    .with_chunked_threshold(usize::MAX);
    let outcome = rq.respond(response);
    super::metrics::METRICS.record(&method, status, started.elapsed().as_micros() as u64, len.unwrap_or(0));
    let path = url.split_once('?').map_or(url.as_str(), |(p, _)| p);
    log::info!(
        "access req={} method={} path={} status={} bytes={} ms={} user={} peer={} sent={}",
        req_id,
        method,
        path,
        status,
        len.map_or("-".to_string(), |n| n.to_string()),
        started.elapsed().as_millis(),
        user,
        peer.map_or("-".to_string(), |p| p.to_string()),
        if outcome.is_ok() { "ok" } else { "aborted" }
    );
}
