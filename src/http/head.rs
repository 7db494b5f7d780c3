//! Request heads: tokenised by httparse, then held to RFC 9112's framing
//! rules before anything else sees them.
//!
//! Invariant: a head that is accepted has exactly one way to find where its
//! body ends (none, a plain-decimal `Content-Length`, or `chunked` as the
//! only transfer coding), one `Host` on HTTP/1.1, and was at most
//! `MAX_HEAD` bytes; everything else is refused with the status RFC 9112
//! names and the connection is closed.

/// Largest request head accepted (request line, headers, final CRLF).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header lines accepted in one head.
pub const MAX_HEADERS: usize = 100;

/// How the body that follows a head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

#[derive(Clone, Debug)]
pub struct Head {
    pub method: String,
    /// Origin-form target: path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
}

/// A head we will not serve: the status to answer and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: &'static str,
}

const fn refuse(status: u16, message: &'static str) -> Refusal {
    Refusal { status, message }
}

pub enum Parsed {
    /// More bytes are needed (and may still come: the buffer is under the cap).
    Partial,
    /// A head, and how many bytes of the buffer it took.
    Complete(Head, usize),
}

/// Parses the head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, Refusal> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
        Ok(httparse::Status::Complete(_)) => return Err(refuse(431, "request head larger than 64 KiB")),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(refuse(431, "request head larger than 64 KiB"))
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(refusal_for(e)),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(refuse(400, "malformed request line"));
    };
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| refuse(400, "header value is not UTF-8"))?;
        headers.push((h.name.to_string(), value.to_string()));
    }
    let head = check(method, target, minor, headers)?;
    Ok(Parsed::Complete(head, len))
}

fn refusal_for(e: httparse::Error) -> Refusal {
    match e {
        httparse::Error::Version => refuse(505, "only HTTP/1.0 and HTTP/1.1 are served on this port"),
        httparse::Error::TooManyHeaders => refuse(431, "too many header fields"),
        httparse::Error::HeaderName => refuse(400, "invalid header field name"),
        httparse::Error::HeaderValue => refuse(400, "invalid header field value"),
        httparse::Error::Token => refuse(400, "invalid request method"),
        httparse::Error::NewLine | httparse::Error::Status => refuse(400, "malformed request line"),
    }
}

