//! The public listener in front of tiny_http.
//!
//! tiny_http reads a request line with no length limit and no timeout, so a
//! TLS ClientHello sent to a plain listener (every Docker-style client tries
//! HTTPS first, even on 127.0.0.1) hangs until the client's handshake
//! timeout — ten seconds per skopeo call — and a client can stream header
//! bytes forever.  The edge accepts connections itself, answers a TLS hello
//! on a plain listener with a 400 at once, bounds idle time, caps the number
//! of connections, and relays the bytes to tiny_http on a loopback port that
//! only it connects to.  The real peer address travels through `PeerMap`.
//! This is also where the TLS terminator plugs in.
//!
//! Invariant: the backend port is bound to 127.0.0.1 and only the edge
//! connects to it; every relay thread ends when either side closes.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::framing::{Framer, Refusal};
use std::time::Instant;

/// Time limits of a connection (from `[server] header_timeout`,
/// `idle_timeout`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A request head must arrive whole within this of its first byte.
    pub head: Duration,
    /// Silence allowed between requests and inside a body.
    pub idle: Duration,
}
/// How long a new connection has to send its first byte.
const FIRST_BYTE: Duration = Duration::from_secs(30);
/// Relay buffers start small (most exchanges are small) and grow once a
/// read fills them, so big transfers take few syscalls and idle
/// connections cost little memory.
const RELAY_BUF_START: usize = 16 * 1024;
const RELAY_BUF_MAX: usize = 256 * 1024;

/// Backend-side local port of a relayed connection → the client's address.
#[derive(Clone, Default)]
pub struct PeerMap(Arc<Mutex<HashMap<u16, SocketAddr>>>);

impl PeerMap {
    /// The real client behind a backend connection from `relay`.
    pub fn lookup(&self, relay: SocketAddr) -> Option<SocketAddr> {
        self.0.lock().get(&relay.port()).copied()
    }
}

pub struct Edge {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Edge {
    pub fn start(
        listen: SocketAddr,
        backend: SocketAddr,
        peers: PeerMap,
        max_conns: usize,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
    ) -> io::Result<Edge> {
        Self::start_with(listen, backend, peers, max_conns, tls, Some(limits))
    }

    /// An edge that relays bytes without HTTP/1.1 framing or time limits
    /// (HTTP/2 for gRPC: long-lived streams, its own framing).
    pub fn start_raw(
        listen: SocketAddr,
        backend: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        _limits: Limits,
    ) -> io::Result<Edge> {
        Self::start_with(listen, backend, PeerMap::default(), 4096, tls, None)
    }

    fn start_with(
        listen: SocketAddr,
        backend: SocketAddr,
        peers: PeerMap,
        max_conns: usize,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Option<Limits>,
    ) -> io::Result<Edge> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(AtomicUsize::new(0));
        let stop2 = stop.clone();
        let acceptor = std::thread::Builder::new().name("http-edge".into()).spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let client = match conn {
                    Ok(c) => c,
                    Err(e) => {
                        log::warn!("accept failed err={e}");
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                if live.load(Ordering::SeqCst) >= max_conns {
                    log::warn!("connection refused: limit reached limit={max_conns}");
                    let _ = reply_and_close(client, 503, "too many connections");
                    continue;
                }
                live.fetch_add(1, Ordering::SeqCst);
                let (peers, live, tls) = (peers.clone(), live.clone(), tls.clone());
                let spawned = std::thread::Builder::new().name("http-relay".into()).spawn(move || {
                    if let Err(e) = relay(client, backend, &peers, tls, limits) {
                        log::debug!("relay ended err={e}");
                    }
                    live.fetch_sub(1, Ordering::SeqCst);
                });
                if let Err(e) = spawned {
                    log::warn!("cannot spawn relay thread err={e}");
                }
            }
        })?;
        Ok(Edge { addr, stop, acceptor: Some(acceptor) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; connections already relayed carry on to their end.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn reply_and_close(mut s: TcpStream, status: u16, msg: &str) -> io::Result<()> {
    // Read what the client sent so far, so closing does not reset the
    // connection before it has read the answer.
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut sink = [0u8; 4096];
    let _ = s.read(&mut sink);
    let reason = if status == 400 { "Bad Request" } else { "Service Unavailable" };
    let body = format!("{msg}\n");
    write!(
        s,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()?;
    let _ = s.shutdown(Shutdown::Both);
    Ok(())
}

fn relay(
    client: TcpStream,
    backend: SocketAddr,
    peers: &PeerMap,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Option<Limits>,
) -> io::Result<()> {
    let peer = client.peer_addr()?;
    client.set_nodelay(true)?;
    client.set_read_timeout(Some(FIRST_BYTE))?;
    let mut first = [0u8; 1];
    if client.peek(&mut first)? == 0 {
        return Ok(());
    }
    let is_tls_hello = first[0] == 0x16;
    let conn = match (tls, is_tls_hello) {
        (None, true) => {
            log::debug!("tls hello on plain listener peer={peer}");
            return reply_and_close(client, 400, "this mcr listener speaks plain HTTP, not TLS");
        }
        (Some(_), false) => {
            log::debug!("plain http on tls listener peer={peer}");
            return reply_and_close(client, 400, "this mcr listener speaks HTTPS (TLS 1.3)");
        }
        (Some(config), true) => Some(handshake(&client, config, peer)?),
        (None, false) => None,
    };
    let up = TcpStream::connect(backend)?;
    up.set_nodelay(true)?;
    let port = up.local_addr()?.port();
    peers.0.lock().insert(port, peer);
    let result = match conn {
        Some(conn) => pump_tls(client, conn, up, limits),
        None => pump_both(client, up, limits),
    };
    peers.0.lock().remove(&port);
    result
}

/// Completes the TLS 1.3 handshake within the first-byte timeout.
fn handshake(
    client: &TcpStream,
    config: Arc<rustls::ServerConfig>,
    peer: SocketAddr,
) -> io::Result<rustls::ServerConnection> {
    let mut conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let mut sock = client;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            log::info!("tls handshake failed peer={peer} err={e}");
            return Err(e);
        }
    }
    Ok(conn)
}

/// A TLS session shared by the two relay directions.  The lock covers
/// rustls state and writes to the client socket, so records go out in the
/// order rustls produced them.
struct Tls {
    conn: rustls::ServerConnection,
    sock: TcpStream,
}

impl Tls {
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock)?;
        }
        Ok(())
    }
}

