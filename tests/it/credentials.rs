//! The credential path under load and under attack: one password check for
//! many concurrent logins, throttling that locks out attackers and not
//! users, bounded audit of failures, revocation from another process, no
//! secret in the log, real client addresses behind the gRPC TLS relay.

use crate::support::*;
use std::process::Command;
use std::sync::Barrier;

fn password_checks(srv: &Server) -> u64 {
    let text = http(srv.addr, "GET", "/metrics", &[], b"").text();
    text.lines()
        .find_map(|l| l.strip_prefix("mcr_auth_password_checks_total "))
        .expect("the metric is exported")
        .trim()
        .parse()
        .unwrap()
}

fn add_user(srv: &Server, name: &str, password: &str) {
    let body = format!(r#"{{"username":"{name}","password":"{password}","roles":[]}}"#);
    let r = srv.http("POST", "/v1/users", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn sixty_four_concurrent_logins_with_one_credential_cost_one_password_check() {
    let srv = Server::start();
    add_user(&srv, "ci", "ci-password-1");
    let before = password_checks(&srv);
    let ci = basic("ci", "ci-password-1");
    let barrier = Barrier::new(64);
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                barrier.wait();
                let r = http(srv.addr, "GET", "/v2/", &[("Authorization", &ci)], b"");
                assert_eq!(r.status, 200);
            });
        }
    });
    assert_eq!(password_checks(&srv) - before, 1, "one hash for 64 concurrent requests");
    // The token endpoint reuses the same check: docker's token requests
    // for many pulls cost no hash at all once the credentials are known.
    let before = password_checks(&srv);
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                barrier.wait();
                let r = http(
                    srv.addr,
                    "GET",
                    "/v2/token?service=mcr&scope=repository:a:pull",
                    &[("Authorization", &ci)],
                    b"",
                );
                assert_eq!(r.status, 200, "{}", r.text());
            });
        }
    });
    assert_eq!(password_checks(&srv) - before, 0, "token requests share the cached check");
}

#[test]
fn failed_logins_do_not_grow_memory() {
    let srv = Server::start();
    // Warm up: the first checks open connections and caches that stay.
    for i in 0..4 {
        http(srv.addr, "GET", "/v2/", &[("Authorization", &basic(&format!("warm{i}"), "x"))], b"");
    }
    let before = srv.peak_rss_kib();
    std::thread::scope(|s| {
        for k in 0..8 {
            let srv = &srv;
            s.spawn(move || {
                for i in 0..8 {
                    let creds = basic(&format!("u{k}x{i}"), "wrong-password");
                    let r = http(srv.addr, "GET", "/v2/", &[("Authorization", &creds)], b"");
                    assert!(r.status == 401 || r.status == 429, "{}", r.status);
                }
            });
        }
    });
    let after = srv.peak_rss_kib();
    assert!(after < before + 32 * 1024, "64 failed logins took peak RSS from {before} KiB to {after} KiB");
}

#[test]
fn an_attacking_address_does_not_lock_the_user_out_elsewhere() {
    let t = TestApp::new();
    t.user("bob", "bob-password-1", &[], false);
    let (attacker, user) = ("10.9.9.9:1234", "10.1.1.1:5555");
    for _ in 0..100 {
        let r = t.req("GET", "/v2/").auth(&basic("bob", "guess")).from(attacker).send();
        assert!(r.status == 401 || r.status == 429, "{}", r.status);
    }
    t.req("GET", "/v2/").auth(&basic("bob", "bob-password-1")).from(attacker).send().expect(429, None);
    t.req("GET", "/v2/").auth(&basic("bob", "bob-password-1")).from(user).send().expect(200, None);
    t.req("GET", "/v2/token").auth(&basic("bob", "bob-password-1")).from(user).send().expect(200, None);
    // Bad tokens count against their address's budget, and never lock out
    // a valid token used from the same address.
    let tok = {
        let r = t.req("GET", "/v2/token").auth(&basic("bob", "bob-password-1")).from("10.8.8.8:1").send();
        format!("Bearer {}", r.json()["token"].as_str().unwrap())
    };
    t.req("GET", "/v2/").auth(&tok).from("10.8.8.8:1").send().expect(200, None);
    for _ in 0..70 {
        t.req("GET", "/v2/").auth("Bearer not-a-token").from("10.8.8.8:1").send();
    }
    t.req("GET", "/v2/").auth("Bearer not-a-token").from("10.8.8.8:1").send().expect(429, None);
    t.req("GET", "/v2/").auth(&tok).from("10.8.8.8:1").send().expect(200, None);
    t.req("GET", "/v2/").auth("Bearer not-a-token").from("10.8.8.9:1").send().expect(401, None);
}

