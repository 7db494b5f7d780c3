//! The web UI's security, in process through the router: sessions and their
//! cookies, CSRF on every change, admin-only pages, caps, escaping and the
//! security headers. (The pages in a real browser: `browser.rs`.)

use crate::support::*;
use std::collections::BTreeMap;

/// A cookie-keeping client of the in-process app.
struct Browser<'a> {
    t: &'a TestApp,
    cookies: BTreeMap<String, String>,
    peer: &'static str,
}

impl<'a> Browser<'a> {
    fn new(t: &'a TestApp) -> Browser<'a> {
        Browser { t, cookies: BTreeMap::new(), peer: "127.0.0.1:40000" }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn absorb(&mut self, r: &Resp) {
        for c in r.headers_named("Set-Cookie") {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
    }

    fn get(&mut self, url: &str) -> Resp {
        let r = self.t.req("GET", url).anon().from(self.peer).header("Cookie", &self.cookie_header()).send();
        self.absorb(&r);
        r
    }

    fn post_raw(&mut self, url: &str, body: &[u8], extra: &[(&str, &str)]) -> Resp {
        let mut req = self
            .t
            .req("POST", url)
            .anon()
            .from(self.peer)
            .header("Cookie", &self.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded");
        for (k, v) in extra {
            req = req.header(k, v);
        }
        let r = req.body(body).send();
        self.absorb(&r);
        r
    }

    fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Resp {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.post_raw(url, body.as_bytes(), &[])
    }

    fn csrf(&self) -> String {
        self.cookies.get("mcr_csrf").cloned().unwrap_or_default()
    }

    /// Logs in through the form; returns the answer to the POST.
    fn login(&mut self, user: &str, pass: &str) -> Resp {
        let page = self.get("/ui/login");
        assert_eq!(page.status, 200, "{}", page.text());
        let token = form_csrf(&page.text());
        self.post("/ui/login", &[("csrf", &token), ("username", user), ("password", pass)])
    }
}

/// The CSRF field of the first form on a page.
fn form_csrf(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
    let end = html[at..].find('"').unwrap();
    html[at..at + end].to_string()
}

#[track_caller]
fn to_login(r: &Resp) {
    assert_eq!((r.status, r.header("Location")), (303, Some("/ui/login")), "{}", r.text());
}

#[test]
fn login_sets_strict_cookies_and_a_new_session_id() {
    let t = TestApp::new();
    let mut b = Browser::new(&t);
    to_login(&b.get("/ui/"));
    assert_eq!(b.get("/").header("Location"), Some("/ui/"));
    let page = b.get("/ui/login");
    let pre = b.cookies["mcr_prelogin"].clone();
    let cookie = page.headers_named("Set-Cookie").join("\n");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let r = b.post(
        "/ui/login",
        &[("csrf", &form_csrf(&page.text())), ("username", "admin"), ("password", &t.admin)],
    );
    assert_eq!((r.status, r.header("Location")), (303, Some("/ui/")), "{}", r.text());
    let set = r.headers_named("Set-Cookie");
    let session = set.iter().find(|c| c.starts_with("mcr_session=")).expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/;"] {
        assert!(session.contains(flag), "{flag} missing: {session}");
    }
    assert!(!session.contains("Secure"), "Secure is relaxed on a plain-HTTP loopback listener: {session}");
    assert!(!b.cookies.contains_key("mcr_prelogin"), "the pre-login cookie is cleared");
    let id = b.cookies["mcr_session"].clone();
    assert_ne!(id, pre, "a new id at login");
    let home = b.get("/ui/");
    assert_eq!(home.status, 200);
    assert!(home.text().contains(r#"id="whoami">admin<"#), "{}", home.text());
    // The pre-login id is no session, before or after the login.
    let mut other = Browser::new(&t);
    other.cookies.insert("mcr_session".into(), pre);
    to_login(&other.get("/ui/"));
    // Bad passwords: the form comes back with a message; the failure is audited.
    let mut eve = Browser::new(&t);
    let r = eve.login("admin", "wrong-password");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Wrong username or password"), "{}", r.text());
    assert!(!eve.cookies.contains_key("mcr_session"));
    t.app.audit.flush();
    let rows = mcr::service::audit::query(
        &t.admin_ctx(),
        &mcr::service::audit::Filter {
            event_type: Some("login_failed".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(rows.iter().any(|r| r.detail.contains(r#""method":"ui""#)), "{rows:?}");
    // A login form without its pre-login token is refused.
    let r = Browser::new(&t).post("/ui/login", &[("username", "admin"), ("password", &t.admin)]);
    assert_eq!(r.status, 403, "{}", r.text());
}

#[test]
fn every_change_needs_this_sessions_csrf_token() {
    let t = TestApp::new();
    let mut a = Browser::new(&t);
    a.login("admin", &t.admin);
    let mut other = Browser::new(&t);
    other.login("admin", &t.admin);
    let users = |t: &TestApp| -> Vec<String> {
        mcr::service::users::list(&t.admin_ctx()).unwrap().into_iter().map(|u| u.username).collect()
    };
    let form = |csrf: &str, name: &str| -> Vec<(String, String)> {
        vec![
            ("csrf".into(), csrf.into()),
            ("username".into(), name.into()),
            ("password".into(), "long-enough-1".into()),
        ]
    };
    let post = |b: &mut Browser, f: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        b.post("/ui/users", &pairs)
    };
    // No token.
    let r = a.post("/ui/users", &[("username", "mallory1"), ("password", "long-enough-1")]);
    assert_eq!(r.status, 403, "{}", r.text());
    // A forged token, in the form and the cookie alike.
    let forged = "ab".repeat(32);
    let saved = a.csrf();
    a.cookies.insert("mcr_csrf".into(), forged.clone());
    assert_eq!(post(&mut a, form(&forged, "mallory2")).status, 403);
    a.cookies.insert("mcr_csrf".into(), saved.clone());
    // Another session's valid token (and cookie).
    let theirs = other.csrf();
    a.cookies.insert("mcr_csrf".into(), theirs.clone());
    assert_eq!(post(&mut a, form(&theirs, "mallory3")).status, 403);
    a.cookies.insert("mcr_csrf".into(), saved.clone());
    // The right token in the form but not in the cookie.
    a.cookies.remove("mcr_csrf");
    assert_eq!(post(&mut a, form(&saved, "mallory4")).status, 403);
    a.cookies.insert("mcr_csrf".into(), saved.clone());
    assert!(users(&t).iter().all(|u| !u.starts_with("mallory")), "nothing changed: {:?}", users(&t));
    // The right token: in the form, or in htmx's header.
    let r = post(&mut a, form(&saved, "carol"));
    assert_eq!((r.status, r.header("Location")), (303, Some("/ui/users?done=user_added")), "{}", r.text());
    let body = b"username=dave&password=long-enough-1";
    let r = a.post_raw("/ui/users", body, &[("X-CSRF-Token", &saved), ("HX-Request", "true")]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(users(&t).contains(&"carol".to_string()) && users(&t).contains(&"dave".to_string()));
    // A GET never changes state: the action routes do not answer GET.
    assert_eq!(a.get("/ui/gc").status, 404);
    assert_eq!(a.get("/ui/logout").status, 404);
    assert_eq!(a.get("/ui/").status, 200, "still logged in");
}

#[test]
fn logout_password_change_and_disable_end_sessions() {
    let t = TestApp::new();
    t.user("bob", "bob-password-1", &[], false);
    let mut admin = Browser::new(&t);
    admin.login("admin", &t.admin);
    let mut bob = Browser::new(&t);
    assert_eq!(bob.login("bob", "bob-password-1").status, 303);
    assert_eq!(bob.get("/ui/").status, 200);
    let csrf = admin.csrf();
    let r = admin
        .post("/ui/users/password", &[("csrf", &csrf), ("username", "bob"), ("password", "bob-password-2")]);
    assert_eq!(r.status, 303, "{}", r.text());
    to_login(&bob.get("/ui/"));
    assert_eq!(bob.login("bob", "bob-password-2").status, 303);
    assert_eq!(bob.get("/ui/").status, 200);
    let r = admin.post("/ui/users/state", &[("csrf", &csrf), ("username", "bob"), ("disabled", "true")]);
    assert_eq!(r.status, 303);
    to_login(&bob.get("/ui/"));
    assert_eq!(bob.login("bob", "bob-password-2").status, 401, "a disabled user cannot log in");
    // Logout ends the session on the server, not just in the browser.
    let id = admin.cookies["mcr_session"].clone();
    let r = admin.post("/ui/logout", &[("csrf", &csrf)]);
    assert_eq!((r.status, r.header("Location")), (303, Some("/ui/login")));
    assert!(!admin.cookies.contains_key("mcr_session"), "the cookie is cleared");
    admin.cookies.insert("mcr_session".into(), id);
    to_login(&admin.get("/ui/"));
}

#[test]
fn a_non_admin_sees_what_policy_lets_them_pull_and_no_admin_page() {
    let t = TestApp::new();
    // A machine account: by default it may pull nothing (humans may pull all).
    t.user("bob", "bob-password-1", &[], true);
    t.image("team/app", "v1", 1);
    t.image("secret/app", "v1", 2);
    t.rule(r#"{"effect":"allow","actions":["pull"],"repositories":["team/*"],"usernames":["bob"]}"#);
    let mut bob = Browser::new(&t);
    bob.login("bob", "bob-password-1");
    let csrf = bob.csrf();
    let list = bob.get("/ui/repos").text();
    assert!(list.contains("team/app") && !list.contains("secret/app"), "{list}");
    assert_eq!(bob.get("/ui/repo?name=team/app").status, 200);
    assert_eq!(bob.get("/ui/repo?name=secret/app").status, 403);
    let home = bob.get("/ui/").text();
    assert!(!home.contains("/ui/users") && !home.contains("run-gc"), "no admin links for bob: {home}");
    for page in ["/ui/users", "/ui/policy", "/ui/audit", "/ui/repo/delete?name=team/app"] {
        assert_eq!(bob.get(page).status, 403, "{page}");
    }
    for (action, form) in [
        ("/ui/gc", vec![]),
        ("/ui/users", vec![("username", "mallory"), ("password", "long-enough-1")]),
        ("/ui/tag/delete", vec![("repo", "team/app"), ("tag", "v1")]),
        ("/ui/repo/delete", vec![("name", "team/app")]),
        ("/ui/policy/delete", vec![("id", "1")]),
    ] {
        let mut f = vec![("csrf", csrf.as_str())];
        f.extend(form);
        assert_eq!(bob.post(action, &f).status, 403, "{action}");
    }
    let admin = t.admin_ctx();
    assert!(mcr::service::users::list(&admin).unwrap().iter().all(|u| u.username != "mallory"));
    assert!(t.req("GET", "/v2/team/app/manifests/v1").send().status == 200, "the tag is still there");
}

#[test]
fn forms_are_capped_and_content_is_escaped() {
    let t = TestApp::new();
    let mut a = Browser::new(&t);
    a.login("admin", &t.admin);
    let csrf = a.csrf();
    let big = format!("csrf={csrf}&username=x&password={}", "a".repeat(70 * 1024));
    assert_eq!(a.post_raw("/ui/users", big.as_bytes(), &[]).status, 413);
    assert_eq!(Browser::new(&t).post_raw("/ui/login", big.as_bytes(), &[]).status, 413);
    // An image whose annotations and labels carry markup.
    let evil = r#"<script>alert("x")</script>'"&"#;
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Labels": { "evil": evil }, "Entrypoint": [evil] }
    })
    .to_string()
    .into_bytes();
    let cd = t.blob("team/app", &config);
    let layer = bytes(7, 100);
    let ld = t.blob("team/app", &layer);
    let mut m: serde_json::Value =
        serde_json::from_slice(&image_manifest((&cd, config.len()), &[(&ld, layer.len())], None)).unwrap();
    m["annotations"] = serde_json::json!({ evil: evil });
    let body = serde_json::to_vec(&m).unwrap();
    assert_eq!(t.manifest("team/app", "v1", OCI_MANIFEST, &body).status, 201);
    let page = a.get(&format!("/ui/manifest?repo=team/app&ref={}", sha256(&body)));
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(!html.contains("<script>alert"), "markup from the image is escaped: {html}");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"), "{html}");
    assert!(html.contains("docker pull 127.0.0.1:5000/team/app@sha256:"), "a pull line by digest");
    // What the user typed comes back escaped too.
    let r = a.get("/ui/repos?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert!(!r.text().contains("<script>alert(1)"), "{}", r.text());
    let r = a.post("/ui/users", &[("csrf", &csrf), ("username", "<b>x</b>"), ("password", "long-enough-1")]);
    assert_eq!(r.status, 400, "bad input: the page again, with a message");
    assert!(r.text().contains("is invalid") && !r.text().contains("<b>x</b>"), "{}", r.text());
    // Security headers on pages, errors and assets alike.
    for url in ["/ui/", "/ui/login", "/ui/nope", "/ui/static/style.css", "/ui/static/htmx.min.js"] {
        let r = a.get(url);
        let csp = r.header("Content-Security-Policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{url}: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{url}: {csp}");
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"), "{url}");
        assert_eq!(r.header("Referrer-Policy"), Some("same-origin"), "{url}");
    }
    assert_eq!(a.get("/ui/nope").status, 404);
    assert!(a.get("/ui/static/htmx.min.js").text().contains("htmx"), "htmx is embedded");
}

#[test]
fn bad_input_comes_back_as_a_page_with_a_message() {
    let t = TestApp::new();
    let mut a = Browser::new(&t);
    a.login("admin", &t.admin);
    let csrf = a.csrf();
    for (url, query) in [
        ("/ui/repo", "name=Not%20A%20Name"),
        ("/ui/manifest", "repo=a&ref=%3C%3E"),
        ("/ui/audit", "since=yesterday"),
        ("/ui/repos", "last=zzz&q=".to_owned().leak()),
        ("/ui/policy", "explain=1&username=bob&action=fly"),
    ] {
        let r = a.get(&format!("{url}?{query}"));
        assert!(matches!(r.status, 200 | 400 | 404), "{url}?{query}: {}", r.status);
        assert!(r.text().starts_with("<!DOCTYPE html>"), "{url}?{query}: an HTML page: {}", r.text());
    }
    let r = a.post(
        "/ui/policy",
        &[("csrf", &csrf), ("priority", "soon"), ("effect", "allow"), ("description", "kept as typed")],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("priority must be a whole number") && r.text().contains("kept as typed"),
        "{}",
        r.text()
    );
    let r = a.post("/ui/policy/toggle", &[("csrf", &csrf), ("id", "999999"), ("enabled", "false")]);
    assert_eq!(r.status, 404);
}

/// The dashboard's activity comes from daily counts kept with the audit
/// log, not from scanning it.
#[test]
fn activity_counts_pushes_and_pulls_per_day() {
    let t = TestApp::new();
    t.image("team/app", "v1", 1);
    t.image("team/app", "v2", 2);
    for _ in 0..3 {
        t.req("GET", "/v2/team/app/manifests/v1").header("Accept", OCI_MANIFEST).send().expect(200, None);
    }
    let a = mcr::service::browse::activity(&t.admin_ctx(), 14).unwrap();
    assert_eq!(a.pushes_per_day.len(), 14, "one entry per day");
    assert_eq!(a.pushes_per_day.last().unwrap().1, 2, "{:?}", a.pushes_per_day);
    assert_eq!(a.pulls_per_day.last().unwrap().1, 3, "{:?}", a.pulls_per_day);
    assert_eq!(a.pushes_per_day.iter().map(|(_, n)| n).sum::<i64>(), 2);
    assert_eq!(a.recent_pushes.len(), 2);
    assert_eq!(a.recent_pushes[0].reference.as_deref(), Some("v2"), "newest first");
}

/// A repository's tags come a page at a time, so a repository with many
/// tags costs the same to show as one with few.
#[test]
fn repository_tags_are_paged() {
    let t = TestApp::new();
    let (m, _) = t.image("big/repo", "t000", 1);
    for i in 1..105 {
        assert_eq!(t.manifest("big/repo", &format!("t{i:03}"), OCI_MANIFEST, &m).status, 201);
    }
    let mut a = Browser::new(&t);
    a.login("admin", &t.admin);
    let first = a.get("/ui/repo?name=big/repo").text();
    assert_eq!(first.matches("<td class=\"mono\">t").count(), 100, "one page of tags");
    assert!(
        first.contains("105 tags") && first.contains("/ui/repo?name=big%2Frepo&amp;last=t099"),
        "{first}"
    );
    let second = a.get("/ui/repo?name=big/repo&last=t099").text();
    assert_eq!(second.matches("<td class=\"mono\">t").count(), 5);
    assert!(!second.contains("next-page"), "the last page has no next");
}

/// A page cursor never names a repository the caller may not pull, even
/// when the page stops at the scan cap among thousands of them.
#[test]
fn page_cursors_do_not_leak_hidden_repositories() {
    let t = TestApp::new();
    t.user("ci", "ci-password-1", &[], true);
    t.rule(r#"{"effect":"allow","actions":["pull"],"repositories":["pub/*"],"usernames":["ci"]}"#);
    for name in ["pub/a", "pub/b", "zzz/visible-to-admin"] {
        t.blob(name, name.as_bytes());
    }
    for i in 0..5100 {
        t.blob(&format!("secret/r{i:05}"), b"s");
    }
    let mut ci = Browser::new(&t);
    ci.login("ci", "ci-password-1");
    let mut url = "/ui/repos".to_string();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let page = ci.get(&url).text();
        assert!(
            !page.contains("secret/"),
            "a hidden name on {url}: {}",
            &page[page.len().saturating_sub(800)..]
        );
        seen.extend(["pub/a", "pub/b"].into_iter().filter(|n| page.contains(&format!(">{n}<"))));
        match page.find("id=\"next-page\" href=\"") {
            Some(at) => {
                let href = &page[at + "id=\"next-page\" href=\"".len()..];
                url = href[..href.find('"').unwrap()].replace("&amp;", "&");
            }
            None => break,
        }
    }
    assert_eq!(seen, ["pub/a", "pub/b"], "every visible repository, once");
    let forged = ci.get("/ui/repos?last=~x~y");
    assert_eq!(forged.status, 400, "a malformed cursor is refused");
}

/// One user keeps at most ten UI sessions: logging in again and again ends
/// the oldest instead of growing the table.
#[test]
fn a_user_keeps_at_most_ten_sessions() {
    let t = TestApp::new();
    let mut browsers: Vec<Browser> = (0..12).map(|_| Browser::new(&t)).collect();
    for b in browsers.iter_mut() {
        assert_eq!(b.login("admin", &t.admin).status, 303);
    }
    let alive = browsers.iter_mut().map(|b| b.get("/ui/").status).filter(|s| *s == 200).count();
    assert_eq!(alive, 10);
    assert_eq!(browsers[11].get("/ui/").status, 200, "the newest session lives");
}

/// A login form token is good for that form only: a session's id and CSRF
/// token do not pass as a pre-login pair.
#[test]
fn session_tokens_do_not_pass_for_a_login_form() {
    let t = TestApp::new();
    let mut a = Browser::new(&t);
    a.login("admin", &t.admin);
    let (id, csrf) = (a.cookies["mcr_session"].clone(), a.csrf());
    let mut b = Browser::new(&t);
    b.cookies.insert("mcr_prelogin".into(), id);
    let r = b.post("/ui/login", &[("csrf", &csrf), ("username", "admin"), ("password", &t.admin)]);
    assert_eq!(r.status, 403, "{}", r.text());
}

/// A UI session ends when unused for `ui.session_idle`, and at
/// `ui.session_max` after its login however much it is used.
#[test]
fn sessions_expire_when_idle_and_at_their_maximum() {
    let clock = TestClock::new();
    let t = TestApp::with_clock(
        |c| {
            c.ui.session_idle = "10m".into();
            c.ui.session_max = "1h".into();
        },
        clock.clone(),
    );
    let mut a = Browser::new(&t);
    a.login("admin", &t.admin);
    clock.advance(9 * 60);
    assert_eq!(a.get("/ui/").status, 200, "used within the idle time");
    clock.advance(11 * 60);
    to_login(&a.get("/ui/"));
    let mut b = Browser::new(&t);
    b.login("admin", &t.admin);
    for _ in 0..6 {
        clock.advance(9 * 60);
        assert_eq!(b.get("/ui/").status, 200, "kept alive by use");
    }
    // 63 minutes after the login: past the maximum, used or not.
    clock.advance(9 * 60);
    to_login(&b.get("/ui/"));
}
