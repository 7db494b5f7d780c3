//! Authentication and policy on `/v2`, in process: challenges, the token
//! flow, Basic credentials, rate limiting, and policy decisions (system
//! accounts, deny wins, catalog filtering, mounts).

use crate::support::*;
use serde_json::json;

#[test]
fn anonymous_requests_get_a_bearer_challenge() {
    let t = TestApp::new();
    // The realm is the address the client connected to, never its Host.
    let r = t.req("GET", "/v2/").anon().header("Host", "reg.example:5000").send();
    r.expect(401, Some("UNAUTHORIZED"));
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some(r#"Bearer realm="http://127.0.0.1:5000/v2/token",service="mcr""#)
    );
    // Or the configured external URL.
    let ext = TestApp::with(|c| c.server.external_url = "https://registry.example.com/".into());
    let r = ext.req("GET", "/v2/").anon().header("Host", "evil.example").send();
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some(r#"Bearer realm="https://registry.example.com/v2/token",service="mcr""#)
    );
    assert_eq!(r.header("Docker-Distribution-API-Version"), Some("registry/2.0"));
    let r = t.req("GET", "/v2/lib/app/manifests/v1").anon().header("Host", "h").send();
    r.expect(401, Some("UNAUTHORIZED"));
    assert!(r.header("WWW-Authenticate").unwrap().ends_with(r#",scope="repository:lib/app:pull""#));
    let r = t.req("POST", "/v2/lib/app/blobs/uploads/").anon().header("Host", "h").send();
    assert!(r.header("WWW-Authenticate").unwrap().ends_with(r#",scope="repository:lib/app:pull,push""#));
    let r = t.req("GET", "/v2/_catalog").anon().header("Host", "h").send();
    assert!(r.header("WWW-Authenticate").unwrap().ends_with(r#",scope="registry:catalog:*""#));
    // Every route, not just a few.
    for (m, p) in [
        ("HEAD", "/v2/a/blobs/sha256:00"),
        ("DELETE", "/v2/a/manifests/x"),
        ("GET", "/v2/a/referrers/x"),
        ("GET", "/v2/a/tags/list"),
    ] {
        t.req(m, p).anon().send().expect(401, None);
    }
    // A quoted Host cannot break out of the challenge.
    let r = t.req("GET", "/v2/").anon().header("Host", "evil\",x=\"y").send();
    assert!(!r.header("WWW-Authenticate").unwrap().contains("evil"));
}

#[test]
fn bad_credentials_are_refused_never_downgraded() {
    let t = TestApp::new();
    for auth in [
        basic("admin", "wrong"),
        basic("nobody", "whatever"),
        "Bearer nope".into(),
        "Basic !!!".into(),
        "Negotiate x".into(),
        "Bearer".into(),
    ] {
        t.req("GET", "/v2/").auth(&auth).send().expect(401, Some("UNAUTHORIZED"));
    }
    t.req("GET", "/v2/").send().expect(200, None);
}

#[test]
fn docker_token_flow_get_and_oauth2_post() {
    let t = TestApp::new();
    let r = t.req("GET", "/v2/token?service=mcr&scope=repository:a:pull,push").send();
    r.expect(200, None);
    let v = r.json();
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["access_token"], token.as_str());
    assert!(v["expires_in"].as_i64().unwrap() > 3000);
    assert!(v["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(token.len(), 64);
    t.req("GET", "/v2/").auth(&format!("Bearer {token}")).send().expect(200, None);
    t.req("GET", "/v2/").auth(&format!("Bearer {token}x")).send().expect(401, None);

    // No credentials at the token endpoint: a Basic challenge.
    let r = t.req("GET", "/v2/token").anon().send();
    r.expect(401, Some("UNAUTHORIZED"));
    assert_eq!(r.header("WWW-Authenticate"), Some(r#"Basic realm="mcr""#));
    t.req("GET", "/v2/token").auth(&basic("admin", "bad")).send().expect(401, None);
    t.req("GET", "/v2/token").auth("Bearer x").send().expect(401, None);

    // OAuth2 password grant.
    let form = format!("grant_type=password&username=admin&password={}&service=mcr&client_id=test", t.admin);
    let r = t
        .req("POST", "/v2/token")
        .anon()
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.as_bytes())
        .send();
    r.expect(200, None);
    let token2 = r.json()["access_token"].as_str().unwrap().to_string();
    assert_ne!(token2, token);
    t.req("GET", "/v2/_catalog").auth(&format!("Bearer {token2}")).send().expect(200, None);
    for bad in [
        "grant_type=refresh_token&refresh_token=x",
        "grant_type=password&username=admin",
        "username=admin&password=x",
        "",
    ] {
        t.req("POST", "/v2/token").anon().body(bad.as_bytes()).send().expect(400, None);
    }
    t.req("POST", "/v2/token")
        .anon()
        .body(b"grant_type=password&username=admin&password=nope")
        .send()
        .expect(401, None);
    t.req("POST", "/v2/token").anon().body(&vec![b'a'; 70_000]).send().expect(413, None);
    t.req("DELETE", "/v2/token").send().expect(405, None);
}

#[test]
fn system_account_needs_a_rule_and_deny_beats_allow() {
    let t = TestApp::new();
    t.user("ci", "ci-password-1", &[], true);
    let ci = basic("ci", "ci-password-1");
    let data = b"robot layer";
    let d = sha256(data);
    let push = |auth: &str| {
        t.req("POST", &format!("/v2/team/app/blobs/uploads/?digest={d}")).auth(auth).body(data).send()
    };
    // Authenticated, may check the version, may not push.
    t.req("GET", "/v2/").auth(&ci).send().expect(200, None);
    let r = push(&ci);
    r.expect(403, Some("DENIED"));
    assert!(r.text().contains("ci may not push team/app"), "{}", r.text());
    // A rule grants push (and pull) on team/*.
    t.rule(r#"{"priority":10,"effect":"allow","actions":["push","pull"],"repositories":["team/*"],"usernames":["ci"]}"#);
    push(&ci).expect(201, None);
    t.req("GET", &format!("/v2/team/app/blobs/{d}")).auth(&ci).send().expect(200, None);
    // `*` does not cross `/`.
    t.req("POST", "/v2/team/sub/app/blobs/uploads/").auth(&ci).send().expect(403, Some("DENIED"));
    // A deny of lower precedence still wins.
    let deny = t.rule(r#"{"priority":1000,"effect":"deny","actions":["push"],"repositories":["team/app"]}"#);
    push(&ci).expect(403, Some("DENIED"));
    // ...even over the admin's built-in allow.
    t.req("POST", "/v2/team/app/blobs/uploads/").send().expect(403, Some("DENIED"));
    t.req("POST", "/v2/team/other/blobs/uploads/").auth(&ci).send().expect(202, None);
    // Disabling the deny restores access at once.
    mcr::service::policy::set_enabled(&t.admin_ctx(), deny.id, false).unwrap();
    push(&ci).expect(201, None);
}

#[test]
fn catalog_lists_only_pullable_repositories_and_mount_needs_pull_on_source() {
    let t = TestApp::new();
    for repo in ["private/a", "team/a", "team/b", "zz/c"] {
        t.image(repo, "v1", repo.len() as u64);
    }
    t.user("ci", "ci-password-1", &[], true);
    let ci = basic("ci", "ci-password-1");
    // No catalog right yet.
    t.req("GET", "/v2/_catalog").auth(&ci).send().expect(403, Some("DENIED"));
    t.rule(r#"{"effect":"allow","actions":["catalog"],"usernames":["ci"]}"#);
    t.rule(
        r#"{"effect":"allow","actions":["pull","push"],"repositories":["team/*","mine"],"usernames":["ci"]}"#,
    );
    let r = t.req("GET", "/v2/_catalog").auth(&ci).send();
    assert_eq!(r.json()["repositories"], json!(["team/a", "team/b"]));
    let r = t.req("GET", "/v2/_catalog?n=1").auth(&ci).send();
    assert_eq!(r.json()["repositories"], json!(["team/a"]));
    assert!(r.header("Link").unwrap().contains("last=team/a"));
    let r = t.req("GET", "/v2/_catalog?n=1&last=team/a").auth(&ci).send();
    assert_eq!(r.json()["repositories"], json!(["team/b"]));
    assert!(r.header("Link").is_none());
    // The admin sees everything.
    assert_eq!(t.req("GET", "/v2/_catalog").send().json()["repositories"].as_array().unwrap().len(), 4);

    // Mount: pull on the source is required, else a plain upload starts.
    let secret = t.blob("private/a", b"secret layer");
    let open = t.blob("team/a", b"open layer");
    let r = t.req("POST", &format!("/v2/mine/blobs/uploads/?mount={secret}&from=private/a")).auth(&ci).send();
    r.expect(202, None);
    t.req("GET", &format!("/v2/mine/blobs/{secret}")).auth(&ci).send().expect(404, None);
    let r = t.req("POST", &format!("/v2/mine/blobs/uploads/?mount={open}&from=team/a")).auth(&ci).send();
    r.expect(201, None);
    // Reading private/a directly is denied.
    t.req("GET", &format!("/v2/private/a/blobs/{secret}")).auth(&ci).send().expect(403, Some("DENIED"));
}

#[test]
fn failed_logins_are_rate_limited() {
    let t = TestApp::new();
    t.user("bob", "bob-password-1", &[], false);
    for _ in 0..10 {
        t.req("GET", "/v2/").auth(&basic("bob", "wrong-password")).send().expect(401, None);
    }
    let r = t.req("GET", "/v2/").auth(&basic("bob", "wrong-password")).send();
    r.expect(429, Some("TOOMANYREQUESTS"));
    assert!(r.header("Retry-After").unwrap().parse::<i64>().unwrap() > 0);
    // Blocked even with the right password, at the token endpoint too.
    t.req("GET", "/v2/").auth(&basic("bob", "bob-password-1")).send().expect(429, None);
    t.req("GET", "/v2/token").auth(&basic("bob", "bob-password-1")).send().expect(429, None);
}

#[test]
fn disabled_users_and_changed_passwords_lose_access() {
    let t = TestApp::new();
    t.user("eve", "eve-password-1", &[], false);
    let tok = t.req("GET", "/v2/token").auth(&basic("eve", "eve-password-1")).send().json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    mcr::service::users::set_password(&t.admin_ctx(), "eve", &mcr::auth::Password::new("eve-password-2"))
        .unwrap();
    // The token was never validated, so it is not cached: the session is gone.
    t.req("GET", "/v2/").auth(&format!("Bearer {tok}")).send().expect(401, None);
    t.req("GET", "/v2/").auth(&basic("eve", "eve-password-1")).send().expect(401, None);
    t.req("GET", "/v2/").auth(&basic("eve", "eve-password-2")).send().expect(200, None);
    let tok = t.req("GET", "/v2/token").auth(&basic("eve", "eve-password-2")).send().json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    mcr::service::users::set_disabled(&t.admin_ctx(), "eve", true).unwrap();
    t.req("GET", "/v2/").auth(&format!("Bearer {tok}")).send().expect(401, None);
    t.req("GET", "/v2/token").auth(&basic("eve", "eve-password-2")).send().expect(401, None);
    // Bad user input to the user service is refused with a reason.
    let p = mcr::auth::Password::new("long-enough-1");
    for (name, pass) in [("", "long-enough-1"), ("bad name", "long-enough-1"), ("x", "short")] {
        let err = mcr::service::users::add(
            &t.admin_ctx(),
            name,
            &mcr::auth::Password::new(pass),
            &[],
            mcr::policy::AccountType::Human,
        );
        assert!(matches!(err, Err(mcr::error::Error::BadRequest(_))), "{name:?}");
    }
    assert!(
        mcr::service::users::add(&t.admin_ctx(), "eve", &p, &[], mcr::policy::AccountType::Human).is_err(),
        "duplicate"
    );
}

/// The service is the gate for user management, snapshots and start-up
/// tasks, whichever frontend (or none) calls it; mcr itself acts as a
/// system actor that the audit log names.
#[test]
fn user_management_and_snapshots_are_gated_in_the_service() {
    use mcr::error::Error;
    use mcr::service::{admin, users};
    let t = TestApp::new();
    t.user("bob", "bob-password-1", &[], false);
    let who = |username: &str, roles: &[&str], scoped: bool| mcr::model::Principal {
        subject: format!("local:{username}"),
        username: username.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        account_type: mcr::policy::AccountType::Human,
        scope: scoped.then(|| {
            std::sync::Arc::new(
                mcr::model::Scope::parse_requested(["repository:a:pull"].into_iter()).unwrap(),
            )
        }),
    };
    let ctx = |actor| mcr::app::Ctx { app: &t.app, actor, req_id: "t", peer: None };
    let p = mcr::auth::Password::new("long-enough-1");
    let human = mcr::policy::AccountType::Human;
    let (bob, anon) =
        (ctx(mcr::model::Actor::User(who("bob", &[], false))), ctx(mcr::model::Actor::Anonymous));
    let scoped_admin = ctx(mcr::model::Actor::User(who("admin", &["admin"], true)));
    for (c, denied) in [(&bob, "Denied"), (&anon, "Unauthenticated"), (&scoped_admin, "InsufficientScope")] {
        let outcomes = [
            users::add(c, "mallory", &p, &["admin".into()], human).err(),
            users::set_password(c, "admin", &p).err(),
            users::set_disabled(c, "admin", true).err(),
            users::list(c).err(),
            admin::snapshot(c).err(),
        ];
        for (i, e) in outcomes.into_iter().enumerate() {
            let e = e.unwrap_or_else(|| panic!("call {i} as {denied} was allowed"));
            let kind = match e {
                Error::Denied(_) => "Denied",
                Error::Unauthenticated => "Unauthenticated",
                Error::InsufficientScope { .. } => "InsufficientScope",
                other => panic!("call {i}: unexpected {other:?}"),
            };
            assert_eq!(kind, denied, "call {i}");
        }
    }
    // Only mcr itself creates the first administrator.
    assert!(matches!(users::ensure_initial_admin(&t.admin_ctx()), Err(Error::Denied(_))));
    // The system actor passes, and the audit log says it was the system.
    let sys = mcr::app::Ctx::system(&t.app, "system:cli");
    users::add(&sys, "carol", &p, &[], human).unwrap();
    users::set_disabled(&sys, "carol", true).unwrap();
    let filter = mcr::service::audit::Filter { limit: 100, ..Default::default() };
    let rows = mcr::service::audit::query(&t.admin_ctx(), &filter).unwrap();
    for event in ["user_add", "user_disable"] {
        assert!(
            rows.iter().any(|r| r.event_type == event
                && r.actor.as_deref() == Some("system:cli")
                && r.reference.as_deref() == Some("user:carol")),
            "{event} by system:cli not audited: {rows:?}"
        );
    }
    // Nothing the refused callers tried happened.
    assert!(users::list(&sys).unwrap().iter().all(|u| u.username != "mallory"));
}
