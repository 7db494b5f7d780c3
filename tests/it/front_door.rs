//! The HTTP front door against the real binary, as a hostile or busy client
//! meets it: absurd lengths, framing that must be refused, bodies cut
//! short, slow and idle clients, many keep-alive clients, connection caps,
//! and a certificate reload.

use crate::support::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sends raw bytes on a new connection and reads until the server closes
/// (or `wait` passes).
fn exchange(srv: &Server, raw: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(raw).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads one response (head and `Content-Length` body) from a keep-alive
/// connection; returns the status.
fn read_one(s: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let len: usize = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn threads(srv: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", srv.pid())).unwrap().count()
}

fn healthy(srv: &Server) {
    let started = Instant::now();
    assert_eq!(srv.http("GET", "/v2/", &[], b"").status, 200, "server still answers");
    assert!(started.elapsed() < Duration::from_secs(2), "and promptly: {:?}", started.elapsed());
}

#[test]
fn absurd_content_lengths_cost_nothing_and_never_kill_the_server() {
    let srv = Server::start();
    let auth = srv.admin_auth();
    let huge = "9223372036854775807";
    // Unauthenticated, on a route with a small limit: answered at once,
    // without waiting for (or allocating) the body.
    let started = Instant::now();
    let text = exchange(
        &srv,
        format!("PUT /v2/a/manifests/x HTTP/1.1\r\nHost: x\r\nContent-Length: {huge}\r\n\r\n").as_bytes(),
        Duration::from_secs(10),
    );
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("Connection: close"), "the unread body ends the connection: {text}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Authenticated: 413 before a byte of the body is read.
    for (path, code) in [
        ("/v2/a/manifests/x", "MANIFEST_INVALID"),
        ("/v2/token", "SIZE_INVALID"),
        ("/v1/policy/rules", "TOO_LARGE"),
    ] {
        let text = exchange(
            &srv,
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {huge}\r\n\r\n"
            )
            .as_bytes(),
            Duration::from_secs(10),
        );
        let status = if path == "/v2/a/manifests/x" { "405" } else { "413" };
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{path}: {text}");
        if status == "413" {
            assert!(text.contains(code), "{path}: {text}");
        }
    }
    let text = exchange(
        &srv,
        format!("PUT /v2/a/manifests/x HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {huge}\r\n\r\n").as_bytes(),
        Duration::from_secs(10),
    );
    assert!(text.starts_with("HTTP/1.1 413") && text.contains("MANIFEST_INVALID"), "{text}");
    // On an upload route, unauthenticated, with the start of a body: 401,
    // and the rest of the "body" is never drained into memory.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: {huge}\r\n\r\n").unwrap();
    let _ = s.write_all(&vec![b'x'; 100 * 1024]);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 401"), "{}", String::from_utf8_lossy(&buf));
    // u64::MAX and beyond are not numbers we accept.
    for len in ["18446744073709551615", "18446744073709551616", "99999999999999999999999"] {
        let text = exchange(
            &srv,
            format!("POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n")
                .as_bytes(),
            Duration::from_secs(10),
        );
        assert!(text.starts_with("HTTP/1.1 400"), "{len}: {text}");
    }
    healthy(&srv);
    assert!(srv.peak_rss_kib() < 200 * 1024, "peak RSS {} KiB", srv.peak_rss_kib());
    assert!(!srv.log().contains("panicked"));
}

#[test]
fn framing_that_rfc_9112_refuses_is_refused_and_the_connection_closed() {
    let srv = Server::start();
    let started = Instant::now();
    for (raw, status) in [
        (&b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"[..], "400"),
        (b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", "400"),
        (b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"),
        (b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "400"),
        (b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", "400"),
        (b"GET /v2/ HTTP/1.1\r\n\r\n", "400"),
        (b"GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
        (b"GET /v2/ HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", "400"),
        (b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", "400"),
        (b"GET /v2/ HTTP/2.0\r\nHost: x\r\n\r\n", "505"),
        // The HTTP/2 connection preface, as a client with prior knowledge sends it.
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00", "505"),
        (b"\x16\x03\x01\x00\xf1\x01\x00\x00\xed\x03\x03", "400"),
    ] {
        let text = exchange(&srv, raw, Duration::from_secs(10));
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{}: {text}", String::from_utf8_lossy(raw));
        assert!(text.contains("Connection: close"), "{text}");
        // On /v2, even the transport's own refusals are OCI error JSON.
        if raw.starts_with(b"GET /v2/") || raw.starts_with(b"POST /v2/") {
            assert!(text.contains(r#"{"errors":[{"code":"#), "OCI error JSON: {text}");
        }
    }
    let text =
        exchange(&srv, b"GET /v1/status HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Duration::from_secs(10));
    assert!(text.starts_with("HTTP/1.1 400") && text.contains(r#"{"error":{"#), "JSON elsewhere: {text}");
    assert!(started.elapsed() < Duration::from_secs(5), "each refused at once: {:?}", started.elapsed());
    // Pipelined requests after a refused one are never served.
    let text = exchange(
        &srv,
        b"GET /v2/ HTTP/1.1\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(text.starts_with("HTTP/1.1 400") && !text.contains("HTTP/1.1 401"), "{text}");
    healthy(&srv);
}

#[test]
fn a_body_cut_short_never_reaches_the_service_as_complete() {
    let srv = Server::start();
    let auth = srv.admin_auth();
    let start = |srv: &Server| {
        srv.http("POST", "/v2/cut/blobs/uploads/", &[], b"").header("Location").unwrap().to_string()
    };
    let offset = |srv: &Server, loc: &str| srv.http("GET", loc, &[], b"").header("Range").map(str::to_string);
    for body_len in [5usize, 200 * 1024] {
        // A chunked PATCH whose last chunk never comes: the client half-closes.
        let loc = start(&srv);
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n{body_len:x}\r\n")
            .unwrap();
        s.write_all(&bytes(3, body_len)).unwrap();
        s.write_all(b"\r\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(!text.contains(" 202 ") && !text.contains(" 201 "), "{body_len}: {text}");
        let range = offset(&srv, &loc);
        assert!(
            range.is_none() || range.as_deref() == Some("0-0"),
            "{body_len}: nothing appended, got {range:?}"
        );
        // The same with Content-Length: the body stops short.
        let loc = start(&srv);
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
            body_len + 10
        )
        .unwrap();
        s.write_all(&bytes(3, body_len)).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(!text.contains(" 202 "), "{body_len}: {text}");
        let range = offset(&srv, &loc);
        assert!(
            range.is_none() || range.as_deref() == Some("0-0"),
            "{body_len}: nothing appended, got {range:?}"
        );
    }
    healthy(&srv);
}

#[test]
fn idle_keep_alive_connections_cost_no_threads() {
    let srv = Server::start();
    let auth = srv.admin_auth();
    healthy(&srv);
    let before = threads(&srv);
    let mut conns = Vec::new();
    for _ in 0..256 {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n").unwrap();
        assert_eq!(read_one(&mut s), 200);
        conns.push(s);
    }
    let after = threads(&srv);
    assert!(after <= before + 8, "256 idle keep-alive connections added {} threads", after - before);
    // They are all still usable.
    for s in conns.iter_mut().step_by(16) {
        write!(s, "GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n").unwrap();
        assert_eq!(read_one(s), 200);
    }
}

#[test]
fn slow_clients_cannot_hold_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_with(
        &dir.path().join("data"),
        &[],
        &[("MCR_SERVER_WORKERS", "4"), ("MCR_SERVER_BODY_GRACE", "2s"), ("MCR_SERVER_MIN_BODY_RATE", "1024")],
    );
    let auth = srv.admin_auth();
    let loc = srv.http("POST", "/v2/slow/blobs/uploads/", &[], b"").header("Location").unwrap().to_string();
    // Four times as many tricklers as workers, each sending an upload body
    // (or a head) at a few bytes a second.
    let mut slow = Vec::new();
    for i in 0..16 {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        if i % 4 == 0 {
            s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
        } else {
            write!(
                s,
                "PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 1048576\r\n\r\n"
            )
            .unwrap();
        }
        slow.push(s);
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        for s in &mut slow {
            let _ = s.write_all(b"a");
        }
        healthy(&srv);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Past the grace period the bodies are below the minimum rate: 408 and closed.
    for (i, s) in slow.iter_mut().enumerate().filter(|(i, _)| i % 4 != 0) {
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 408"), "trickler {i}: {text}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(srv.http("GET", &loc, &[], b"").status == 204, "the session is untouched");
    healthy(&srv);
}

#[test]
fn many_keep_alive_clients_are_all_served_without_stalls() {
    let srv = Server::start();
    let auth = srv.admin_auth();
    srv.push_image("fair/img", "v1", 5);
    let worst = std::sync::Mutex::new(Duration::ZERO);
    std::thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| {
                let mut s = TcpStream::connect(srv.addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                for _ in 0..20 {
                    let t = Instant::now();
                    write!(
                        s,
                        "GET /v2/fair/img/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
                    )
                    .unwrap();
                    assert_eq!(read_one(&mut s), 200);
                    let mut w = worst.lock().unwrap();
                    *w = (*w).max(t.elapsed());
                }
            });
        }
    });
    let worst = *worst.lock().unwrap();
    assert!(worst < Duration::from_secs(2), "slowest answer took {worst:?}");
}

#[test]
fn connections_are_capped_per_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let srv =
        Server::start_with(&dir.path().join("data"), &[], &[("MCR_SERVER_MAX_CONNECTIONS_PER_PEER", "8")]);
    let held: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(srv.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let text = exchange(&srv, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", Duration::from_secs(5));
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    healthy(&srv);
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_connections() {
    let (a, b) = (Certs::new(), Certs::new());
    let live = tempfile::tempdir().unwrap();
    let (cert, key) = (live.path().join("tls.crt"), live.path().join("tls.key"));
    std::fs::copy(a.path("server.crt"), &cert).unwrap();
    std::fs::copy(a.path("server.key"), &key).unwrap();
    let srv = Server::start_args(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let trusts = |certs: &Certs| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", &certs.path("ca.crt")])
            .arg(format!("https://{}/v2/", srv.host()))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(trusts(&a), "401");
    // A connection opened under the old certificate ...
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &srv.host(), "-CAfile", &a.path("ca.crt")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::copy(b.path("server.crt"), &cert).unwrap();
    std::fs::copy(b.path("server.key"), &key).unwrap();
    assert!(Command::new("kill").args(["-HUP", &srv.pid().to_string()]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    // ... new connections get the new one ...
    assert_eq!(trusts(&b), "401");
    assert_eq!(trusts(&a), "000", "the old certificate is no longer presented");
    // ... and the old connection goes on.
    stdin.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    client.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = client.wait();
    assert_eq!(out.matches("HTTP/1.1 401").count(), 2, "{out}");
    assert!(srv.log().contains("tls certificate reloaded"), "{}", srv.log());
}

#[test]
fn one_client_address_cannot_take_the_whole_worker_pool() {
    let dir = tempfile::tempdir().unwrap();
    // Four workers: one client address gets one of them at a time.
    let srv = Server::start_with(&dir.path().join("data"), &[], &[("MCR_SERVER_WORKERS", "4")]);
    let auth = srv.admin_auth();
    let loc = srv.http("POST", "/v2/busy/blobs/uploads/", &[], b"").header("Location").unwrap().to_string();
    // Four uploads from 127.0.0.1 that start fast (past the reactor's
    // prefetch) and then go on just above the minimum rate.
    let mut slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(srv.addr).unwrap();
            write!(
                s,
                "PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 1048576\r\n\r\n"
            )
            .unwrap();
            s.write_all(&vec![b'a'; 70 * 1024]).unwrap();
            s
        })
        .collect();
    let url = format!("http://{}/v2/", srv.addr);
    let other = |from: &str| {
        let started = Instant::now();
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "10",
                "--interface",
                from,
                "-u",
                &srv.creds(),
                &url,
            ])
            .output()
            .unwrap();
        (String::from_utf8_lossy(&out.stdout).to_string(), started.elapsed())
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        for s in &mut slow {
            s.write_all(&[b'a'; 512]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Another client address is served at once.
    let (code, took) = other("127.0.0.2");
    assert_eq!(code, "200");
    assert!(took < Duration::from_secs(2), "another address waited {took:?}");
    drop(slow);
}

#[test]
fn what_a_hostile_client_tried_is_answered_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_with(
        &dir.path().join("data"),
        &[],
        &[("MCR_SERVER_HEADER_TIMEOUT", "1s"), ("MCR_SERVER_BODY_GRACE", "1s")],
    );
    // A target with multi-byte UTF-8 where "http://" would end: once a
    // panic in the reactor that closed the listener.
    for raw in
        [&b"GET abcdef\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"[..], b"OPTIONS abcdefg\xc3\xa9 HTTP/1.1\r\n\r\n"]
    {
        let text = exchange(&srv, raw, Duration::from_secs(5));
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    }
    healthy(&srv);
    // A chunked body whose trailer trickles in after its handler answered:
    // the worker drains it for a moment only, then closes.
    let started = Instant::now();
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n").unwrap();
    s.write_all(&vec![b'a'; 0x10000]).unwrap();
    s.write_all(b"\r\n0\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(8) {
        let _ = s.write_all(b"X");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 401") && text.contains("Connection: close"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the trickler held a worker for {:?}",
        started.elapsed()
    );
    // A new connection that says nothing is closed after the head timeout.
    let started = Instant::now();
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(started.elapsed() < Duration::from_secs(4), "silent connection kept {:?}", started.elapsed());
    // A Content-Range whose end is u64::MAX is a client error, not a 500.
    let loc = srv.http("POST", "/v2/cr/blobs/uploads/", &[], b"").header("Location").unwrap().to_string();
    let r =
        srv.http("PATCH", &loc, &[("Content-Range", "0-18446744073709551615"), ("Content-Length", "0")], b"");
    assert!(r.status == 400 || r.status == 416, "{} {}", r.status, r.text());
    // A download the client does not read ends after the grace period
    // instead of holding its worker.
    let big = bytes(11, 48 << 20);
    let d = sha256(&big);
    assert_eq!(srv.http("POST", &format!("/v2/cr/blobs/uploads/?digest={d}"), &[], &big).status, 201);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    write!(s, "GET /v2/cr/blobs/{d} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n", srv.admin_auth())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !srv.log().contains("sent=aborted") {
        assert!(Instant::now() < deadline, "the stalled download was not ended: {}", srv.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(s);
    healthy(&srv);
    assert!(!srv.log().contains("panicked"), "{}", srv.log());
}

#[test]
fn password_hashing_memory_is_given_back_after_each_check() {
    // Each check maps Argon2's 7 MiB and unmaps it afterwards (the mmap
    // threshold `mcr serve` sets); kept or left in the heap, it would stay
    // in the server's RSS between logins.
    let srv = Server::start();
    healthy(&srv);
    let before = srv.rss_kib();
    for i in 0..5 {
        let r = srv.http("GET", "/v2/", &[("Authorization", &basic(&format!("nobody{i}"), "wrong"))], b"");
        assert!(r.status == 401 || r.status == 429, "{}", r.status);
    }
    let after = srv.rss_kib();
    assert!(after < before + 3 * 1024, "RSS went from {before} KiB to {after} KiB over five password checks");
    let environ = |srv: &Server| std::fs::read(format!("/proc/{}/environ", srv.pid())).unwrap();
    let has = |env: &[u8], kv: &[u8]| env.split(|b| *b == 0).any(|e| e == kv);
    assert!(has(&environ(&srv), b"MALLOC_ARENA_MAX=2"));
    assert!(has(&environ(&srv), b"MALLOC_MMAP_THRESHOLD_=131072"));
    assert!(has(&environ(&srv), b"GLIBC_TUNABLES=glibc.malloc.tcache_count=1"));
    // An operator's own malloc settings are kept.
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_with(&dir.path().join("data"), &[], &[("MALLOC_ARENA_MAX", "4")]);
    healthy(&srv);
    assert!(has(&environ(&srv), b"MALLOC_ARENA_MAX=4"), "the operator's choice is kept");
    assert!(has(&environ(&srv), b"MALLOC_MMAP_THRESHOLD_=131072"));
}