#[test]
fn a_flood_of_failed_logins_writes_a_bounded_number_of_audit_rows() {
    let t = TestApp::new();
    for i in 0..300 {
        let creds = if i % 2 == 0 { "Bearer forged".to_string() } else { basic(&format!("u{i}"), "x") };
        t.req("GET", "/v2/").auth(&creds).from("10.7.7.7:9").send();
    }
    t.app.audit.flush();
    let f = mcr::db::audit::Filter { limit: 1000, ..Default::default() };
    let rows = mcr::service::audit::query(&t.admin_ctx(), &f).unwrap();
    let failed = rows.iter().filter(|r| r.event_type == "login_failed").count();
    assert!((1..=2).contains(&failed), "{failed} login_failed rows for 300 failures");
}

#[test]
fn user_changes_from_another_process_take_effect_on_the_next_request() {
    let srv = Server::start();
    add_user(&srv, "eve", "eve-password-1");
    let eve = basic("eve", "eve-password-1");
    assert_eq!(http(srv.addr, "GET", "/v2/", &[("Authorization", &eve)], b"").status, 200);
    let out = mcr_on(&srv.data_dir)
        .args(["user", "disable", "eve", "--data-dir"])
        .arg(&srv.data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        http(srv.addr, "GET", "/v2/", &[("Authorization", &eve)], b"").status,
        401,
        "cached credentials are void"
    );
}

#[test]
fn grpc_behind_the_tls_relay_sees_the_real_client_address() {
    let certs = Certs::new();
    let (cert, key) = (certs.path("server.crt"), certs.path("server.key"));
    let srv = Server::start_args(&["--tls-cert", &cert, "--tls-key", &key]);
    let ca = std::fs::read(certs.path("ca.crt")).unwrap();
    let creds = grpcio::ChannelCredentialsBuilder::new().root_cert(ca).build();
    let env = std::sync::Arc::new(grpcio::Environment::new(1));
    let ch = grpcio::ChannelBuilder::new(env)
        .override_ssl_target("localhost")
        .set_credentials(creds)
        .connect(&srv.grpc.to_string());
    let admin = mcr::grpc::mcr_grpc::AdminServiceClient::new(ch);
    let mut md = grpcio::MetadataBuilder::new();
    md.add_str("authorization", &basic("admin", "wrong-password")).unwrap();
    let r =
        admin.status_opt(&mcr::grpc::mcr::Empty::new(), grpcio::CallOption::default().headers(md.build()));
    assert!(r.is_err());
    // The client's own ports towards the gRPC listener, from the kernel's
    // table (grpcio does not say which it used).
    // (gRPC's core may use a dual-stack socket: look in both tables.)
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap()
        + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    let port = |hex: &str| u16::from_str_radix(hex.rsplit(':').next().unwrap(), 16).unwrap();
    let client_ports: Vec<u16> = tcp
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() > 2 && cols[2].contains(':') && port(cols[2]) == srv.grpc.port())
                .then(|| port(cols[1]))
        })
        .collect();
    assert!(!client_ports.is_empty(), "grpc port {:x}: {tcp}", srv.grpc.port());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let out = Command::new("curl")
        .args(["-s", "-u", &srv.creds(), "--cacert", &certs.path("ca.crt")])
        .arg(format!("https://{}/v1/audit?type=login_failed", srv.host()))
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let peers: Vec<String> = rows["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{rows}"))
        .iter()
        .map(|e| e["peer"].as_str().unwrap_or("").to_string())
        .collect();
    let real: Vec<String> = client_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    assert!(peers.iter().any(|p| real.contains(p)), "audit peers {peers:?}, client {real:?}");
    assert!(real.iter().any(|p| srv.log().contains(&format!("peer={p} "))), "{}", srv.log());
}

