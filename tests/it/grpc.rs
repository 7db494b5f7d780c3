//! The gRPC API against the real server: every RPC's success and its
//! UNAUTHENTICATED / PERMISSION_DENIED / INVALID_ARGUMENT / NOT_FOUND
//! answers, REST and gRPC parity, the audit tail, and TLS 1.3 only.

use crate::support::*;
use grpcio::{CallOption, ChannelBuilder, Environment, MetadataBuilder, RpcStatusCode};
use mcr::grpc::mcr as pb;
use mcr::grpc::mcr_grpc as rpc;
use std::sync::Arc;

fn channel(srv: &Server) -> grpcio::Channel {
    let env = Arc::new(Environment::new(1));
    ChannelBuilder::new(env).connect(&srv.grpc.to_string())
}

fn auth(value: &str) -> CallOption {
    let mut md = MetadataBuilder::new();
    md.add_str("authorization", value).unwrap();
    CallOption::default().headers(md.build())
}

fn code<T: std::fmt::Debug>(r: grpcio::Result<T>) -> RpcStatusCode {
    match r {
        Err(grpcio::Error::RpcFailure(s)) => s.code(),
        other => panic!("expected an RPC failure, got {other:?}"),
    }
}

fn add_user(srv: &Server, name: &str, pass: &str) {
    let body = format!(r#"{{"username":"{name}","password":"{pass}"}}"#);
    assert_eq!(srv.http("POST", "/v1/users", &[], body.as_bytes()).status, 201);
}

#[test]
fn every_rpc_authenticates_authorizes_and_validates() {
    let srv = Server::start();
    add_user(&srv, "bob", "bob-password-1");
    srv.push_image("lib/app", "v1", 1);
    let ch = channel(&srv);
    let admin = rpc::AdminServiceClient::new(ch.clone());
    let registry = rpc::RegistryServiceClient::new(ch.clone());
    let policy = rpc::PolicyServiceClient::new(ch.clone());
    let audit = rpc::AuditServiceClient::new(ch);
    let (a, b, none) =
        (auth(&srv.admin_auth()), auth(&basic("bob", "bob-password-1")), CallOption::default());
    let e = pb::Empty::new();

    // Health bypasses authentication; Status needs any user.
    assert_eq!(admin.health_opt(&e, none.clone()).unwrap().get_status(), "ok");
    assert_eq!(code(admin.status_opt(&e, none.clone())), RpcStatusCode::UNAUTHENTICATED);
    assert_eq!(admin.status_opt(&e, b.clone()).unwrap().get_counts().get_repositories(), 1);
    assert_eq!(code(admin.status_opt(&e, auth(&basic("bob", "wrong")))), RpcStatusCode::UNAUTHENTICATED);

    // Every admin RPC: UNAUTHENTICATED without credentials, PERMISSION_DENIED for bob, OK for the admin.
    macro_rules! check {
        ($call:expr) => {{
            assert_eq!(code($call(none.clone())), RpcStatusCode::UNAUTHENTICATED, stringify!($call));
            assert_eq!(code($call(b.clone())), RpcStatusCode::PERMISSION_DENIED, stringify!($call));
            $call(a.clone()).unwrap()
        }};
    }
    let mut repo = pb::RepositoryRequest::new();
    repo.set_name("lib/app".into());
    let mut manifest = pb::ManifestRequest::new();
    manifest.set_name("lib/app".into());
    manifest.set_reference("v1".into());
    let mut rule = pb::Rule::new();
    rule.set_effect("allow".into());
    rule.set_actions(vec!["pull".to_string()].into());
    rule.set_usernames(vec!["ci".to_string()].into());
    rule.set_enabled(true);
    let mut eval = pb::EvaluateRequest::new();
    eval.set_username("ci".into());
    eval.set_account_type("system".into());
    eval.set_action("pull".into());
    eval.set_repository("lib/app".into());

    let list = check!(|o| registry.list_repositories_opt(&pb::ListRepositoriesRequest::new(), o));
    assert_eq!(list.get_repositories()[0].get_name(), "lib/app");
    let detail = check!(|o| registry.get_repository_opt(&repo, o));
    assert_eq!(detail.get_tags()[0].get_name(), "v1");
    let m = check!(|o| registry.get_manifest_opt(&manifest, o));
    assert_eq!(m.get_layers().len(), 1);
    let created = check!(|o| policy.create_opt(&rule, o));
    assert!(created.get_id() > 0);
    let mut id = pb::RuleId::new();
    id.set_id(created.get_id());
    assert_eq!(check!(|o| policy.get_opt(&id, o)).get_usernames(), ["ci"]);
    assert_eq!(check!(|o| policy.list_opt(&e, o)).get_rules().len(), 1);
    let d = check!(|o| policy.evaluate_opt(&eval, o));
    assert!(d.get_allowed());
    assert_eq!(d.get_rules()[0].get_id(), created.get_id());
    let mut toggle = pb::SetEnabledRequest::new();
    toggle.set_id(created.get_id());
    assert!(!check!(|o| policy.set_enabled_opt(&toggle, o)).get_enabled());
    let mut upd = pb::UpdateRuleRequest::new();
    upd.set_id(created.get_id());
    let mut r2 = rule.clone();
    r2.set_effect("deny".into());
    upd.set_rule(r2);
    assert_eq!(check!(|o| policy.update_opt(&upd, o)).get_effect(), "deny");
    check!(|o| policy.delete_opt(&id, o));
    assert_eq!(check!(|o| audit.verify_opt(&e, o)).get_first_broken(), 0);
    assert!(!check!(|o| audit.query_opt(&pb::AuditQuery::new(), o)).get_events().is_empty());
    check!(|o| admin.get_gc_status_opt(&e, o));
    assert!(check!(|o| admin.trigger_gc_opt(&e, o)).get_run_id() > 0);
    check!(|o| admin.reconcile_opt(&e, o));
    if on_postgres() {
        // PostgreSQL is backed up with pg_dump: the RPC says so.
        let err = admin.snapshot_opt(&e, a.clone()).unwrap_err();
        assert!(format!("{err:?}").contains("pg_dump"), "{err:?}");
    } else {
        assert!(check!(|o| admin.snapshot_opt(&e, o)).get_path().contains("snapshots"));
    }
    let mut tag = pb::DeleteTagRequest::new();
    tag.set_name("lib/app".into());
    tag.set_tag("v1".into());
    check!(|o| registry.delete_tag_opt(&tag, o));
    check!(|o| registry.delete_repository_opt(&repo, o));

    // Bad input and not found.
    let mut bad = pb::RepositoryRequest::new();
    bad.set_name("Bad/Name".into());
    assert_eq!(code(registry.get_repository_opt(&bad, a.clone())), RpcStatusCode::INVALID_ARGUMENT);
    assert_eq!(code(registry.get_repository_opt(&repo, a.clone())), RpcStatusCode::NOT_FOUND);
    assert_eq!(code(policy.get_opt(&id, a.clone())), RpcStatusCode::NOT_FOUND);
    let mut bad_rule = rule.clone();
    bad_rule.set_effect("maybe".into());
    assert_eq!(code(policy.create_opt(&bad_rule, a.clone())), RpcStatusCode::INVALID_ARGUMENT);
    let mut bad_glob = rule.clone();
    bad_glob.set_repositories(vec!["[".to_string()].into());
    assert_eq!(code(policy.create_opt(&bad_glob, a.clone())), RpcStatusCode::INVALID_ARGUMENT);
    let mut bad_eval = eval.clone();
    bad_eval.set_action("fly".into());
    assert_eq!(code(policy.evaluate_opt(&bad_eval, a.clone())), RpcStatusCode::INVALID_ARGUMENT);
    let mut bad_ref = manifest.clone();
    bad_ref.set_reference("sha256:zz".into());
    assert_eq!(code(registry.get_manifest_opt(&bad_ref, a)), RpcStatusCode::INVALID_ARGUMENT);

    // A Bearer token from the token endpoint works over gRPC too.
    let token = srv.http("GET", "/v2/token", &[], b"").json()["token"].as_str().unwrap().to_string();
    let bearer = auth(&format!("Bearer {token}"));
    assert!(admin.get_gc_status_opt(&e, bearer).is_ok());

    // The log has a line per RPC and never the credentials.
    let log = srv.log();
    assert!(!log.contains(&token), "no token in the log");
    assert!(log.contains("grpc req=") && log.contains("method=AdminService/Health"), "{log}");
    assert!(!log.contains(&srv.admin) || log.lines().filter(|l| l.contains(&srv.admin)).count() == 1);
    assert!(!log.contains("bob-password-1"));
}

#[test]
fn rest_and_grpc_agree() {
    let srv = Server::start();
    let (_, d) = srv.push_image("par/app", "v1", 2);
    srv.push_image("par/other", "latest", 3);
    let ch = channel(&srv);
    let a = auth(&srv.admin_auth());
    let admin = rpc::AdminServiceClient::new(ch.clone());
    let registry = rpc::RegistryServiceClient::new(ch.clone());
    let policy = rpc::PolicyServiceClient::new(ch);

    let rest = srv.http("GET", "/v1/status", &[], b"").json();
    let g = admin.status_opt(&pb::Empty::new(), a.clone()).unwrap();
    let c = g.get_counts();
    assert_eq!(
        (c.get_repositories(), c.get_manifests(), c.get_tags(), c.get_blobs(), c.get_storage_bytes()),
        (
            rest["counts"]["repositories"].as_i64().unwrap(),
            rest["counts"]["manifests"].as_i64().unwrap(),
            rest["counts"]["tags"].as_i64().unwrap(),
            rest["counts"]["blobs"].as_i64().unwrap(),
            rest["counts"]["storage_bytes"].as_i64().unwrap()
        )
    );
    assert_eq!(g.get_version(), rest["version"]);

    let rest = srv.http("GET", "/v1/repositories", &[], b"").json();
    let g = registry.list_repositories_opt(&pb::ListRepositoriesRequest::new(), a.clone()).unwrap();
    assert_eq!(g.get_repositories().len(), rest["repositories"].as_array().unwrap().len());
    for (x, y) in g.get_repositories().iter().zip(rest["repositories"].as_array().unwrap()) {
        assert_eq!(x.get_name(), y["name"]);
        assert_eq!(x.get_tags(), y["tags"].as_i64().unwrap());
        assert_eq!(x.get_manifests(), y["manifests"].as_i64().unwrap());
        assert_eq!(x.get_size_bytes(), y["size_bytes"].as_i64().unwrap());
        assert_eq!(x.get_created_at(), y["created_at"].as_i64().unwrap());
    }

    let rest = srv.http("GET", "/v1/repositories/par/app/manifests/v1", &[], b"").json();
    let mut req = pb::ManifestRequest::new();
    req.set_name("par/app".into());
    req.set_reference("v1".into());
    let g = registry.get_manifest_opt(&req, a.clone()).unwrap();
    assert_eq!(g.get_digest(), d);
    assert_eq!(g.get_digest(), rest["digest"]);
    assert_eq!(g.get_media_type(), rest["media_type"]);
    assert_eq!(g.get_size(), rest["size"].as_u64().unwrap());
    assert_eq!(g.get_tags(), ["v1"]);
    assert_eq!(g.get_config().get_digest(), rest["config"]["digest"]);
    assert_eq!(g.get_layers()[0].get_digest(), rest["layers"][0]["digest"]);
    assert_eq!(g.get_artifact_type(), rest["artifact_type"]);

    let body =
        br#"{"priority":3,"effect":"allow","actions":["push"],"repositories":["par/*"],"roles":["dev"]}"#;
    let created = srv.http("POST", "/v1/policy/rules", &[], body).json();
    let listed = policy.list_opt(&pb::Empty::new(), a.clone()).unwrap();
    let r = &listed.get_rules()[0];
    assert_eq!(r.get_id(), created["id"].as_i64().unwrap());
    assert_eq!((r.get_priority(), r.get_effect()), (3, "allow"));
    assert_eq!(r.get_actions(), ["push"]);
    assert_eq!(r.get_repositories(), ["par/*"]);
    assert_eq!(r.get_roles(), ["dev"]);
    let rest = srv
        .http("POST", "/v1/policy/evaluate", &[], br#"{"username":"x","roles":["dev"],"account_type":"system","action":"push","repository":"par/app"}"#)
        .json();
    let mut eval = pb::EvaluateRequest::new();
    eval.set_username("x".into());
    eval.set_roles(vec!["dev".to_string()].into());
    eval.set_account_type("system".into());
    eval.set_action("push".into());
    eval.set_repository("par/app".into());
    let g = policy.evaluate_opt(&eval, a).unwrap();
    assert_eq!(g.get_allowed(), rest["allowed"].as_bool().unwrap());
    assert_eq!(g.get_reason(), rest["reason"]);
    let ids: Vec<i64> = g.get_rules().iter().map(|r| r.get_id()).collect();
    let rest_ids: Vec<i64> =
        rest["rules"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, rest_ids);
}

#[test]
fn audit_tail_streams_new_events_in_order_and_ends_with_the_client() {
    use futures_util::StreamExt as _;
    let srv = Arc::new(Server::start());
    srv.push_image("before", "v1", 4); // before the tail opens: not streamed
    let audit = rpc::AuditServiceClient::new(channel(&srv));
    let mut stream = audit.tail_opt(&pb::TailRequest::new(), auth(&srv.admin_auth())).unwrap();
    // The client cannot tell when the server has opened the tail, so push
    // until events arrive; the first two seen must be in push order.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pusher = {
        let (srv, stop) = (srv.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && i < 200 {
                srv.push_image("tailed", &format!("t{i:03}"), 100 + i);
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let collector = std::thread::spawn(move || {
        let mut got = Vec::new();
        futures_executor::block_on(async {
            while got.len() < 3 {
                let ev = stream.next().await.unwrap().unwrap();
                assert_ne!(ev.get_repository(), "before", "only events after the tail opened");
                if ev.get_event_type() == "push" {
                    got.push((ev.get_id(), ev.get_reference().to_string()));
                }
            }
        });
        let _ = tx.send(got);
        stream
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("tail delivered events");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    pusher.join().unwrap();
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "in order: {got:?}");
    // Unauthenticated tails are refused.
    let mut anon = audit.tail_opt(&pb::TailRequest::new(), CallOption::default()).unwrap();
    let first = futures_executor::block_on(anon.next()).unwrap();
    assert!(
        matches!(first, Err(grpcio::Error::RpcFailure(ref s)) if s.code() == RpcStatusCode::UNAUTHENTICATED)
    );
    // The client goes away: the server ends the tail at the next event.
    drop(collector.join().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(200));
    srv.push_image("tailed", "zzz", 7);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !srv.log().contains("grpc tail ended") {
        assert!(std::time::Instant::now() < deadline, "tail did not end: {}", srv.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn grpc_over_tls13_only() {
    let certs = Certs::new();
    let (cert, key) = (certs.path("server.crt"), certs.path("server.key"));
    let srv = Server::start_args(&["--tls-cert", &cert, "--tls-key", &key]);
    let ca = std::fs::read(certs.path("ca.crt")).unwrap();
    let creds = grpcio::ChannelCredentialsBuilder::new().root_cert(ca).build();
    let env = Arc::new(Environment::new(1));
    let ch = ChannelBuilder::new(env)
        .override_ssl_target("localhost")
        .set_credentials(creds)
        .connect(&srv.grpc.to_string());
    let admin = rpc::AdminServiceClient::new(ch);
    assert_eq!(admin.health(&pb::Empty::new()).unwrap().get_status(), "ok");
    assert!(admin.status_opt(&pb::Empty::new(), auth(&srv.admin_auth())).is_ok());
    // TLS 1.2 is refused; TLS 1.3 with ALPN h2 is accepted.
    let s_client = |v: &str| {
        std::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &srv.grpc.to_string(),
                v,
                "-alpn",
                "h2",
                "-CAfile",
                &certs.path("ca.crt"),
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = s_client("-tls1_2");
    assert!(!out.status.success(), "TLS 1.2 refused");
    let out = s_client("-tls1_3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("TLSv1.3") && text.contains("ALPN protocol: h2"), "{text}");
}

#[test]
fn a_disabled_admins_open_tail_ends_within_a_second() {
    use futures_util::StreamExt as _;
    let srv = Server::start();
    let body = br#"{"username":"boss","password":"boss-password-1","roles":["admin"]}"#;
    assert_eq!(srv.http("POST", "/v1/users", &[("Content-Type", "application/json")], body).status, 201);
    let audit = rpc::AuditServiceClient::new(channel(&srv));
    let mut stream =
        audit.tail_opt(&pb::TailRequest::new(), auth(&basic("boss", "boss-password-1"))).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !srv.log().contains("grpc tail started user=boss") {
        assert!(std::time::Instant::now() < deadline, "tail did not start: {}", srv.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(srv.http("POST", "/v1/users/boss/disable", &[], b"").status, 204);
    let disabled = std::time::Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Events of the disable itself may come first; the stream must end.
        let end = futures_executor::block_on(async {
            loop {
                match stream.next().await {
                    Some(Ok(_)) => continue,
                    other => return other.map(|r| r.map(|_| ())),
                }
            }
        });
        let _ = tx.send(end.map(|r| r.is_err()));
    });
    // Received: the stream closed or failed (it never yields another event).
    let _ended: Option<bool> = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("the tail ended");
    assert!(disabled.elapsed() < std::time::Duration::from_millis(1500), "took {:?}", disabled.elapsed());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !srv.log().contains("caller no longer admitted") {
        assert!(std::time::Instant::now() < deadline, "{}", srv.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