fn pump_tls(
    client: TcpStream,
    conn: rustls::ServerConnection,
    up: TcpStream,
    limits: Option<Limits>,
) -> io::Result<()> {
    let mut c_read = client.try_clone()?;
    let tls = Arc::new(Mutex::new(Tls { conn, sock: client }));
    let (mut u_read, mut u_write) = (up.try_clone()?, up);
    let tls2 = tls.clone();
    let down = std::thread::Builder::new().name("http-relay-down".into()).spawn(move || {
        let r = pump_to_tls(&mut u_read, &tls2);
        let mut t = tls2.lock();
        t.conn.send_close_notify();
        let _ = t.flush();
        let _ = t.sock.shutdown(Shutdown::Write);
        r
    })?;
    let r = pump_from_tls(&mut c_read, &tls, &mut u_write, limits);
    if let Ok(Ending::Refused(status, msg)) = &r {
        // Answer first, under the session lock, then close both sides.
        {
            let mut t = tls.lock();
            let _ = t.conn.writer().write_all(&error_response(*status, msg));
            t.conn.send_close_notify();
            let _ = t.flush();
            let _ = t.sock.shutdown(Shutdown::Both);
        }
        let _ = u_write.shutdown(Shutdown::Both);
        let _ = down.join();
        return Ok(());
    }
    let _ = u_write.shutdown(Shutdown::Write);
    let _ = down.join();
    r.map(|_| ())
}

/// Client (TLS) → backend (plain), paced by the request framer.
fn pump_from_tls(
    from: &mut TcpStream,
    tls: &Mutex<Tls>,
    to: &mut TcpStream,
    limits: Option<Limits>,
) -> io::Result<Ending> {
    let mut buf = vec![0u8; RELAY_BUF_START];
    let mut plain = Vec::new();
    let mut pacing = Pacing::new(limits);
    // Application data may have arrived with the handshake's last flight.
    let mut closed = drain_plaintext(&mut tls.lock().conn, &mut plain)?;
    if let Err(end) = pacing.feed(&plain) {
        return Ok(end);
    }
    to.write_all(&plain)?;
    plain.clear();
    while !closed {
        let n = match pacing.read(from, &mut buf)? {
            Ok(n) => n,
            Err(end) => return Ok(end),
        };
        {
            let mut t = tls.lock();
            let mut rd = &buf[..n];
            while !rd.is_empty() {
                t.conn.read_tls(&mut rd)?;
                if let Err(e) = t.conn.process_new_packets() {
                    let _ = t.flush(); // the alert
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                closed |= drain_plaintext(&mut t.conn, &mut plain)?;
            }
            t.flush()?;
        }
        if let Err(end) = pacing.feed(&plain) {
            return Ok(end);
        }
        to.write_all(&plain)?;
        plain.clear();
        grow(&mut buf, n);
    }
    Ok(Ending::Closed)
}

/// Moves decrypted bytes into `plain`; true once the client sent close_notify.
fn drain_plaintext(conn: &mut rustls::ServerConnection, plain: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match conn.reader().read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(m) => plain.extend_from_slice(&chunk[..m]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Backend (plain) → client (TLS).
fn pump_to_tls(from: &mut TcpStream, tls: &Mutex<Tls>) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUF_START];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut t = tls.lock();
        for chunk in buf[..n].chunks(64 * 1024) {
            t.conn.writer().write_all(chunk)?;
            t.flush()?;
        }
        drop(t);
        grow(&mut buf, n);
    }
}