#[test]
fn a_scoped_token_is_refused_outside_its_scope_on_every_route() {
    let t = TestApp::new();
    t.image("a", "v1", 1);
    let (_, d) = t.image("b", "v1", 2);
    let tok = |scope: &str| {
        let r = t.req("GET", &format!("/v2/token?service=mcr&scope={scope}")).send();
        r.expect(200, None);
        format!("Bearer {}", r.json()["token"].as_str().unwrap())
    };
    let pull_a = tok("repository:a:pull");
    t.req("GET", "/v2/a/manifests/v1").auth(&pull_a).send().expect(200, None);
    t.req("GET", "/v2/a/tags/list").auth(&pull_a).send().expect(200, None);
    t.req("GET", "/v2/").auth(&pull_a).send().expect(200, None);
    let blob = format!("/v2/b/blobs/{d}");
    for (method, path) in [
        ("GET", "/v2/b/manifests/v1"),
        ("HEAD", "/v2/b/manifests/v1"),
        ("PUT", "/v2/b/manifests/v2"),
        ("DELETE", "/v2/b/manifests/v1"),
        ("GET", blob.as_str()),
        ("HEAD", blob.as_str()),
        ("DELETE", blob.as_str()),
        ("POST", "/v2/b/blobs/uploads/"),
        ("GET", "/v2/b/tags/list"),
        ("GET", &format!("/v2/b/referrers/{d}")),
        ("POST", "/v2/a/blobs/uploads/"),
        ("DELETE", "/v2/a/manifests/v1"),
        ("GET", "/v2/_catalog"),
    ] {
        let r = t.req(method, path).auth(&pull_a).body(b"{}").send();
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
        let c = r.header("WWW-Authenticate").unwrap();
        assert!(c.contains(r#"error="insufficient_scope""#), "{method} {path}: {c}");
    }
    // The challenge names the scope the refused action needs, exactly.
    let r = t.req("DELETE", "/v2/b/manifests/v1").auth(&pull_a).send();
    assert!(
        r.header("WWW-Authenticate").unwrap().contains(r#"scope="repository:b:delete""#),
        "{:?}",
        r.headers
    );
    let del_b = tok("repository:b:delete");
    t.req("DELETE", &format!("/v2/b/manifests/{d}")).auth(&del_b).send().expect(202, None);
    // An upload session started with one token cannot be continued with a
    // token scoped elsewhere.
    let push_b = tok("repository:b:push,pull");
    let r = t.req("POST", "/v2/b/blobs/uploads/").auth(&push_b).send();
    r.expect(202, None);
    let loc = r.header("Location").unwrap().to_string();
    let put = format!("{loc}?digest={d}");
    for (method, url) in [("PATCH", &loc), ("PUT", &put), ("GET", &loc), ("DELETE", &loc)] {
        let r = t.req(method, url).auth(&pull_a).body(b"x").send();
        assert_eq!(r.status, 401, "{method} upload: {}", r.text());
    }
    // A scope asks; policy decides: a user who may only pull gets no push.
    t.user("reader", "reader-password-1", &[], true);
    t.rule(r#"{"effect":"allow","actions":["pull"],"usernames":["reader"],"repositories":["a"]}"#);
    let r = t
        .req("GET", "/v2/token?scope=repository:a:pull,push")
        .auth(&basic("reader", "reader-password-1"))
        .send();
    r.expect(200, None);
    let reader = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    t.req("GET", "/v2/a/manifests/v1").auth(&reader).send().expect(200, None);
    t.req("POST", "/v2/a/blobs/uploads/").auth(&reader).send().expect(403, Some("DENIED"));
    // Scoped tokens carry no administration; unscoped ones keep it.
    t.req("GET", "/v1/users").auth(&pull_a).send().expect(403, None);
    t.req("GET", "/v1/status").auth(&pull_a).send().expect(403, None);
    let full = {
        let r = t.req("GET", "/v2/token?service=mcr").send();
        format!("Bearer {}", r.json()["token"].as_str().unwrap())
    };
    t.req("GET", "/v1/users").auth(&full).send().expect(200, None);
    t.req("POST", "/v2/b/blobs/uploads/").auth(&full).send().expect(202, None);
}

#[test]
fn concurrent_guesses_cannot_run_ahead_of_the_throttle() {
    let t = TestApp::new();
    t.user("bob", "bob-password-1", &[], false);
    let statuses = std::sync::Mutex::new(Vec::new());
    let barrier = Barrier::new(40);
    std::thread::scope(|s| {
        for i in 0..40 {
            let (t, statuses, barrier) = (&t, &statuses, &barrier);
            s.spawn(move || {
                barrier.wait();
                let r =
                    t.req("GET", "/v2/").auth(&basic("bob", &format!("guess-{i}"))).from("10.6.6.6:1").send();
                statuses.lock().unwrap().push(r.status);
            });
        }
    });
    let statuses = statuses.into_inner().unwrap();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    assert!(checked <= mcr::auth::FREE_FAILURES as usize, "{checked} guesses were checked: {statuses:?}");
}

/// The OAuth2 form of the token endpoint takes every scope asked for,
/// repeated or space-separated, as the GET form does.
#[test]
fn the_token_form_takes_every_scope() {
    let t = TestApp::new();
    for form in
        ["scope=repository:x:pull&scope=repository:x:push", "scope=repository:x:pull+repository:x:push"]
    {
        let body = format!("grant_type=password&username=admin&password={}&service=mcr&{form}", t.admin);
        let r = t
            .req("POST", "/v2/token")
            .anon()
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.as_bytes())
            .send();
        r.expect(200, None);
        let tok = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
        let r = t.req("POST", "/v2/x/blobs/uploads/").auth(&tok).send();
        assert_eq!(r.status, 202, "{form}: push is granted: {}", r.text());
        t.req("GET", "/v2/y/tags/list").auth(&tok).send().expect(401, None);
    }
}

/// A throttled (user, address) is refused before the credential cache is
/// asked: a cached right password must not answer a guessing run, nor tell
/// it when it guessed right. Other addresses are not affected.
#[test]
fn a_throttled_pair_gets_no_answer_from_the_cache() {
    let t = TestApp::new();
    t.user("bob", "bob-password-1", &[], false);
    let right = basic("bob", "bob-password-1");
    let attacker = "10.9.9.9:1000";
    // bob's password is in the cache (he is using the registry).
    t.req("GET", "/v2/").auth(&right).from(attacker).send().expect(200, None);
    let mut throttled = false;
    for i in 0..40 {
        let r = t.req("GET", "/v2/").auth(&basic("bob", &format!("guess-{i}"))).from(attacker).send();
        if r.status == 429 {
            throttled = true;
            break;
        }
        assert_eq!(r.status, 401);
    }
    assert!(throttled, "guessing gets throttled");
    let r = t.req("GET", "/v2/").auth(&right).from(attacker).send();
    assert_eq!(r.status, 429, "the right password is refused too while throttled: {}", r.text());
    t.req("GET", "/v2/").auth(&right).from("10.1.1.1:1000").send().expect(200, None);
}
