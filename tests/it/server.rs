//! The real `mcr` binary: start-up and configuration errors, the access
//! log, graceful shutdown, requests cut off on the wire, SIGKILL mid-upload,
//! and flat memory while a 1 GiB blob goes in and out.

use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn mcr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcr"))
}

#[test]
fn serves_logs_access_and_stops_gracefully() {
    let mut srv = Server::start();
    let auth = srv.admin_auth();
    let r = srv.http("GET", "/v2/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Docker-Distribution-API-Version"), Some("registry/2.0"));
    assert_eq!(r.content_length, Some(2));

    // An upload in flight when SIGTERM arrives still completes.
    let data = bytes(5, 200_000);
    let d = sha256(&data);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    write!(s, "POST /v2/grace/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", data.len()).unwrap();
    s.write_all(&data[..100_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill").args(["-TERM", &srv.pid().to_string()]).status();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&data[100_000..]).unwrap();
    let r = read_response(&mut s, false);
    assert_eq!(r.status, 201, "in-flight upload finished: {}", r.text());
    let status = srv.terminate();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    let log = srv.log();
    assert!(log.contains("access req="), "{log}");
    assert!(log.contains("method=GET path=/v2/ status=200"), "{log}");
    assert!(log.contains("shutting down") && log.contains("stopped"), "{log}");

    // The committed blob is there after a restart on the same data.
    let srv2 = Server::start_on(&srv.data_dir, &[]);
    let r = srv2.http("GET", &format!("/v2/grace/blobs/{d}"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
}

#[test]
fn refuses_bad_configuration_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = mcr().args(["serve", "--listen", "0.0.0.0:0", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("non-loopback") && err.contains("TLS"), "{err}");

    let out = mcr().args(["serve", "--listen", "nonsense"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[gc]\nunknown = 1\n").unwrap();
    let out = mcr().args(["config", "check"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[limits]\npage_max = 20\n").unwrap();
    let out = mcr().args(["config", "check"]).arg(&good).output().unwrap();
    assert!(out.status.success());

    let out = mcr()
        .args(["config", "show", "--config"])
        .arg(&good)
        .env("MCR_SERVER_WORKERS", "3")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("page_max = 20")
            && shown.contains("workers = 3")
            && shown.contains("listen = \"127.0.0.1:5000\""),
        "{shown}"
    );

    // A data directory that cannot be created.
    let file = dir.path().join("plainfile");
    std::fs::write(&file, "x").unwrap();
    let out = mcr()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("data directory"));
}

#[test]
fn cut_off_connection_and_garbage_leave_the_server_healthy() {
    let srv = Server::start();
    let auth = srv.admin_auth();
    let data = bytes(6, 1 << 20);
    let d = sha256(&data);
    {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        write!(
            s,
            "POST /v2/cut/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
            data.len()
        )
        .unwrap();
        s.write_all(&data[..300_000]).unwrap();
    } // dropped: the client vanished mid-body
      // Garbage on the wire.
    for junk in [
        &b"\x00\x01\x02 nonsense\r\n\r\n"[..],
        b"GET /v2/ HTTP/9.9\r\n\r\n",
        b"PUT /v2/a/manifests/x HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(junk).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(!text.contains(" 500 "), "no 500 for junk: {text}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(srv.http("HEAD", &format!("/v2/cut/blobs/{d}"), &[], b"").status, 404);
    let staged = std::fs::read_dir(srv.data_dir.join("uploads")).unwrap().count();
    assert_eq!(staged, 0, "no staging file left behind");
    assert_eq!(srv.http("GET", "/v2/", &[], b"").status, 200);
}

#[test]
fn sigkill_mid_upload_loses_nothing_committed() {
    let mut srv = Server::start();
    let auth = srv.admin_auth();
    let committed = bytes(7, 50_000);
    let cd = sha256(&committed);
    assert_eq!(srv.http("POST", &format!("/v2/k/blobs/uploads/?digest={cd}"), &[], &committed).status, 201);
    let cfg = b"{}";
    let cfgd = sha256(cfg);
    assert_eq!(srv.http("POST", &format!("/v2/k/blobs/uploads/?digest={cfgd}"), &[], cfg).status, 201);
    let m = image_manifest((&cfgd, 2), &[(&cd, committed.len())], None);
    let r = srv.http("PUT", "/v2/k/manifests/v1", &[("Content-Type", OCI_MANIFEST)], &m);
    assert_eq!(r.status, 201);

    // A chunked session with one chunk in, and a monolithic upload half sent.
    let r = srv.http("POST", "/v2/k/blobs/uploads/", &[], b"");
    let loc = r.header("Location").unwrap().to_string();
    let big = bytes(8, 2 << 20);
    let bd = sha256(&big);
    let r = srv.http(
        "PATCH",
        &loc,
        &[("Content-Range", "0-1048575"), ("Content-Length", "1048576")],
        &big[..1 << 20],
    );
    assert_eq!(r.status, 202);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    write!(
        s,
        "POST /v2/k/blobs/uploads/?digest={bd} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
        big.len()
    )
    .unwrap();
    s.write_all(&big[..1 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    srv.kill();

    let srv2 = Server::start_on(&srv.data_dir, &[]);
    assert_eq!(
        srv2.http("HEAD", &format!("/v2/k/blobs/{bd}"), &[], b"").status,
        404,
        "half-sent blob is not visible"
    );
    let r = srv2.http("GET", "/v2/k/manifests/v1", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, m);
    assert_eq!(srv2.http("GET", &format!("/v2/k/blobs/{cd}"), &[], b"").body, committed);
    // The chunked session resumes where it was (the hash is rebuilt from disk).
    let r = srv2.http("GET", &loc, &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Range"), Some("0-1048575"));
    let r = srv2.http(
        "PUT",
        &format!("{loc}?digest={bd}"),
        &[("Content-Range", "1048576-2097151")],
        &big[1 << 20..],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(srv2.http("GET", &format!("/v2/k/blobs/{bd}"), &[], b"").body, big);
    let ok: String = Command::new("sh")
        .arg("-c")
        .arg(format!("python3 -c \"import sqlite3;print(sqlite3.connect('{}').execute('pragma integrity_check').fetchone()[0])\"", srv.data_dir.join("mcr.db").display()))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap();
    assert_eq!(ok, "ok");
}

/// Streams `total` pseudo-random bytes as a PATCH body, hashing as it goes.
fn stream_upload(srv: &Server, repo: &str, total: u64) -> String {
    let auth = srv.admin_auth();
    use sha2::Digest as _;
    let r = srv.http("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    let loc = r.header("Location").unwrap().to_string();
    let mut s = TcpStream::connect(srv.addr).unwrap();
    write!(s, "PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut h = sha2::Sha256::new();
    let chunk = bytes(99, 1 << 20);
    let mut sent = 0u64;
    let mut i = 0u8;
    let mut buf = chunk.clone();
    while sent < total {
        buf[0] = i; // vary the chunks a little
        i = i.wrapping_add(1);
        let n = (total - sent).min(buf.len() as u64) as usize;
        h.update(&buf[..n]);
        s.write_all(&buf[..n]).unwrap();
        sent += n as u64;
    }
    let r = read_response(&mut s, false);
    assert_eq!(r.status, 202, "{}", r.text());
    let d = format!("sha256:{}", h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>());
    let r = srv.http("PUT", &format!("{loc}?digest={d}"), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    d
}

#[test]
fn memory_stays_flat_for_a_1gib_blob() {
    let mb: u64 = std::env::var("MCR_TEST_BIG_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let srv = Server::start();
    let auth = srv.admin_auth();
    let before = srv.peak_rss_kib();
    let d = stream_upload(&srv, "big", mb << 20);
    // Pull it back, streaming, and check length and digest.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    write!(
        s,
        "GET /v2/big/blobs/{d} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.contains(&format!("content-length: {}", mb << 20)), "{head}");
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        got += n as u64;
    }
    assert_eq!(got, mb << 20);
    let back = format!("sha256:{}", h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>());
    assert_eq!(back, d);
    let peak = srv.peak_rss_kib();
    eprintln!("peak RSS before {before} KiB, after {mb} MiB in and out: {peak} KiB");
    assert!(peak < before + 64 * 1024, "memory grew from {before} KiB to {peak} KiB: bodies must stream");
}

#[test]
fn tls_hello_on_plain_listener_is_refused_at_once_and_peers_are_real() {
    let srv = Server::start();
    let auth = srv.admin_auth();
    // The first bytes of a TLS 1.3 ClientHello record.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = std::time::Instant::now();
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0xf1, 0x01, 0x00, 0x00, 0xed, 0x03, 0x03]).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2), "answered at once, not after a timeout");

    // The access log names the client's own address, not the relay's.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    let local = s.local_addr().unwrap();
    write!(s, "GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).status, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert!(srv.log().contains(&format!("peer={local} ")), "{}", srv.log());
}

#[test]
fn the_readme_configuration_example_is_valid() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("```toml\n").expect("README has a TOML example") + 8;
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("readme.toml");
    // The example shows the worker default of a machine with two cores.
    let workers = mcr::config::default_workers();
    let example = readme[start..end].replacen("workers = 16 ", &format!("workers = {workers} "), 1);
    std::fs::write(&f, example).unwrap();
    let out = mcr().args(["config", "check"]).arg(&f).output().unwrap();
    assert!(out.status.success(), "README example: {}", String::from_utf8_lossy(&out.stderr));
    // And it says what the defaults are.
    let shown = mcr().args(["config", "show", "--config"]).arg(&f).output().unwrap();
    let defaults = mcr().args(["config", "show"]).output().unwrap();
    assert_eq!(shown.stdout, defaults.stdout, "the README example lists the defaults");
}

#[test]
fn slow_oversized_and_ambiguous_request_heads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_with(&dir.path().join("data"), &[], &[("MCR_SERVER_HEADER_TIMEOUT", "1s")]);
    let exchange = |first: &[u8], pause_ms: u64, rest: &[u8]| {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(first).unwrap();
        std::thread::sleep(Duration::from_millis(pause_ms));
        let _ = s.write_all(rest);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    };
    // Slowloris: half a head, then silence past the header timeout.
    let started = std::time::Instant::now();
    let text = exchange(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: 1", 1500, b"");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A head larger than 64 KiB.
    let mut big = b"GET /v2/ HTTP/1.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 70_000));
    let text = exchange(&big, 0, b"\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 431"), "{}", &text[..text.len().min(200)]);
    // Ambiguous framing: request smuggling shapes.
    let text = exchange(b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, b"");
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    // A client that keeps sending, slowly but within the limit, is served;
    // and keep-alive carries several requests.
    let auth = srv.admin_auth();
    let req = format!("GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n");
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..3 {
        s.write_all(req.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"));
        let mut body = [0u8; 2];
        s.read_exact(&mut body).unwrap();
    }
    assert_eq!(srv.http("GET", "/v2/", &[], b"").status, 200, "still healthy");
}

#[test]
fn metrics_in_prometheus_text_format() {
    let srv = Server::start();
    let blob = b"measured";
    assert_eq!(
        srv.http("POST", &format!("/v2/m/blobs/uploads/?digest={}", sha256(blob)), &[], blob).status,
        201
    );
    assert_eq!(srv.http("GET", "/v2/m/blobs/sha256:nope", &[], b"").status, 400);
    // Public, like health: a scraper needs no credentials.
    let r = http(srv.addr, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("Content-Type").unwrap().starts_with("text/plain"));
    let text = r.text();
    for needle in [
        "mcr_http_requests_total{method=\"POST\",code=\"2xx\"} 1",
        "mcr_http_requests_total{method=\"GET\",code=\"4xx\"} 1",
        "# TYPE mcr_http_request_duration_seconds summary",
        "mcr_blobs 1",
        "mcr_storage_bytes 8",
        "mcr_repositories 1",
        "# TYPE mcr_uptime_seconds gauge",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert_eq!(http(srv.addr, "POST", "/metrics", &[], b"").status, 405);
}

#[test]
fn unread_chunked_bodies_cannot_smuggle_requests() {
    let srv = Server::start();
    // An unauthenticated chunked PATCH whose "chunk size" would read as a
    // request line to tiny_http: refused at the edge, connection closed.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "PATCH /v2/x/blobs/uploads/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff;x / HTTP/1.1\r\nX: ").unwrap();
    let _ = s.write_all(&vec![b'A'; 256 * 1024]);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    assert!(!text.contains(" 500 ") && !text.contains(" 200 "), "{text}");
    // An unread chunked body is read to its end, and keep-alive goes on
    // with the next request, correctly framed.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = srv.admin_auth();
    write!(s, "PATCH /v2/x/blobs/uploads/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("HTTP/1.1 200"), "the next request on the connection is answered: {text}");
    assert_eq!(srv.http("GET", "/v2/", &[], b"").status, 200);
}

/// One process at a time holds a data directory: while `mcr serve` runs,
/// the offline `mcr gc`, `reconcile` and `restore` and a second `mcr serve`
/// refuse with a reason (their locks are per process, so running beside it
/// could lose blobs); `mcr user` still works. Once the server stops, they run.
#[test]
fn offline_commands_refuse_a_data_directory_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start_on(&data, &[]);
    let run = |args: &[&str]| {
        let out = mcr_on(&data).args(args).arg("--data-dir").arg(&data).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for cmd in [&["gc"][..], &["reconcile"], &["restore", "/nonexistent.db"]] {
        let (ok, err) = run(cmd);
        assert!(!ok && err.contains("in use by another mcr process"), "{cmd:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
        .args(["serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a second server on the same data directory must not start");
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another mcr process"));
    let (ok, err) = run(&["user", "list"]);
    assert!(ok, "mcr user works beside the server: {err}");
    assert_eq!(srv.http("GET", "/v2/", &[], b"").status, 200, "the server is unharmed");
    srv.terminate();
    let (ok, err) = run(&["gc"]);
    assert!(ok, "once the server is gone, gc runs: {err}");
}

/// Every file under the data directory (database, WAL, blobs, uploads,
/// snapshots, keys, lock) is 0600 and every directory 0700; an older
/// installation is tightened at start, with a log line.
#[test]
fn the_data_directory_is_its_owners_alone() {
    crate::sqlite_only!();
    use std::os::unix::fs::PermissionsExt;
    fn walk(dir: &std::path::Path, bad: &mut Vec<String>, files: &mut usize) {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        if mode != 0o700 {
            bad.push(format!("{} {mode:o}", dir.display()));
        }
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), bad, files);
            } else {
                *files += 1;
                let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                if mode != 0o600 {
                    bad.push(format!("{} {mode:o}", e.path().display()));
                }
            }
        }
    }
    let check = |data: &std::path::Path, when: &str| {
        let (mut bad, mut files) = (Vec::new(), 0);
        walk(data, &mut bad, &mut files);
        assert!(bad.is_empty(), "{when}: not owner-only: {bad:#?}");
        assert!(files >= 6, "{when}: the walk saw the files ({files})");
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start_on(&data, &[]);
    srv.push_image("modes", "v1", 1);
    let loc = srv.http("POST", "/v2/modes/blobs/uploads/", &[], b"").header("Location").unwrap().to_string();
    assert_eq!(srv.http("PATCH", &loc, &[], b"part").status, 202);
    let snap = srv.http("POST", "/v1/snapshot", &[], b"").json();
    check(&data, "running");
    assert!(srv.terminate().success());
    check(&data, "after the first start");
    // An installation from before: world-readable files and directories.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(data.join("mcr.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut srv = Server::start_on(&data, &[]);
    assert!(srv.log().contains("data directory made owner-only"), "{}", srv.log());
    assert!(srv.terminate().success());
    check(&data, "after tightening");
    let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
        .args(["restore", snap["path"].as_str().unwrap(), "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check(&data, "after a restore");
}

/// Keys and restores are not fooled by what another user could plant in a
/// data directory: a symlinked key refuses the start, and a restore never
/// writes through a symlink at its temporary name.
#[test]
fn planted_symlinks_are_refused() {
    crate::sqlite_only!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start_on(&data, &[]);
    let snap = srv.http("POST", "/v1/snapshot", &[], b"").json();
    assert!(srv.terminate().success());
    // A restore with a symlink waiting at its temporary name.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    std::os::unix::fs::symlink(&victim, data.join(".mcr.db.restoring")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
        .args(["restore", snap["path"].as_str().unwrap(), "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched", "nothing written through the link");
    assert!(!std::fs::symlink_metadata(data.join("mcr.db")).unwrap().file_type().is_symlink());
    // A key replaced by a symlink to bytes someone else chose.
    let planted = dir.path().join("planted.key");
    std::fs::write(&planted, [7u8; 32]).unwrap();
    std::fs::remove_file(data.join("ui-csrf.key")).unwrap();
    std::os::unix::fs::symlink(&planted, data.join("ui-csrf.key")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
        .args(["serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symlink"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn many_clients_share_a_few_database_connections() {
    // Idle SQLite connections are pooled (at most 8), not one per worker
    // thread: 64 clients at once leave a handful open, each ~270 KiB.
    crate::sqlite_only!();
    let srv = Server::start();
    let auth = srv.admin_auth();
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                for _ in 0..20 {
                    let r = srv.http("GET", "/v2/_catalog", &[("Authorization", &auth)], b"");
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            });
        }
    });
    let open = std::fs::read_dir(format!("/proc/{}/fd", srv.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|p| p.file_name().is_some_and(|n| n == "mcr.db"))
        .count();
    assert!((1..=10).contains(&open), "{open} database connections open after 64 clients");
}

#[test]
fn crash_leftovers_are_reconciled_at_start_beside_the_requests() {
    let mut srv = Server::start();
    let data = srv.data_dir.clone();
    srv.kill();
    // A staged upload that no session names, as a crash leaves it.
    let junk = data.join("uploads/0bad0bad-0000-4000-8000-000000000002");
    std::fs::write(&junk, b"junk").unwrap();
    let srv = Server::start_on(&data, &[]);
    assert_eq!(srv.http("GET", "/v2/", &[], b"").status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !srv.log().contains("startup reconcile done") {
        assert!(Instant::now() < deadline, "no startup reconcile: {}", srv.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(srv.log().contains("\"staging_files_removed\":1"), "{}", srv.log());
    assert!(!junk.exists(), "the leftover is still there");
}
