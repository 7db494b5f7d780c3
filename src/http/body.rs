//! Request bodies: `Content-Length` and chunked framing decoded as the
//! handler reads, under a minimum transfer rate.
//!
//! Invariant: a body that ends before its framing says it is complete (a
//! short `Content-Length` body, a chunked body without its last chunk) is an
//! error to the reader, never a clean end of file; nothing the client sends
//! sizes an allocation (chunk sizes are counters, lines are capped).

use super::conn::Io;
use super::head::Framing;
use std::io::{self, Read};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Longest chunk-size line accepted (size, extensions, CRLF).
const MAX_CHUNK_LINE: usize = 1024;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 8 * 1024;
/// How long a worker waits for the rest of a body nobody read.
const DRAIN_WAIT: Duration = Duration::from_millis(500);
/// How much a worker reads from the socket at once while decoding chunks.
const READ_AHEAD: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line; `len` bytes of it so far, `cr` after a CR.
    Size {
        len: usize,
        hex: u64,
        digits: u8,
        /// Whitespace came after the size: only more of it, `;` or CR may follow.
        ws: bool,
        in_ext: bool,
        cr: bool,
    },
    Data(u64),
    /// The CRLF after chunk data; how many of its two bytes were seen.
    DataEnd(u8),
    /// Trailer lines after the last chunk: bytes so far, bytes on this line.
    Trailers {
        total: usize,
        line: usize,
        cr: bool,
    },
    Done,
}

/// The chunked transfer coding as a byte-at-a-time state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkDecoder(Chunk);

/// One decoding step: bytes of the input consumed, and the part of the
/// input (within the consumed bytes) that is body data.
pub struct Step {
    pub consumed: usize,
    pub data: Range<usize>,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        ChunkDecoder(Chunk::Size { len: 0, hex: 0, digits: 0, ws: false, in_ext: false, cr: false })
    }
}

impl ChunkDecoder {
    pub fn is_done(&self) -> bool {
        self.0 == Chunk::Done
    }

    /// Decodes from `input` until it yields body data (at most `max_data`
    /// bytes), runs out of input, or reaches the end of the body.
    pub fn step(&mut self, input: &[u8], max_data: usize) -> Result<Step, &'static str> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match &mut self.0 {
                Chunk::Size { len, hex, digits, ws, in_ext, cr } => {
                    *len += 1;
                    if *len > MAX_CHUNK_LINE {
                        return Err("chunk-size line too long");
                    }
                    i += 1;
                    match (b, *cr) {
                        (b'\n', true) if *digits == 0 => return Err("chunk size missing"),
                        (b'\n', true) => {
                            self.0 = if *hex == 0 {
                                Chunk::Trailers { total: 0, line: 0, cr: false }
                            } else {
                                Chunk::Data(*hex)
                            };
                        }
                        (_, true) => return Err("bare CR in chunk-size line"),
                        (b'\r', false) => *cr = true,
                        (b'\n', false) => return Err("chunk-size line must end with CRLF"),
                        (_, false) if *in_ext => {
                            if b.is_ascii_control() && b != b'\t' {
                                return Err("control byte in chunk extension");
                            }
                        }
                        (b';', false) if *digits > 0 => *in_ext = true,
                        // Whitespace may follow the size (before `;`), never split it.
                        (b' ' | b'\t', false) if *digits > 0 => *ws = true,
                        (_, false) if *ws => return Err("whitespace inside chunk size"),
                        (_, false) => {
                            let d = (b as char).to_digit(16).ok_or("chunk size is not hexadecimal")?;
                            if *digits == 16 {
                                return Err("chunk size too large");
                            }
                            *digits += 1;
                            *hex = (*hex << 4) | u64::from(d);
                        }
                    }
                }
                Chunk::Data(n) => {
                    let k = (*n).min((input.len() - i) as u64).min(max_data as u64) as usize;
                    *n -= k as u64;
                    if *n == 0 {
                        self.0 = Chunk::DataEnd(0);
                    }
                    return Ok(Step { consumed: i + k, data: i..i + k });
                }
                Chunk::DataEnd(seen) => {
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    if b != want {
                        return Err("chunk data not followed by CRLF");
                    }
                    i += 1;
                    *seen += 1;
                    if *seen == 2 {
                        self.0 = ChunkDecoder::default().0;
                    }
                }
                Chunk::Trailers { total, line, cr } => {
                    i += 1;
                    *total += 1;
                    if *total > MAX_TRAILERS {
                        return Err("chunked trailers too large");
                    }
                    match (b, *cr) {
                        (b'\n', true) if *line == 0 => {
                            self.0 = Chunk::Done;
                            return Ok(Step { consumed: i, data: i..i });
                        }
                        (b'\n', true) => {
                            *line = 0;
                            *cr = false;
                        }
                        (_, true) | (b'\n', false) => return Err("trailer line must end with CRLF"),
                        (b'\r', false) => *cr = true,
                        (_, false) => *line += 1,
                    }
                }
                Chunk::Done => break,
            }
        }
        Ok(Step { consumed: i, data: i..i })
    }
}