fn check(method: &str, target: &str, minor: u8, headers: Vec<(String, String)>) -> Result<Head, Refusal> {
    let target = origin_form(target)?;
    let mut hosts = 0;
    let mut authorizations = 0;
    let mut length: Option<u64> = None;
    let mut codings: Vec<String> = Vec::new();
    let mut has_te = false;
    let mut close = minor == 0;
    let mut expect_continue = false;
    for (name, value) in &headers {
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !valid_host(value) {
                return Err(refuse(400, "invalid Host header"));
            }
        } else if name.eq_ignore_ascii_case("authorization") {
            authorizations += 1;
            if authorizations > 1 {
                return Err(refuse(400, "more than one Authorization header"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = decimal(value).ok_or(refuse(400, "Content-Length is not a plain decimal number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(refuse(400, "conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_te = true;
            codings.extend(
                value
                    .split(',')
                    .map(|c| c.trim_matches([' ', '\t']).to_ascii_lowercase())
                    .filter(|c| !c.is_empty()),
            );
        } else if name.eq_ignore_ascii_case("connection") {
            close |= value.split(',').any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case("close"));
        } else if name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(refuse(417, "only Expect: 100-continue is supported"));
            }
            expect_continue = minor == 1;
        }
    }
    match (minor, hosts) {
        (1, 0) => return Err(refuse(400, "HTTP/1.1 request without a Host header")),
        (_, 0 | 1) => {}
        _ => return Err(refuse(400, "more than one Host header")),
    }
    if has_te && codings.is_empty() {
        return Err(refuse(400, "empty Transfer-Encoding"));
    }
    let framing = match (codings.as_slice(), length) {
        ([], None) | ([], Some(0)) => Framing::None,
        ([], Some(n)) => Framing::Length(n),
        (_, Some(_)) => return Err(refuse(400, "both Content-Length and Transfer-Encoding")),
        _ if minor == 0 => return Err(refuse(400, "Transfer-Encoding in an HTTP/1.0 request")),
        (c, None) if c.iter().filter(|c| *c == "chunked").count() > 1 => {
            return Err(refuse(400, "chunked applied more than once"))
        }
        ([.., last], None) if last != "chunked" => {
            return Err(refuse(400, "chunked must be the final transfer coding"))
        }
        ([_], None) => Framing::Chunked,
        (_, None) => return Err(refuse(501, "transfer codings other than chunked are not supported")),
    };
    Ok(Head {
        method: method.to_string(),
        target,
        headers,
        framing,
        keep_alive: !close,
        expect_continue: expect_continue && framing != Framing::None,
    })
}

/// `/path?query` as sent; an absolute-form target (`http://host/path`)
/// is reduced to its path, as RFC 9112 §3.2.2 asks servers to accept.
fn origin_form(target: &str) -> Result<String, Refusal> {
    if target.starts_with('/') {
        return Ok(target.to_string());
    }
    for scheme in ["http://", "https://"] {
        // Bytes, not `str` slicing: the target may hold multi-byte UTF-8.
        let prefix = target.as_bytes().get(..scheme.len());
        if target.len() > scheme.len() && prefix.is_some_and(|p| p.eq_ignore_ascii_case(scheme.as_bytes())) {
            let rest = &target[scheme.len()..];
            return Ok(rest.find(['/', '?']).map_or("/".to_string(), |i| match &rest[i..] {
                q if q.starts_with('?') => format!("/{q}"),
                p => p.to_string(),
            }));
        }
    }
    if target == "*" {
        return Ok(target.to_string());
    }
    Err(refuse(400, "request target must be a path"))
}

/// `host[:port]`, a bracketed IPv6 literal allowed; no userinfo, paths or
/// separators that could change a URL built from it.
fn valid_host(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 255
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
}

/// `1*DIGIT`, at most 19 digits so the value always fits a `u64`.
fn decimal(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(raw: &str) -> Head {
        match parse(raw.as_bytes()) {
            Ok(Parsed::Complete(h, n)) => {
                assert_eq!(n, raw.len());
                h
            }
            Ok(Parsed::Partial) => panic!("partial: {raw:?}"),
            Err(r) => panic!("refused {r:?}: {raw:?}"),
        }
    }

    #[track_caller]
    fn refused(raw: &[u8], status: u16) {
        match parse(raw) {
            Err(r) => assert_eq!(r.status, status, "{r:?} for {:?}", String::from_utf8_lossy(raw)),
            Ok(_) => panic!("accepted: {:?}", String::from_utf8_lossy(raw)),
        }
    }

    #[test]
    fn accepts_well_framed_heads() {
        let h = ok("GET /v2/?n=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            (h.method.as_str(), h.target.as_str(), h.framing, h.keep_alive),
            ("GET", "/v2/?n=1", Framing::None, true)
        );
        let h = ok("PUT /a HTTP/1.1\r\nHost: x:5000\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(5));
        let h = ok("PATCH /a HTTP/1.1\r\nHost: [::1]:5000\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!((h.framing, h.expect_continue), (Framing::Chunked, true));
        let h = ok("GET / HTTP/1.0\r\n\r\n");
        assert!(!h.keep_alive, "HTTP/1.0 closes");
        let h = ok("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n");
        assert!(!h.keep_alive);
        assert_eq!(ok("GET http://x:1/v2/?a HTTP/1.1\r\nHost: x\r\n\r\n").target, "/v2/?a");
        assert_eq!(ok("GET http://x HTTP/1.1\r\nHost: x\r\n\r\n").target, "/");
        assert_eq!(ok("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n").method, "GET");
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(Parsed::Partial)));
    }

    #[test]
    fn refuses_what_rfc_9112_refuses() {
        for (raw, status) in [
            (&b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"[..], 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic a\r\nAuthorization: Basic b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: evil.example/x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            (b"GET / HTTP/9.9\r\n\r\n", 505),
            (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"GET nope HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"\x00\x01\x02 nonsense\r\n\r\n", 400),
            // Multi-byte UTF-8 across the length of "http://": no slicing panic.
            ("GET abcdef\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n".as_bytes(), 400),
            ("OPTIONS abcdefg\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n".as_bytes(), 400),
            ("GET http\u{e9}://x/ HTTP/1.1\r\nHost: x\r\n\r\n".as_bytes(), 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\nContent-Length: 3\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417),
        ] {
            refused(raw, status);
        }
        // The HTTP/2 preface is refused from its first line, without waiting.
        refused(b"PRI * HTTP/2.0\r\n", 505);
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 1, b'a');
        refused(&big, 431);
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: 1\r\n")).collect();
        refused(format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(), 431);
    }
}

#[cfg(test)]
mod fuzz {
    //! Random and mutated heads and chunked bodies through the parsers: no
    //! panic, nothing accepted past the caps, nothing decoded that was not
    //! in the input.
    use super::*;
    use crate::http::body::ChunkDecoder;
    use proptest::prelude::*;

    const SEED: &[u8] = b"PATCH /v2/a/b/blobs/uploads/x?digest=sha256:00 HTTP/1.1\r\nHost: reg:5000\r\nTransfer-Encoding: chunked\r\nContent-Length: 12\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";

    fn check_head(buf: &[u8]) {
        match parse(buf) {
            Ok(Parsed::Complete(h, n)) => {
                assert!(n <= buf.len() && n <= MAX_HEAD);
                assert!(h.target.starts_with('/') || h.target == "*");
                assert!(h.headers.len() <= MAX_HEADERS);
            }
            Ok(Parsed::Partial) => assert!(buf.len() < MAX_HEAD),
            Err(r) => assert!([400, 417, 431, 501, 505].contains(&r.status), "{r:?}"),
        }
    }

    fn check_chunks(input: &[u8], max: usize) {
        let mut dec = ChunkDecoder::default();
        let mut rest = input;
        let mut data = 0;
        while !rest.is_empty() && !dec.is_done() {
            let Ok(step) = dec.step(rest, max) else { return };
            assert!(step.consumed <= rest.len() && step.data.end <= step.consumed);
            assert!(step.data.len() <= max);
            data += step.data.len();
            if step.consumed == 0 {
                break;
            }
            rest = &rest[step.consumed..];
        }
        assert!(data <= input.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_heads(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
            check_head(&buf);
        }

        #[test]
        fn mutated_heads(edits in proptest::collection::vec((0..SEED.len(), any::<u8>(), 0u8..3), 1..8)) {
            let mut buf = SEED.to_vec();
            for (at, byte, op) in edits {
                let at = at.min(buf.len().saturating_sub(1));
                match op {
                    0 => buf[at] = byte,
                    1 => buf.insert(at, byte),
                    _ => { buf.remove(at); }
                }
            }
            check_head(&buf);
        }

        #[test]
        fn random_targets(target in "[^ \r\n]{1,40}") {
            check_head(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }

        #[test]
        fn random_chunked_bodies(buf in proptest::collection::vec(
            prop_oneof![Just(b'0'), Just(b'a'), Just(b'F'), Just(b'\r'), Just(b'\n'), Just(b';'), Just(b' '), any::<u8>()],
            0..256,
        ), max in 1usize..64) {
            check_chunks(&buf, max);
        }
    }
}
