//! The readiness loop: one thread owns every connection that is not being
//! served — new ones, idle keep-alive ones, ones still sending a head or the
//! start of a body — and hands a connection to the worker pool only when a
//! complete head (and the first `PREFETCH` bytes of its body, or all of it)
//! has arrived.
//!
//! This is not an async runtime: there are no futures and no tasks, only
//! mio's epoll wrapper telling one thread which sockets have bytes.  Idle
//! and slow connections cost a slot here, not a thread, and a client that
//! trickles its head or body cannot hold a worker.
//!
//! Invariant: every connection ends here (workers always send theirs back),
//! so the connection counts are exact; every deadline is enforced by a sweep
//! at least every `SWEEP`.

use super::body::{scan_chunked, ChunkDecoder};
use super::conn::{Conn, Io, TlsConn};
use super::head::{self, Framing, Head, Parsed, Refusal, MAX_HEAD};
use super::tls::TlsHolder;
use super::{Handler, Limits};
use crossbeam::channel::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much of a body the reactor waits for before a worker takes over.
pub const PREFETCH: usize = 64 * 1024;
/// How often deadlines are checked.
const SWEEP: Duration = Duration::from_millis(100);
/// How long a closing connection may take to read our last answer.
const LINGER: Duration = Duration::from_secs(2);

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

/// A request ready for a worker.
pub struct Job {
    pub io: Io,
    pub peer: SocketAddr,
    pub head: Head,
}

/// What a worker gives back.
pub struct Returned {
    pub io: Io,
    pub peer: SocketAddr,
    pub after: After,
}

pub enum After {
    /// Park for the next request.
    KeepAlive,
    /// Our answer was the last one: linger, then close.
    Close,
    /// The connection failed: close now.
    Dead,
}

enum Phase {
    /// TLS handshake; `first` until the client's first bytes were seen.
    Handshake {
        first: bool,
    },
    /// Waiting for a head; `started` is when its first byte came.
    Head {
        started: Option<Instant>,
    },
    /// Waiting for the start of a body.
    Body {
        head: Head,
        head_len: usize,
        scan: ChunkDecoder,
        scanned: usize,
        started: Instant,
    },
    /// Ready, but its client already has its share of the workers busy.
    Held {
        head: Head,
        head_len: usize,
    },
    Closing {
        until: Instant,
    },
}

struct Slot {
    io: Io,
    peer: SocketAddr,
    phase: Phase,
    /// When a byte last arrived (or the connection was parked).
    last: Instant,
    /// No request has come on it yet: silence is bounded by the head
    /// timeout, not the (longer) idle timeout of a kept-alive connection.
    fresh: bool,
}

pub struct Reactor {
    poll: Poll,
    listener: TcpListener,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Connections alive anywhere (here or in a worker), total and per peer.
    live: usize,
    per_peer: HashMap<IpAddr, usize>,
    /// Requests of each client address being served, and those waiting
    /// for one of them to finish.
    busy: HashMap<IpAddr, usize>,
    held: HashMap<IpAddr, VecDeque<usize>>,
    jobs: Sender<Job>,
    back: Receiver<Returned>,
    tls: Option<TlsHolder>,
    handler: Arc<dyn Handler>,
    limits: Limits,
    stop: Arc<AtomicBool>,
    scratch: Vec<u8>,
}