/// Minimum transfer rate of a body: after `grace`, the bytes received must
/// keep up with `min_rate` bytes per second since the body started.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub grace: Duration,
    pub min_rate: u64,
    pub idle: Duration,
}

impl Pace {
    /// Whether `bytes` received in `elapsed` is too slow.
    pub fn too_slow(&self, bytes: u64, elapsed: Duration) -> bool {
        elapsed > self.grace && (bytes as u128) < (self.min_rate as u128) * elapsed.as_millis() / 1000
    }

    /// How long the next read may wait: until the rate would fall behind,
    /// and never longer than the idle limit.
    fn wait(&self, bytes: u64, elapsed: Duration) -> Duration {
        let owed =
            (bytes.saturating_mul(1000)).checked_div(self.min_rate).map_or(self.idle, Duration::from_millis);
        let until = self.grace.max(owed).saturating_sub(elapsed);
        until.clamp(Duration::from_millis(100), self.idle)
    }
}

enum Left {
    Length(u64),
    Chunked(ChunkDecoder),
    Done,
}

/// The body of one request, read from the connection as the handler asks.
pub struct BodyReader<'a> {
    io: &'a mut Io,
    left: Left,
    send_continue: bool,
    started: Option<Instant>,
    /// Bytes taken from the connection for this body, framing included.
    received: u64,
    broken: bool,
    pace: Pace,
    /// Set while draining an unread body: the worker waits no longer.
    deadline: Option<Instant>,
}

fn err(kind: io::ErrorKind, msg: &'static str) -> io::Error {
    io::Error::new(kind, msg)
}

impl<'a> BodyReader<'a> {
    pub fn new(io: &'a mut Io, framing: Framing, expect_continue: bool, pace: Pace) -> BodyReader<'a> {
        let left = match framing {
            Framing::None | Framing::Length(0) => Left::Done,
            Framing::Length(n) => Left::Length(n),
            Framing::Chunked => Left::Chunked(ChunkDecoder::default()),
        };
        BodyReader {
            io,
            left,
            send_continue: expect_continue,
            started: None,
            received: 0,
            broken: false,
            pace,
            deadline: None,
        }
    }

    /// True once the whole body has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.left, Left::Done)
    }

    /// True if the client still waits for `100 Continue` and so has sent
    /// nothing of the body.
    pub fn untouched_expecting_continue(&self) -> bool {
        self.send_continue && self.started.is_none()
    }

    /// After the handler: reads what is left of the body if that is at most
    /// `limit` bytes and arrives promptly, so the connection can carry the
    /// next request.  Returns whether it can.
    pub fn finish(&mut self, limit: u64) -> bool {
        if self.broken || self.untouched_expecting_continue() {
            return false;
        }
        if let Left::Length(n) = self.left {
            if n > limit {
                return false;
            }
        }
        // The client gets a moment, not the idle timeout: a worker waits here.
        self.deadline = Some(Instant::now() + DRAIN_WAIT);
        let mut sink = [0u8; 16 * 1024];
        let mut drained = 0u64;
        while !self.is_done() {
            match self.read(&mut sink) {
                Ok(0) => break,
                Ok(n) => drained += n as u64,
                Err(_) => return false,
            }
            if drained > limit {
                return false;
            }
        }
        self.is_done()
    }

    /// How long the next socket read may wait: the pace's allowance, cut
    /// to the drain deadline when there is one; an error once either ran out.
    fn next_wait(&self, started: Instant) -> io::Result<std::time::Duration> {
        let elapsed = started.elapsed();
        if self.pace.too_slow(self.received, elapsed) {
            return Err(err(io::ErrorKind::TimedOut, "request body arrived below the minimum rate"));
        }
        let wait = self.pace.wait(self.received, elapsed);
        match self.deadline {
            Some(d) if Instant::now() >= d => {
                Err(err(io::ErrorKind::TimedOut, "request body not finished in time"))
            }
            Some(d) => Ok(wait.min(d - Instant::now()).max(Duration::from_millis(1))),
            None => Ok(wait),
        }
    }

