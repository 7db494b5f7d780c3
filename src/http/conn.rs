//! One client connection, plain or TLS 1.3, with the bytes read ahead of
//! what has been consumed.  The reactor uses it non-blocking (heads, the
//! start of bodies); a worker uses it blocking, with socket timeouts.
//!
//! Invariant: bytes are never lost between the two modes: whatever was read
//! and not consumed stays in `Io::buf` (or in rustls' own plaintext buffer,
//! which every read drains first).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsConn>),
}

pub struct TlsConn {
    pub tls: rustls::ServerConnection,
    pub sock: TcpStream,
}

impl Conn {
    pub fn sock(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => &t.sock,
        }
    }

    /// Blocking read of plaintext (the socket's timeouts apply).
    pub fn read_blocking(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => rustls::Stream::new(&mut t.tls, &mut t.sock).read(buf),
        }
    }

    /// Blocking write of all of `data`.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(data),
            Conn::Tls(t) => {
                let mut stream = rustls::Stream::new(&mut t.tls, &mut t.sock);
                stream.write_all(data)?;
                stream.flush()
            }
        }
    }

    /// Non-blocking read of whatever is available, appended to `out` until
    /// it holds `cap` bytes.  Returns true when the peer closed its side.
    pub fn read_available(&mut self, out: &mut Vec<u8>, scratch: &mut [u8], cap: usize) -> io::Result<bool> {
        match self {
            Conn::Plain(s) => {
                while out.len() < cap {
                    let want = scratch.len().min(cap - out.len());
                    match s.read(&mut scratch[..want]) {
                        Ok(0) => return Ok(true),
                        Ok(n) => out.extend_from_slice(&scratch[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                        Err(e) => return Err(e),
                    }
                }
                Ok(false)
            }
            Conn::Tls(t) => t.read_available(out, scratch, cap),
        }
    }

    /// Non-blocking, best-effort write of a short message (a refusal), then
    /// the end of our side of the stream.
    pub fn send_final(&mut self, data: &[u8]) {
        match self {
            Conn::Plain(s) => {
                let _ = s.write_all(data);
            }
            Conn::Tls(t) => {
                let _ = t.tls.writer().write_all(data);
                t.tls.send_close_notify();
                let _ = t.flush_nonblocking();
            }
        }
        let _ = self.sock().shutdown(Shutdown::Write);
    }

    /// Ends our side after a last answer written by a worker.
    pub fn finish_writing(&mut self) {
        if let Conn::Tls(t) = self {
            t.tls.send_close_notify();
            let _ = t.flush_nonblocking();
        }
        let _ = self.sock().shutdown(Shutdown::Write);
    }
}

impl TlsConn {
    fn read_available(&mut self, out: &mut Vec<u8>, scratch: &mut [u8], cap: usize) -> io::Result<bool> {
        loop {
            // Plaintext rustls already holds comes first.
            while out.len() < cap {
                let want = scratch.len().min(cap - out.len());
                match self.tls.reader().read(&mut scratch[..want]) {
                    Ok(0) => return Ok(true),
                    Ok(n) => out.extend_from_slice(&scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if out.len() >= cap {
                return Ok(false);
            }
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => return Ok(true),
                Ok(_) => {
                    if let Err(e) = self.tls.process_new_packets() {
                        let _ = self.flush_nonblocking(); // the alert
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                    self.flush_nonblocking()?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes what rustls has queued (handshake flights, alerts, small
    /// answers) without blocking; what does not fit now goes on the next
    /// writable event.
    pub fn flush_nonblocking(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A connection and the bytes read from it that nobody has consumed yet.
pub struct Io {
    pub conn: Conn,
    pub buf: Vec<u8>,
    pub pos: usize,
}

impl Io {
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Drops consumed bytes; an emptied buffer gives its memory back, so a
    /// parked idle connection costs no buffer.
    pub fn compact(&mut self) {
        self.buf.drain(..self.pos);
        self.pos = 0;
        if self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }

    /// Reads more from the connection (blocking) into the buffer; 0 at EOF.
    pub fn fill(&mut self, max: usize) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + max, 0);
        let r = self.conn.read_blocking(&mut self.buf[start..]);
        let n = *r.as_ref().unwrap_or(&0);
        self.buf.truncate(start + n);
        r
    }
}
