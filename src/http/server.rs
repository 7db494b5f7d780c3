//! The HTTP/1.1 server: the reactor (`reactor`) parks connections until a
//! request is ready; a fixed pool of worker threads runs the handler, reads
//! the body as the handler asks, writes the answer straight to the socket
//! and gives the connection back.
//!
//! There is one parser (httparse, in `head`), no loopback hop and no second
//! HTTP library: tiny_http spawned a thread per connection, drained unread
//! bodies into a buffer the size of the client's `Content-Length`, and sat
//! behind a loopback relay whose sockets met Nagle's algorithm — see
//! ARCHITECTURE.md, "The front door", for the measurements.
//!
//! Invariant: threads do not grow with connections (one reactor, `workers`
//! workers); every worker is joined by `shutdown`, after the requests it
//! holds have been answered.

use super::body::{BodyReader, Pace};
use super::conn::{Conn, Io};
use super::reactor::{After, Job, Reactor, Returned};
use super::tls::TlsHolder;
use super::{next_request_id, reason, Body, Handler, Limits, Request, Response};
use anyhow::Context as _;
use crossbeam::channel::{self, Receiver, Sender};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Most of an unread body a worker reads to keep the connection open;
/// beyond it the connection closes after the answer.
const DRAIN_LIMIT: u64 = 256 * 1024;
/// Bodies in memory up to this size go out in the same write as the head.
const COALESCE: usize = 64 * 1024;
/// Copy buffer for file and streamed answers.
const COPY_BUF: usize = 256 * 1024;

pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    reactor: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    tls: Option<TlsHolder>,
}

