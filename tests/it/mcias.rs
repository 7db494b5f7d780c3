//! The MCIAS identity provider against a fake MCIAS (the one test double
//! allowed) that speaks the R-AUTH-1 contract over TLS 1.3; and the MCIAS
//! client's refusal of a TLS 1.2-only server.

use crate::support::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct FakeMcias {
    addr: SocketAddr,
    validations: Arc<AtomicUsize>,
    logins: Arc<AtomicUsize>,
}

/// (password, sub, roles, account_type)
type Users = HashMap<&'static str, (&'static str, &'static str, Vec<&'static str>, &'static str)>;

impl FakeMcias {
    fn start(certs: &Certs) -> FakeMcias {
        let cfg = mcr::http::tls::server_config(
            certs.path("server.crt").as_ref(),
            certs.path("server.key").as_ref(),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let validations = Arc::new(AtomicUsize::new(0));
        let logins = Arc::new(AtomicUsize::new(0));
        let users: Arc<Users> = Arc::new(HashMap::from([
            ("alice", ("alice-password", "9f1c-alice", vec!["admin"], "human")),
            ("robot", ("robot-password", "9f1c-robot", vec![], "system")),
        ]));
        let tokens: Arc<Mutex<HashMap<String, &'static str>>> = Arc::default();
        let (v, l) = (validations.clone(), logins.clone());
        std::thread::spawn(move || {
            for sock in listener.incoming().map_while(Result::ok) {
                let (cfg, users, tokens, v, l) =
                    (cfg.clone(), users.clone(), tokens.clone(), v.clone(), l.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(cfg).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, sock);
                    let mut buf = Vec::new();
                    let mut byte = [0u8; 1];
                    while !buf.ends_with(b"\r\n\r\n") {
                        if tls.read(&mut byte).unwrap_or(0) == 0 {
                            return;
                        }
                        buf.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    tls.read_exact(&mut body).unwrap();
                    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let exp = "2099-01-01T00:00:00Z";
                    let (status, reply) = match path.as_str() {
                        "/v1/auth/login" => {
                            l.fetch_add(1, Ordering::SeqCst);
                            let u = req["username"].as_str().unwrap_or("");
                            match users.get(u) {
                                Some((pw, ..)) if req["password"] == *pw => {
                                    let tok = format!("tok-{u}-{}", l.load(Ordering::SeqCst));
                                    let name = *users.get_key_value(u).unwrap().0;
                                    tokens.lock().unwrap().insert(tok.clone(), name);
                                    (200, serde_json::json!({"token": tok, "expires_at": exp}))
                                }
                                _ => (401, serde_json::json!({"error": "invalid credentials"})),
                            }
                        }
                        "/v1/token/validate" => {
                            v.fetch_add(1, Ordering::SeqCst);
                            let t = req["token"].as_str().unwrap_or("");
                            match tokens.lock().unwrap().get(t) {
                                Some(name) => {
                                    let (_, sub, roles, kind) = &users[name];
                                    (
                                        200,
                                        serde_json::json!({"valid": true, "sub": sub, "username": name, "roles": roles,
                                                              "account_type": kind, "expires_at": exp}),
                                    )
                                }
                                None => (200, serde_json::json!({"valid": false})),
                            }
                        }
                        _ => (404, serde_json::json!({"error": "not found"})),
                    };
                    let body = reply.to_string();
                    let _ = write!(
                        tls,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.flush();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        FakeMcias { addr, validations, logins }
    }
}

fn mcias_app(certs: &Certs, url: &str) -> TestApp {
    let (url, ca) = (url.to_string(), certs.path("ca.crt"));
    TestApp::with(move |c| {
        c.auth.provider = "mcias".into();
        c.auth.mcias_url = url;
        c.auth.mcias_ca = ca;
    })
}

#[test]
fn mcias_logins_tokens_roles_and_the_cache() {
    let certs = Certs::new();
    let fake = FakeMcias::start(&certs);
    let t = mcias_app(&certs, &format!("https://localhost:{}", fake.addr.port()));
    assert!(t.admin.is_empty(), "no local admin with an external provider");

    // The token endpoint logs in at MCIAS and hands out MCIAS's token.
    let r = t.req("GET", "/v2/token").auth(&basic("alice", "alice-password")).send();
    r.expect(200, None);
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("tok-alice-"), "{token}");
    let bearer = format!("Bearer {token}");
    let before = fake.validations.load(Ordering::SeqCst);
    // alice has the admin role at MCIAS: she may push anything.
    t.req("POST", "/v2/any/blobs/uploads/").auth(&bearer).send().expect(202, None);
    for _ in 0..5 {
        t.req("GET", "/v2/").auth(&bearer).send().expect(200, None);
    }
    assert_eq!(fake.validations.load(Ordering::SeqCst), before + 1, "validated once, then cached");
    t.req("GET", "/v2/").auth("Bearer tok-forged").send().expect(401, None);
    assert_eq!(fake.validations.load(Ordering::SeqCst), before + 2);
    t.req("GET", "/v2/").auth("Bearer tok-forged").send().expect(401, None);
    assert_eq!(fake.validations.load(Ordering::SeqCst), before + 3, "failures are not cached as valid");

    // Basic credentials on /v2: checked at MCIAS once, then cached.
    let logins = fake.logins.load(Ordering::SeqCst);
    for _ in 0..3 {
        t.req("GET", "/v2/").auth(&basic("alice", "alice-password")).send().expect(200, None);
    }
    assert_eq!(fake.logins.load(Ordering::SeqCst), logins + 1);
    t.req("GET", "/v2/").auth(&basic("alice", "wrong")).send().expect(401, None);
    t.req("GET", "/v2/token").auth(&basic("alice", "wrong")).send().expect(401, None);

    // A system account from MCIAS gets only what rules grant.
    let robot = basic("robot", "robot-password");
    t.req("GET", "/v2/").auth(&robot).send().expect(200, None);
    t.req("POST", "/v2/any/blobs/uploads/").auth(&robot).send().expect(403, Some("DENIED"));
}

#[test]
fn mcias_unreachable_is_503_and_tls12_servers_are_refused() {
    let certs = Certs::new();
    // Nothing listens there: 503, not 500 or 401.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = mcias_app(&certs, &format!("https://localhost:{port}"));
    t.req("GET", "/v2/").auth(&basic("alice", "alice-password")).send().expect(503, Some("UNAVAILABLE"));

    // A TLS 1.2-only server with a certificate we trust: the client refuses.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-tls1_2",
            "-www",
            "-accept",
            &port.to_string(),
            "-cert",
            &certs.path("server.crt"),
            "-key",
            &certs.path("server.key"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ca = std::fs::read(certs.path("ca.crt")).unwrap();
    let p = mcr::auth::mcias::McIasProvider::new(&format!("https://localhost:{port}"), Some(&ca)).unwrap();
    use mcr::auth::IdentityProvider as _;
    let err = p
        .login("alice", &mcr::auth::Password::new("alice-password"), &|_| None)
        .err()
        .expect("TLS 1.2 must be refused");
    let msg = err.to_string();
    assert!(matches!(err, mcr::error::Error::Unavailable(_)), "{msg}");
    assert!(msg.to_lowercase().contains("protocol") || msg.to_lowercase().contains("version"), "{msg}");
    let _ = server.kill();
    let _ = server.wait();

    // And the same client is fine with a TLS 1.3 server (the fake).
    let fake = FakeMcias::start(&certs);
    let p =
        mcr::auth::mcias::McIasProvider::new(&format!("https://localhost:{}", fake.addr.port()), Some(&ca))
            .unwrap();
    assert!(p.login("alice", &mcr::auth::Password::new("alice-password"), &|_| None).unwrap().is_some());
    // Plain http and a wrong CA are refused.
    assert!(mcr::auth::mcias::McIasProvider::new("http://localhost:1", None).is_err());
    let p = mcr::auth::mcias::McIasProvider::new(&format!("https://localhost:{}", fake.addr.port()), None)
        .unwrap();
    assert!(p.login("alice", &mcr::auth::Password::new("alice-password"), &|_| None).is_err(), "unknown CA");
}