impl Reactor {
    pub fn new(
        listener: TcpListener,
        jobs: Sender<Job>,
        back: Receiver<Returned>,
        tls: Option<TlsHolder>,
        handler: Arc<dyn Handler>,
        limits: Limits,
        stop: Arc<AtomicBool>,
    ) -> io::Result<(Reactor, Arc<Waker>)> {
        let poll = Poll::new()?;
        listener.set_nonblocking(true)?;
        poll.registry().register(&mut SourceFd(&listener.as_raw_fd()), LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let reactor = Reactor {
            poll,
            listener,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            per_peer: HashMap::new(),
            busy: HashMap::new(),
            held: HashMap::new(),
            jobs,
            back,
            tls,
            handler,
            limits,
            stop,
            scratch: vec![0u8; 64 * 1024],
        };
        Ok((reactor, waker))
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_sweep = Instant::now() + SWEEP;
        while !self.stop.load(Ordering::SeqCst) {
            let wait = next_sweep.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("poll failed err={e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            for ev in events.iter() {
                // One connection's bug must not take every connection down:
                // a panic closes that connection, and the loop goes on.
                let token = ev.token();
                let handled = catch_unwind(AssertUnwindSafe(|| match token {
                    LISTENER => self.accept(),
                    WAKER => self.take_back(),
                    Token(i) => self.on_ready(i),
                }));
                if handled.is_err() {
                    log::error!("connection handling panicked token={}", token.0);
                    let Token(i) = token;
                    if i < self.slots.len() {
                        self.close(i);
                    }
                }
            }
            if Instant::now() >= next_sweep {
                if catch_unwind(AssertUnwindSafe(|| self.sweep())).is_err() {
                    log::error!("connection sweep panicked");
                }
                next_sweep = Instant::now() + SWEEP;
            }
        }
        // Shutdown: parked connections close; requests being served finish
        // in their workers (whose returns are dropped with the channel).
        for i in 0..self.slots.len() {
            self.close(i);
        }
    }

    fn accept(&mut self) {
        loop {
            let (sock, peer) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors and the like: try again on the next event.
                    log::warn!("accept failed err={e}");
                    return;
                }
            };
            let peer_count = self.per_peer.get(&peer.ip()).copied().unwrap_or(0);
            if self.live >= self.limits.max_connections || peer_count >= self.limits.max_connections_per_peer
            {
                log::warn!(
                    "connection refused: limit reached peer={peer} live={} from_peer={peer_count}",
                    self.live
                );
                let _ = sock.set_nonblocking(true);
                // Plain only: on a TLS listener the client sees the close.
                if self.tls.is_none() {
                    Conn::Plain(sock).send_final(&error_response(503, "too many connections"));
                }
                continue;
            }
            if let Err(e) = self.adopt(sock, peer) {
                log::debug!("cannot adopt connection peer={peer} err={e}");
            }
        }
    }

    fn adopt(&mut self, sock: TcpStream, peer: SocketAddr) -> io::Result<()> {
        sock.set_nonblocking(true)?;
        sock.set_nodelay(true)?;
        let (conn, phase) = match &self.tls {
            Some(holder) => {
                let tls = rustls::ServerConnection::new(holder.current()).map_err(io::Error::other)?;
                (Conn::Tls(Box::new(TlsConn { tls, sock })), Phase::Handshake { first: true })
            }
            None => (Conn::Plain(sock), Phase::Head { started: None }),
        };
        self.live += 1;
        *self.per_peer.entry(peer.ip()).or_insert(0) += 1;
        let slot =
            Slot { io: Io { conn, buf: Vec::new(), pos: 0 }, peer, phase, last: Instant::now(), fresh: true };
        self.park(slot);
        Ok(())
    }

    /// Registers a slot with the poller and looks at what it already holds.
    fn park(&mut self, slot: Slot) {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let interest = match slot.io.conn {
            Conn::Plain(_) => Interest::READABLE,
            Conn::Tls(_) => Interest::READABLE | Interest::WRITABLE,
        };
        let fd = slot.io.conn.sock().as_raw_fd();
        self.slots[i] = Some(slot);
        if let Err(e) = self.poll.registry().register(&mut SourceFd(&fd), Token(i), interest) {
            log::warn!("cannot register connection err={e}");
            self.close(i);
            return;
        }
        // Bytes may already be buffered (pipelined requests, TLS plaintext
        // held by rustls) and would raise no event.
        self.on_ready(i);
    }

    fn take_back(&mut self) {
        while let Ok(r) = self.back.try_recv() {
            let Returned { mut io, peer, after } = r;
            self.release_worker(peer);
            io.compact();
            if io.conn.sock().set_nonblocking(true).is_err() {
                self.forget(peer);
                continue;
            }
            let phase = match after {
                After::KeepAlive => Phase::Head { started: None },
                After::Close => {
                    io.conn.finish_writing();
                    Phase::Closing { until: Instant::now() + LINGER }
                }
                After::Dead => {
                    self.forget(peer);
                    continue;
                }
            };
            self.park(Slot { io, peer, phase, last: Instant::now(), fresh: false });
        }
    }

    fn on_ready(&mut self, i: usize) {
        let Some(slot) = self.slots.get_mut(i).and_then(Option::as_mut) else { return };
        let cap = match &slot.phase {
            Phase::Handshake { .. } | Phase::Head { .. } => MAX_HEAD + 1,
            Phase::Body { head_len, .. } => head_len + PREFETCH,
            // Its worker reads the rest.
            Phase::Held { .. } => return,
            Phase::Closing { .. } => 0,
        };
        if let Phase::Closing { .. } = slot.phase {
            // Discard whatever the client still sends until it closes.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let cap = self.scratch.len();
                match slot.io.conn.read_available(&mut sink, &mut self.scratch, cap) {
                    Ok(false) if sink.len() == cap => continue,
                    Ok(false) => return,
                    Ok(true) | Err(_) => return self.close(i),
                }
            }
        }
        if let (Phase::Handshake { first: true }, Conn::Tls(t)) = (&slot.phase, &slot.io.conn) {
            // Plain HTTP on the TLS port: answer in plain text, not with a
            // TLS alert the client cannot read.
            let mut byte = [0u8; 1];
            match t.sock.peek(&mut byte) {
                Ok(1) if byte[0] == TLS_HANDSHAKE => slot.phase = Phase::Handshake { first: false },
                Ok(1) => {
                    let _ =
                        (&t.sock).write_all(&error_response(400, "this mcr listener speaks HTTPS (TLS 1.3)"));
                    let _ = t.sock.shutdown(std::net::Shutdown::Write);
                    slot.phase = Phase::Closing { until: Instant::now() + LINGER };
                    return;
                }
                // Nothing yet: wait for the first byte.  Reading on would
                // take a ClientHello that arrives meanwhile without clearing
                // `first`, and the client's next record (not a handshake
                // record) would then be taken for plain HTTP mid-handshake.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
                _ => return self.close(i),
            }
        }
        let before = slot.io.buf.len();
        let eof = match slot.io.conn.read_available(&mut slot.io.buf, &mut self.scratch, cap) {
            Ok(eof) => eof,
            Err(e) => {
                log::debug!("connection read failed peer={} err={e}", slot.peer);
                return self.close(i);
            }
        };
        if slot.io.buf.len() > before {
            slot.last = Instant::now();
        }
        if let Phase::Handshake { .. } = slot.phase {
            let Conn::Tls(t) = &mut slot.io.conn else { unreachable!("handshake on a plain connection") };
            if t.flush_nonblocking().is_err() {
                return self.close(i);
            }
            if t.tls.is_handshaking() {
                if eof {
                    self.close(i);
                }
                return;
            }
            slot.phase = Phase::Head { started: None };
        }
        let filled = slot.io.buf.len() >= cap;
        self.advance(i, eof);
        // A read that stopped at the head cap may have left body bytes in
        // the socket, and an edge-triggered poller will not report them
        // again: read on under the new phase's cap.  (A full head buffer is
        // refused and a full body prefix dispatched, so this ends.)
        let open =
            matches!(self.slots[i].as_ref().map(|s| &s.phase), Some(Phase::Head { .. } | Phase::Body { .. }));
        if filled && open && !eof {
            self.on_ready(i);
        }
    }

    /// Moves a slot on as far as its buffered bytes allow: parse a head,
    /// wait for the body's start, hand it to a worker, or refuse it.
    fn advance(&mut self, i: usize, eof: bool) {
        let Some(slot) = self.slots[i].as_mut() else { return };
        if let Phase::Head { started } = &mut slot.phase {
            if slot.io.buf.is_empty() {
                if eof {
                    self.close(i);
                }
                return;
            }
            started.get_or_insert_with(Instant::now);
            if slot.io.buf[0] == TLS_HANDSHAKE && matches!(slot.io.conn, Conn::Plain(_)) {
                // Docker-style clients try HTTPS first: say so at once.
                return self.refuse(
                    i,
                    Refusal { status: 400, message: "this mcr listener speaks plain HTTP, not TLS" },
                );
            }
            match head::parse(&slot.io.buf) {
                Ok(Parsed::Partial) if eof => return self.close(i),
                Ok(Parsed::Partial) => return,
                Err(r) => return self.refuse(i, r),
                Ok(Parsed::Complete(head, head_len)) => {
                    slot.phase = Phase::Body {
                        head,
                        head_len,
                        scan: ChunkDecoder::default(),
                        scanned: 0,
                        started: Instant::now(),
                    };
                }
            }
        }
        let Phase::Body { head, head_len, scan, scanned, .. } = &mut slot.phase else { return };
        let body = &slot.io.buf[*head_len..];
        let ready = match head.framing {
            _ if head.expect_continue => true,
            Framing::None => true,
            Framing::Length(n) if n > self.handler.body_limit(&head.method, &head.target) => true,
            Framing::Length(n) => body.len() as u64 >= n.min(PREFETCH as u64),
            Framing::Chunked => match scan_chunked(scan, scanned, body) {
                Ok(done) => done.is_some() || body.len() >= PREFETCH,
                Err(m) => return self.refuse(i, Refusal { status: 400, message: m }),
            },
        };
        if ready {
            self.dispatch(i);
        } else if eof {
            // The client gave up mid-body: nothing reaches a handler.
            self.close(i);
        }
    }

    /// A ready request goes to a worker, unless its client address already
    /// has its share of the workers: then it waits here, so one client
    /// (slow, or just busy) cannot take the whole pool.
    fn dispatch(&mut self, i: usize) {
        let Some(slot) = self.slots[i].as_mut() else { return };
        let ip = slot.peer.ip();
        if self.busy.get(&ip).copied().unwrap_or(0) >= self.limits.max_workers_per_peer {
            if let Phase::Body { head, head_len, .. } =
                std::mem::replace(&mut slot.phase, Phase::Head { started: None })
            {
                slot.phase = Phase::Held { head, head_len };
                self.held.entry(ip).or_default().push_back(i);
            }
            // (A held request is only dispatched again once a worker of its
            // client finished, so it never comes back here.)
            return;
        }
        let Some(mut slot) = self.take(i) else { return };
        let (head, head_len) = match std::mem::replace(&mut slot.phase, Phase::Head { started: None }) {
            Phase::Body { head, head_len, .. } | Phase::Held { head, head_len } => (head, head_len),
            _ => unreachable!("dispatch of a request that is not ready"),
        };
        *self.busy.entry(ip).or_insert(0) += 1;
        slot.io.pos = head_len;
        if slot.io.conn.sock().set_nonblocking(false).is_err() {
            self.forget(slot.peer);
            return;
        }
        let job = Job { io: slot.io, peer: slot.peer, head };
        if self.jobs.send(job).is_err() {
            // Workers are gone: shutting down.
            self.forget(slot.peer);
        }
    }

    /// A worker finished a request of `peer`: the next held one may go.
    fn release_worker(&mut self, peer: SocketAddr) {
        let ip = peer.ip();
        if let Some(n) = self.busy.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.busy.remove(&ip);
            }
        }
        while let Some(j) = self.held.get_mut(&ip).and_then(VecDeque::pop_front) {
            let waiting = matches!(&self.slots[j], Some(s) if s.peer.ip() == ip && matches!(s.phase, Phase::Held { .. }));
            if waiting {
                self.dispatch(j);
                break;
            }
        }
        if self.held.get(&ip).is_some_and(VecDeque::is_empty) {
            self.held.remove(&ip);
        }
    }

    /// Takes a slot out of the poller (it goes to a worker or is dropped).
    fn take(&mut self, i: usize) -> Option<Slot> {
        let slot = self.slots.get_mut(i)?.take()?;
        let _ = self.poll.registry().deregister(&mut SourceFd(&slot.io.conn.sock().as_raw_fd()));
        self.free.push(i);
        Some(slot)
    }

    fn close(&mut self, i: usize) {
        if let Some(slot) = self.take(i) {
            self.forget(slot.peer);
        }
    }

    fn forget(&mut self, peer: SocketAddr) {
        self.live -= 1;
        if let Some(n) = self.per_peer.get_mut(&peer.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer.ip());
            }
        }
    }

    /// Answers a framing error and closes after a short linger.
    fn refuse(&mut self, i: usize, r: Refusal) {
        let Some(slot) = self.slots[i].as_mut() else { return };
        log::info!("request refused peer={} status={} why={}", slot.peer, r.status, r.message);
        super::metrics::METRICS.record("-", r.status, 0, 0);
        let target = request_target(&slot.io.buf);
        let (content_type, body) = self.handler.refusal(target.as_deref(), r.status, r.message);
        slot.io.conn.send_final(&refusal_bytes(r.status, content_type, &body));
        slot.io.buf = Vec::new();
        slot.phase = Phase::Closing { until: Instant::now() + LINGER };
    }

    /// Enforces every deadline.
    fn sweep(&mut self) {
        let now = Instant::now();
        let l = self.limits;
        for i in 0..self.slots.len() {
            let Some(slot) = &self.slots[i] else { continue };
            let idle = now.saturating_duration_since(slot.last);
            match &slot.phase {
                Phase::Handshake { .. } if idle > l.head => self.close(i),
                Phase::Head { started: None } if idle > if slot.fresh { l.head } else { l.idle } => {
                    self.close(i)
                }
                Phase::Head { started: Some(t) } if now.saturating_duration_since(*t) > l.head => {
                    self.refuse(i, Refusal { status: 408, message: "request head not received in time" })
                }
                Phase::Body { head_len, started, .. } => {
                    let got = (slot.io.buf.len() - head_len) as u64;
                    let pace = l.pace();
                    if idle > l.idle || pace.too_slow(got, now.saturating_duration_since(*started)) {
                        self.refuse(
                            i,
                            Refusal {
                                status: 408,
                                message: "request body stalled or below the minimum rate",
                            },
                        )
                    }
                }
                Phase::Closing { until } if now > *until => self.close(i),
                _ => {}
            }
        }
    }
}

/// A refusal the transport writes itself, before any frontend saw the
/// request: JSON, and the connection closes.
/// The target of a request line, when the head got that far and it is text.
fn request_target(buf: &[u8]) -> Option<String> {
    let line = &buf[..buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len()).min(8192)];
    let text = std::str::from_utf8(line).ok()?;
    let target = text.split(' ').nth(1)?;
    target.starts_with('/').then(|| target.to_string())
}

fn refusal_bytes(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        super::reason(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

pub fn error_response(status: u16, msg: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": { "code": "BAD_REQUEST", "message": msg } }).to_string();
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        super::reason(status),
        body.len()
    )
    .into_bytes()
}