impl HttpServer {
    pub fn start(
        handler: Arc<dyn Handler>,
        addr: SocketAddr,
        workers: usize,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
    ) -> anyhow::Result<HttpServer> {
        let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let addr = listener.local_addr().context("listener address")?;
        let tls = tls.map(TlsHolder::new);
        let (jobs_tx, jobs_rx) = channel::unbounded::<Job>();
        let (back_tx, back_rx) = channel::unbounded::<Returned>();
        let stop = Arc::new(AtomicBool::new(false));
        let (reactor, waker) =
            Reactor::new(listener, jobs_tx, back_rx, tls.clone(), handler.clone(), limits, stop.clone())
                .context("start the connection reactor")?;
        let workers = (0..workers)
            .map(|i| {
                let (handler, jobs, back, waker) =
                    (handler.clone(), jobs_rx.clone(), back_tx.clone(), waker.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || worker(&*handler, &jobs, &back, &waker, limits))
                    .context("spawn http worker")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let reactor = std::thread::Builder::new()
            .name("http-reactor".into())
            .spawn(move || reactor.run())
            .context("spawn reactor")?;
        Ok(HttpServer { addr, stop, waker, reactor: Some(reactor), workers, tls })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// New connections use `config` from now on; open ones keep theirs.
    /// False when this server does not speak TLS.
    pub fn reload_tls(&self, config: Arc<rustls::ServerConfig>) -> bool {
        match &self.tls {
            Some(holder) => {
                holder.replace(config);
                true
            }
            None => false,
        }
    }

    /// Stops taking connections; requests already handed to workers are
    /// answered, then the workers are joined.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(r) = self.reactor.take() {
            let _ = r.join();
        }
        // The reactor held the only job sender: workers drain and end.
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
    }
}

fn worker(
    handler: &dyn Handler,
    jobs: &Receiver<Job>,
    back: &Sender<Returned>,
    waker: &mio::Waker,
    limits: Limits,
) {
    while let Ok(job) = jobs.recv() {
        let peer = job.peer;
        let (io, after) = serve(handler, job, limits);
        if back.send(Returned { io, peer, after }).is_ok() {
            let _ = waker.wake();
        }
    }
}

/// Answers one request; says what should become of the connection.
fn serve(handler: &dyn Handler, job: Job, limits: Limits) -> (Io, After) {
    let started = Instant::now();
    let req_id = next_request_id();
    let Job { mut io, peer, head } = job;
    // A client that stops reading holds its worker for the grace period at
    // most (and must then keep up with the minimum rate).
    let _ = io.conn.sock().set_write_timeout(Some(limits.body_grace.min(limits.idle)));
    let method = head.method;
    let local_addr = io.conn.sock().local_addr().ok();
    let pace = Pace { grace: limits.body_grace, min_rate: limits.min_body_rate, idle: limits.idle };
    let mut body = BodyReader::new(&mut io, head.framing, head.expect_continue, pace);
    let mut req = Request {
        method: method.clone(),
        url: head.target,
        headers: head.headers,
        remote_addr: Some(peer),
        local_addr,
        body: &mut body,
    };
    let resp = catch_unwind(AssertUnwindSafe(|| handler.handle(&mut req, &req_id))).unwrap_or_else(|_| {
        log::error!("handler panicked req={req_id} method={method}");
        Response::json(500, br#"{"error":{"code":"INTERNAL","message":"internal error"}}"#.to_vec())
    });
    let url = std::mem::take(&mut req.url);
    drop(req);
    let reusable = head.keep_alive && body.finish(DRAIN_LIMIT);
    let status = resp.status;
    let len = resp.body_len();
    let user = resp.user.clone().unwrap_or_else(|| "-".to_string());
    let written = write_response(&mut io.conn, resp, method == "HEAD", !reusable, &req_id, pace);
    super::metrics::METRICS.record(&method, status, started.elapsed().as_micros() as u64, len);
    let path = url.split_once('?').map_or(url.as_str(), |(p, _)| p);
    log::info!(
        "access req={} method={} path={} status={} bytes={} ms={} user={} peer={} sent={}",
        req_id,
        method,
        path,
        status,
        len,
        started.elapsed().as_millis(),
        user,
        peer,
        if written.is_ok() { "ok" } else { "aborted" }
    );
    let after = match written {
        Err(_) => After::Dead,
        Ok(()) if reusable => After::KeepAlive,
        Ok(()) => After::Close,
    };
    (io, after)
}

/// Writes status line, headers and body.  The transport owns the framing
/// headers (`Content-Length`, `Connection`, `Date`, `Server`); a handler's
/// copies of them are dropped.
fn write_response(
    conn: &mut Conn,
    resp: Response,
    head_only: bool,
    close: bool,
    req_id: &str,
    pace: Pace,
) -> io::Result<()> {
    let len = resp.body_len();
    let mut out = Vec::with_capacity(512);
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: mcr\r\nDate: {}\r\n",
        resp.status,
        reason(resp.status),
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    for (k, v) in &resp.headers {
        let framing = ["content-length", "transfer-encoding", "connection", "date", "server"]
            .iter()
            .any(|f| k.eq_ignore_ascii_case(f));
        let valid = !k.is_empty()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            && v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
        if framing {
            continue;
        }
        if !valid {
            log::warn!("dropped invalid response header req={req_id} name={k}");
            continue;
        }
        let _ = write!(out, "{k}: {v}\r\n");
    }
    if !matches!(resp.status, 100..=199 | 204 | 304) {
        let _ = write!(out, "Content-Length: {len}\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if head_only {
        return conn.write_all(&out);
    }
    match resp.body {
        Body::Empty | Body::Head(_) => conn.write_all(&out),
        Body::Bytes(b) if b.len() <= COALESCE => {
            out.extend_from_slice(&b);
            conn.write_all(&out)
        }
        Body::Bytes(b) => {
            conn.write_all(&out)?;
            conn.write_all(&b)
        }
        Body::File(file, n) => {
            // 256 KiB writes, not sendfile(2): measured on loopback, sendfile
            // pulled at 0.7–0.8× Distribution (1.8–1.9 GB/s, 0.5 CPU-s/GB);
            // these writes at 1.05–1.6× (2.9–4.3 GB/s, 0.23–0.34 CPU-s/GB).
            // std's io::copy does 8 KiB reads and writes here.
            conn.write_all(&out)?;
            copy_exact(&mut (&file).take(n), conn, n, pace)
        }
        Body::Stream(mut r, n) => {
            conn.write_all(&out)?;
            copy_exact(&mut r, conn, n, pace)
        }
    }
}

/// A download must go at the minimum rate too, or it ends: a client that
/// reads slowly on purpose cannot hold a worker.
fn keeping_up(pace: Pace, sent: u64, started: Instant) -> io::Result<()> {
    if pace.too_slow(sent, started.elapsed()) {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "client reads below the minimum rate"));
    }
    Ok(())
}

fn copy_exact(r: &mut dyn Read, conn: &mut Conn, n: u64, pace: Pace) -> io::Result<()> {
    let mut buf = vec![0u8; COPY_BUF.min(n as usize).max(1)];
    let mut sent = 0u64;
    let started = Instant::now();
    while sent < n {
        let want = (n - sent).min(buf.len() as u64) as usize;
        let k = match r.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        conn.write_all(&buf[..k])?;
        sent += k as u64;
        keeping_up(pace, sent, started)?;
    }
    exact(sent, n)
}

/// A body shorter than its announced length leaves the client unable to
/// frame the next answer: the connection must end.
fn exact(sent: u64, n: u64) -> io::Result<()> {
    if sent == n {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("answer body ended at {sent} of {n} bytes")))
    }
}
