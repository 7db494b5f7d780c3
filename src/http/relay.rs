//! The TLS 1.3 terminator in front of gRPC: grpcio listens on loopback and
//! this relay decrypts in front of it (HTTP/2 frames pass through as bytes;
//! long-lived streams, so no time limits).  One thread per direction of a
//! connection: gRPC clients are few and long-lived, unlike HTTP/1.1 ones,
//! which the reactor in `server` serves without per-connection threads.
//!
//! Invariant: the backend port is bound to 127.0.0.1 and only the relay
//! connects to it; every relay thread ends when either side closes.

use super::tls::TlsHolder;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a new connection has to complete its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(30);
/// Most connections relayed at once.
const MAX_CONNS: usize = 4096;
/// Relay buffers start small (most exchanges are small) and grow once a
/// read fills them, so big transfers take few syscalls and idle
/// connections cost little memory.
const RELAY_BUF_START: usize = 16 * 1024;
const RELAY_BUF_MAX: usize = 256 * 1024;

/// Local port of a relay → grpcio connection → the client it carries.
#[derive(Clone, Default)]
pub struct PeerMap(Arc<Mutex<HashMap<u16, SocketAddr>>>);

impl PeerMap {
    /// The client behind a connection grpcio sees as coming from `relay`.
    pub fn lookup(&self, relay: SocketAddr) -> Option<SocketAddr> {
        self.0.lock().get(&relay.port()).copied()
    }
}

pub struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    tls: TlsHolder,
}

impl Relay {
    pub fn start(
        listen: SocketAddr,
        backend: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        peers: PeerMap,
    ) -> io::Result<Relay> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(AtomicUsize::new(0));
        let tls = TlsHolder::new(tls);
        let (stop2, holder) = (stop.clone(), tls.clone());
        let acceptor = std::thread::Builder::new().name("grpc-tls".into()).spawn(move || {
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
                if live.load(Ordering::SeqCst) >= MAX_CONNS {
                    log::warn!("grpc connection refused: limit reached limit={MAX_CONNS}");
                    continue;
                }
                live.fetch_add(1, Ordering::SeqCst);
                let (live, config, peers) = (live.clone(), holder.current(), peers.clone());
                let spawned = std::thread::Builder::new().name("grpc-relay".into()).spawn(move || {
                    if let Err(e) = relay(client, backend, config, &peers) {
                        log::debug!("relay ended err={e}");
                    }
                    live.fetch_sub(1, Ordering::SeqCst);
                });
                if let Err(e) = spawned {
                    log::warn!("cannot spawn relay thread err={e}");
                }
            }
        })?;
        Ok(Relay { addr, stop, acceptor: Some(acceptor), tls })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// New connections use `config` from now on.
    pub fn reload_tls(&self, config: Arc<rustls::ServerConfig>) {
        self.tls.replace(config);
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

fn relay(
    client: TcpStream,
    backend: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    peers: &PeerMap,
) -> io::Result<()> {
    let peer = client.peer_addr()?;
    client.set_nodelay(true)?;
    client.set_read_timeout(Some(HANDSHAKE))?;
    let conn = handshake(&client, config, peer)?;
    client.set_read_timeout(None)?;
    let up = TcpStream::connect(backend)?;
    up.set_nodelay(true)?;
    let port = up.local_addr()?.port();
    peers.0.lock().insert(port, peer);
    let result = pump_tls(client, conn, up);
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

fn pump_tls(client: TcpStream, conn: rustls::ServerConnection, up: TcpStream) -> io::Result<()> {
    let mut c_read = client.try_clone()?;
    let tls = Arc::new(Mutex::new(Tls { conn, sock: client }));
    let (mut u_read, mut u_write) = (up.try_clone()?, up);
    let tls2 = tls.clone();
    let down = std::thread::Builder::new().name("grpc-relay-down".into()).spawn(move || {
        let r = pump_to_tls(&mut u_read, &tls2);
        let mut t = tls2.lock();
        t.conn.send_close_notify();
        let _ = t.flush();
        let _ = t.sock.shutdown(Shutdown::Write);
        r
    })?;
    let r = pump_from_tls(&mut c_read, &tls, &mut u_write);
    let _ = u_write.shutdown(Shutdown::Write);
    let _ = down.join();
    r
}

/// Client (TLS) → backend (plain).
fn pump_from_tls(from: &mut TcpStream, tls: &Mutex<Tls>, to: &mut TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUF_START];
    let mut plain = Vec::new();
    // Application data may have arrived with the handshake's last flight.
    let mut closed = drain_plaintext(&mut tls.lock().conn, &mut plain)?;
    to.write_all(&plain)?;
    plain.clear();
    while !closed {
        let n = match read_some(from, &mut buf)? {
            0 => return Ok(()),
            n => n,
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
        to.write_all(&plain)?;
        plain.clear();
        grow(&mut buf, n);
    }
    Ok(())
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

/// One read, retried when a signal interrupts it; 0 at the end.
fn read_some(from: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match from.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Backend (plain) → client (TLS).
fn pump_to_tls(from: &mut TcpStream, tls: &Mutex<Tls>) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUF_START];
    loop {
        let n = match read_some(from, &mut buf)? {
            0 => return Ok(()),
            n => n,
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

/// Relay buffers start small and grow once a read fills them.
fn grow(buf: &mut Vec<u8>, n: usize) {
    if n == buf.len() && buf.len() < RELAY_BUF_MAX {
        *buf = vec![0u8; RELAY_BUF_MAX];
    }
}
