//! Request framing at the edge: follows HTTP/1.1 requests through the byte
//! stream (head, then a `Content-Length` or chunked body, then the next
//! head) so that the edge can bound what tiny_http would not: the size of a
//! request head, and how long a client may take to send it.
//!
//! Invariant: ambiguous framing (both `Content-Length` and chunked, several
//! differing lengths, malformed sizes) is refused, so the edge and tiny_http
//! can never disagree about where a request ends.

pub const MAX_HEAD: usize = 64 * 1024;
const MAX_CHUNK_LINE: usize = 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 431: the head grew past `MAX_HEAD`.
    HeadTooLarge,
    /// 400: framing we will not guess at.
    Malformed(&'static str),
}

#[derive(Debug)]
enum State {
    Head(Vec<u8>),
    Body(u64),
    ChunkLine(Vec<u8>),
    ChunkData(u64),
    ChunkEnd(u8),
    Trailers(Vec<u8>),
}

pub struct Framer {
    state: State,
}

impl Default for Framer {
    fn default() -> Self {
        Framer { state: State::Head(Vec::new()) }
    }
}

impl Framer {
    /// True while the framer waits for (more of) a request head.
    #[cfg(test)]
    pub fn in_head(&self) -> bool {
        matches!(self.state, State::Head(_))
    }

    /// True when a head has started but is not complete.
    pub fn head_started(&self) -> bool {
        matches!(&self.state, State::Head(b) if !b.is_empty())
    }

    /// Feeds bytes from the client; they may all be forwarded unless a
    /// refusal comes back.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Refusal> {
        while !data.is_empty() {
            match &mut self.state {
                State::Head(buf) => {
                    // Skip blank lines between requests (RFC 9112 §2.2).
                    if buf.is_empty() {
                        while let [b'\r' | b'\n', rest @ ..] = data {
                            data = rest;
                        }
                        if data.is_empty() {
                            break;
                        }
                    }
                    let start = buf.len().saturating_sub(3);
                    let take = data.len().min(MAX_HEAD + 1 - buf.len());
                    buf.extend_from_slice(&data[..take]);
                    match find(&buf[start..], b"\r\n\r\n") {
                        Some(pos) => {
                            let end = start + pos + 4;
                            let consumed = take - (buf.len() - end);
                            let head = std::mem::take(buf);
                            self.state = body_state(&head[..end])?;
                            data = &data[consumed..];
                        }
                        None if buf.len() > MAX_HEAD => return Err(Refusal::HeadTooLarge),
                        None => data = &data[take..],
                    }
                }
                State::Body(n) => {
                    let k = (*n).min(data.len() as u64) as usize;
                    *n -= k as u64;
                    data = &data[k..];
                    if *n == 0 {
                        self.state = State::Head(Vec::new());
                    }
                }
                State::ChunkLine(line) => {
                    let (byte, rest) = (data[0], &data[1..]);
                    data = rest;
                    line.push(byte);
                    if line.len() > MAX_CHUNK_LINE {
                        return Err(Refusal::Malformed("chunk size line too long"));
                    }
                    if line.ends_with(b"\r\n") {
                        // Hex digits only: no extensions, no spaces.  A chunk
                        // line can then never read as a request line to
                        // tiny_http, should a body go unread.
                        let hex = &line[..line.len() - 2];
                        if hex.is_empty() || hex.len() > 16 || !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(Refusal::Malformed("bad chunk size (extensions are not accepted)"));
                        }
                        let hex =
                            std::str::from_utf8(hex).map_err(|_| Refusal::Malformed("bad chunk size"))?;
                        let size =
                            u64::from_str_radix(hex, 16).map_err(|_| Refusal::Malformed("bad chunk size"))?;
                        self.state =
                            if size == 0 { State::Trailers(Vec::new()) } else { State::ChunkData(size) };
                    }
                }
                State::ChunkData(n) => {
                    let k = (*n).min(data.len() as u64) as usize;
                    *n -= k as u64;
                    data = &data[k..];
                    if *n == 0 {
                        self.state = State::ChunkEnd(0);
                    }
                }
                State::ChunkEnd(seen) => {
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    if data[0] != want {
                        return Err(Refusal::Malformed("chunk not followed by CRLF"));
                    }
                    data = &data[1..];
                    *seen += 1;
                    if *seen == 2 {
                        self.state = State::ChunkLine(Vec::new());
                    }
                }
                State::Trailers(buf) => {
                    buf.push(data[0]);
                    data = &data[1..];
                    if buf.len() > MAX_HEAD {
                        return Err(Refusal::HeadTooLarge);
                    }
                    if buf == b"\r\n" || buf.ends_with(b"\r\n\r\n") {
                        self.state = State::Head(Vec::new());
                    }
                }
            }
        }
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What follows a head: nothing, a counted body, or chunks.
fn body_state(head: &[u8]) -> Result<State, Refusal> {
    let text = std::str::from_utf8(head).map_err(|_| Refusal::Malformed("request head is not text"))?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value.parse().map_err(|_| Refusal::Malformed("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Refusal::Malformed("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(Refusal::Malformed("unsupported Transfer-Encoding"));
            }
            chunked = true;
        }
    }
    match (chunked, length) {
        (true, Some(_)) => Err(Refusal::Malformed("both Content-Length and chunked")),
        (true, None) => Ok(State::ChunkLine(Vec::new())),
        (false, Some(0)) | (false, None) => Ok(State::Head(Vec::new())),
        (false, Some(n)) => Ok(State::Body(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(parts: &[&[u8]]) -> Result<Framer, Refusal> {
        let mut f = Framer::default();
        for p in parts {
            f.feed(p)?;
        }
        Ok(f)
    }

    #[test]
    fn follows_requests_through_bodies_and_chunks() {
        let two = b"PUT /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
        assert!(feed_all(&[two]).unwrap().in_head());
        // Byte by byte gives the same.
        let mut f = Framer::default();
        for b in two.iter() {
            f.feed(std::slice::from_ref(b)).unwrap();
        }
        assert!(f.in_head() && !f.head_started());
        let chunked = b"PATCH /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\na\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        assert!(feed_all(&[chunked]).unwrap().in_head());
        let f = feed_all(&[b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"]).unwrap();
        assert!(!f.in_head(), "inside the body");
        let f = feed_all(&[b"GET / HTTP/1.1\r\nHost: x\r\n"]).unwrap();
        assert!(f.head_started());
    }

    #[test]
    fn refuses_what_it_will_not_guess() {
        let big = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(feed_all(&[b"GET / HTTP/1.1\r\nX: ", &big]).err(), Some(Refusal::HeadTooLarge));
        for bad in [
            &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nff;x / HTTP/1.1\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        ] {
            assert!(
                matches!(feed_all(&[bad]), Err(Refusal::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Same Content-Length twice is fine.
        assert!(feed_all(&[b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"]).is_ok());
    }
}