/// Copies client → backend on this thread and backend → client on another,
/// half-closing each direction as it ends.
fn pump_both(client: TcpStream, up: TcpStream, limits: Option<Limits>) -> io::Result<()> {
    let c_err = client.try_clone()?;
    let (mut c_read, mut c_write) = (client.try_clone()?, client);
    let (mut u_read, mut u_write) = (up.try_clone()?, up);
    let down = std::thread::Builder::new().name("http-relay-down".into()).spawn(move || {
        let _ = pump(&mut u_read, &mut c_write);
        let _ = c_write.shutdown(Shutdown::Write);
    })?;
    let r = pump_requests(&mut c_read, &mut u_write, limits);
    if let Ok(Ending::Refused(status, msg)) = &r {
        // Answer first (nothing else is in flight while a head is refused),
        // then close both sides.
        let mut c = c_err;
        let _ = c.write_all(&error_response(*status, msg));
        let _ = c.shutdown(Shutdown::Both);
        let _ = u_write.shutdown(Shutdown::Both);
        let _ = down.join();
        return Ok(());
    }
    let _ = u_write.shutdown(Shutdown::Write);
    let _ = down.join();
    r.map(|_| ())
}

/// How the client → backend direction ended.
enum Ending {
    Closed,
    Refused(u16, &'static str),
}

/// Per-connection pacing: the framer says where requests start and end;
/// a head must arrive within `limits.head` of its first byte, and silence
/// between requests or inside a body may last `limits.idle`.
/// Without limits (raw mode) it neither frames nor times out.
struct Pacing {
    framer: Framer,
    limits: Option<Limits>,
    head_started_at: Option<Instant>,
}

impl Pacing {
    fn new(limits: Option<Limits>) -> Pacing {
        Pacing { framer: Framer::default(), limits, head_started_at: None }
    }

    fn timeout(&self) -> Option<Duration> {
        let limits = self.limits?;
        Some(match self.head_started_at {
            Some(t) => limits.head.saturating_sub(t.elapsed()).max(Duration::from_millis(1)),
            None => limits.idle,
        })
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), Ending> {
        if self.limits.is_none() {
            return Ok(());
        }
        self.framer.feed(data).map_err(|r| match r {
            Refusal::HeadTooLarge => Ending::Refused(431, "request head larger than 64 KiB"),
            Refusal::Malformed(why) => Ending::Refused(400, why),
        })?;
        if !self.framer.head_started() {
            self.head_started_at = None;
        } else if self.head_started_at.is_none() {
            self.head_started_at = Some(Instant::now());
        }
        Ok(())
    }

    /// One read from the client under the current time limit: bytes, or
    /// how the stream ended (closed, or refused on a head timeout).
    fn read(&self, from: &mut TcpStream, buf: &mut [u8]) -> io::Result<Result<usize, Ending>> {
        from.set_read_timeout(self.timeout())?;
        loop {
            return match from.read(buf) {
                Ok(0) => Ok(Err(Ending::Closed)),
                Ok(n) => Ok(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    Ok(Err(self.on_timeout()))
                }
                Err(e) => Err(e),
            };
        }
    }

    fn on_timeout(&self) -> Ending {
        if self.framer.head_started() {
            Ending::Refused(408, "request head not received in time")
        } else {
            Ending::Closed
        }
    }
}

/// Client → backend (plain), paced by the request framer.
fn pump_requests(from: &mut TcpStream, to: &mut TcpStream, limits: Option<Limits>) -> io::Result<Ending> {
    let mut buf = vec![0u8; RELAY_BUF_START];
    let mut pacing = Pacing::new(limits);
    loop {
        let n = match pacing.read(from, &mut buf)? {
            Ok(n) => n,
            Err(end) => return Ok(end),
        };
        if let Err(end) = pacing.feed(&buf[..n]) {
            return Ok(end);
        }
        to.write_all(&buf[..n])?;
        grow(&mut buf, n);
    }
}

/// Relay buffers start small and grow once a read fills them.
fn grow(buf: &mut Vec<u8>, n: usize) {
    if n == buf.len() && buf.len() < RELAY_BUF_MAX {
        *buf = vec![0u8; RELAY_BUF_MAX];
    }
}

fn error_response(status: u16, msg: &str) -> Vec<u8> {
    let reason = match status {
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    let body = format!("{{\"error\":{{\"code\":\"BAD_REQUEST\",\"message\":\"{msg}\"}}}}");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn pump(from: &mut TcpStream, to: &mut TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUF_START];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        grow(&mut buf, n);
    }
}