    fn read_inner(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let started = *self.started.get_or_insert_with(Instant::now);
        match &self.left {
            Left::Done => Ok(0),
            Left::Length(n) => {
                let n = *n;
                let want = n.min(out.len() as u64) as usize;
                let got = if !self.io.pending().is_empty() {
                    let k = want.min(self.io.pending().len());
                    out[..k].copy_from_slice(&self.io.pending()[..k]);
                    self.io.consume(k);
                    k
                } else {
                    let wait = self.next_wait(started)?;
                    self.io.conn.sock().set_read_timeout(Some(wait))?;
                    match self.io.conn.read_blocking(&mut out[..want]) {
                        Ok(0) => {
                            return Err(err(
                                io::ErrorKind::UnexpectedEof,
                                "request body ended before its Content-Length",
                            ))
                        }
                        Ok(k) => k,
                        Err(e) => return Err(timeout_or(e)),
                    }
                };
                self.received += got as u64;
                self.left = match n - got as u64 {
                    0 => Left::Done,
                    rest => Left::Length(rest),
                };
                Ok(got)
            }
            Left::Chunked(_) => loop {
                // Every byte on the wire counts toward the rate, framing and
                // trailers included, so a trickle of them cannot hold a worker.
                if self.io.pending().is_empty() {
                    let wait = self.next_wait(started)?;
                    self.io.conn.sock().set_read_timeout(Some(wait))?;
                    match self.io.fill(READ_AHEAD) {
                        Ok(0) => {
                            return Err(err(
                                io::ErrorKind::UnexpectedEof,
                                "chunked request body ended before its last chunk",
                            ))
                        }
                        Ok(_) => {}
                        Err(e) => return Err(timeout_or(e)),
                    }
                }
                let Left::Chunked(dec) = &mut self.left else { unreachable!("chunked body") };
                let step =
                    dec.step(self.io.pending(), out.len()).map_err(|m| err(io::ErrorKind::InvalidData, m))?;
                let data = step.data.len();
                out[..data].copy_from_slice(&self.io.pending()[step.data]);
                self.io.consume(step.consumed);
                self.received += step.consumed as u64;
                if dec.is_done() {
                    self.left = Left::Done;
                    return Ok(data);
                }
                if data > 0 {
                    return Ok(data);
                }
            },
        }
    }
}

fn timeout_or(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            err(io::ErrorKind::TimedOut, "request body stalled or arrived below the minimum rate")
        }
        _ => e,
    }
}

impl Read for BodyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.is_done() {
            return Ok(0);
        }
        if self.broken {
            return Err(err(io::ErrorKind::Other, "request body unreadable after an earlier error"));
        }
        if self.untouched_expecting_continue() {
            if let Err(e) = self.io.conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n") {
                self.broken = true;
                return Err(e);
            }
        }
        let result = self.read_inner(out);
        if result.is_err() {
            self.broken = true;
        }
        result
    }
}

/// Scans a chunked body in the reactor: where it ends, once it has all
/// arrived.  Returns the body's length when complete.
pub fn scan_chunked(
    dec: &mut ChunkDecoder,
    scanned: &mut usize,
    body: &[u8],
) -> Result<Option<usize>, &'static str> {
    while *scanned < body.len() && !dec.is_done() {
        let step = dec.step(&body[*scanned..], usize::MAX)?;
        *scanned += step.consumed;
    }
    Ok(dec.is_done().then_some(*scanned))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a whole chunked body fed in pieces of `piece` bytes.
    fn decode(body: &[u8], piece: usize) -> Result<(Vec<u8>, usize), &'static str> {
        let mut dec = ChunkDecoder::default();
        let mut out = Vec::new();
        let mut at = 0;
        while at < body.len() && !dec.is_done() {
            let end = (at + piece).min(body.len());
            let mut part = &body[at..end];
            while !part.is_empty() && !dec.is_done() {
                let s = dec.step(part, 3)?;
                out.extend_from_slice(&part[s.data]);
                part = &part[s.consumed..];
                at += s.consumed;
            }
        }
        if !dec.is_done() {
            return Err("incomplete");
        }
        Ok((out, at))
    }

    #[test]
    fn decodes_chunks_in_any_split() {
        let body = b"5\r\nhello\r\nA;name=\"v\"\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET /next";
        for piece in 1..body.len() {
            let (data, used) = decode(body, piece).unwrap();
            assert_eq!(data, b"hello0123456789");
            assert_eq!(&body[used..], b"GET /next", "stops at the end of the body");
        }
        assert_eq!(decode(b"0\r\n\r\n", 1).unwrap().0, b"");
        assert_eq!(decode(b"ffffffffffffffff\r\nab", 64), Err("incomplete"));
    }

    #[test]
    fn refuses_malformed_chunks() {
        for bad in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"1ffffffffffffffff\r\n",
            b"5\r\rhello",
            b"0\r\nX\n\r\n",
            b";ext\r\n",
            b"1 0\r\n",
            b"1\t0\r\n",
        ] {
            assert!(decode(bad, 64).is_err_and(|e| e != "incomplete"), "{}", String::from_utf8_lossy(bad));
        }
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE));
        assert_eq!(decode(&long, 64), Err("chunk-size line too long"));
    }

    #[test]
    fn pace_allows_grace_then_needs_the_rate() {
        let p = Pace { grace: Duration::from_secs(10), min_rate: 1000, idle: Duration::from_secs(120) };
        assert!(!p.too_slow(0, Duration::from_secs(9)));
        assert!(p.too_slow(5_000, Duration::from_secs(11)));
        assert!(!p.too_slow(20_000, Duration::from_secs(11)));
        assert_eq!(p.wait(0, Duration::ZERO), Duration::from_secs(10));
        assert_eq!(p.wait(50_000, Duration::from_secs(20)), Duration::from_secs(30));
    }
}
