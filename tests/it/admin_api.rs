//! The `/v1` admin REST API: every route's success, 401, 403, bad input and
//! not-found answers; the OpenAPI document checked against the routes;
//! snapshots taken while writes go on, and restored.

use crate::support::*;
use serde_json::{json, Value};
use std::process::Command;

fn bob(t: &TestApp) -> String {
    t.user("bob", "bob-password-1", &[], false);
    basic("bob", "bob-password-1")
}

/// A concrete path for a route template.
fn concrete(template: &str) -> String {
    template
        .replace("{name}", "lib/app")
        .replace("{tag}", "v1")
        .replace("{reference}", "v1")
        .replace("{id}", "1")
        .replace("{username}", "bob")
}

#[test]
fn every_route_authenticates_authorizes_and_is_documented() {
    let t = TestApp::new();
    let bob = bob(&t);
    t.image("lib/app", "v1", 1);
    let doc = t.req("GET", "/v1/openapi.json").anon().send();
    doc.expect(200, None);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut documented = 0;
    for (method, template, _, access) in mcr::admin_api::ROUTES {
        let op = &doc["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} documented");
        documented += 1;
        let path = concrete(template);
        let anon = t.req(method, &path).anon().send();
        let as_bob = t.req(method, &path).auth(&bob).send();
        match access {
            mcr::admin_api::Access::Public => assert_eq!(anon.status, 200, "{method} {path}"),
            mcr::admin_api::Access::User => {
                assert_eq!(anon.status, 401, "{method} {path}");
                assert_eq!(as_bob.status, 200, "{method} {path}");
            }
            mcr::admin_api::Access::Admin => {
                assert_eq!(anon.status, 401, "{method} {path}: {}", anon.text());
                assert_eq!(anon.json()["error"]["code"], "UNAUTHENTICATED");
                assert_eq!(as_bob.status, 403, "{method} {path}: {}", as_bob.text());
                assert_eq!(as_bob.json()["error"]["code"], "PERMISSION_DENIED");
            }
        }
        // The route exists: never a routing 404 or a 405 for its own method.
        if !(*method == "DELETE"
            || template.ends_with("/enable")
            || template.ends_with("/disable")
            || *method == "PUT")
        {
            let r = t.req(method, &path).header("Content-Type", "application/json").body(b"{}").send();
            assert!(r.status != 405, "{method} {path}: {}", r.text());
            if r.status == 404 {
                assert_ne!(r.json()["error"]["message"], "route not found", "{method} {path}");
            }
        }
    }
    assert_eq!(documented, mcr::admin_api::ROUTES.len());
    assert_eq!(doc["paths"].as_object().unwrap().len(), {
        let mut v: Vec<&str> = mcr::admin_api::ROUTES.iter().map(|r| r.1).collect();
        v.dedup();
        v.sort();
        v.dedup();
        v.len()
    });
    t.req("GET", "/v1/nothing/here").send().expect(404, None);
    t.req("PATCH", "/v1/status").send().expect(405, None);
}

#[test]
fn status_repositories_tags_and_manifest_detail() {
    let t = TestApp::new();
    let (m, d) = t.image("lib/app", "v1", 1);
    t.manifest("lib/app", "v2", OCI_MANIFEST, &m).expect(201, None);
    t.image("lib/other", "latest", 2);
    // An index and a referrer, for the detail.
    let idx = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": m.len(), "platform": {"architecture": "arm64", "os": "linux"}}]})).unwrap();
    t.manifest("lib/app", "multi", OCI_INDEX, &idx).expect(201, None);
    let cfg = t.blob("lib/app", b"{}");
    let sig = image_manifest((&cfg, 2), &[], Some((&d, m.len())));
    t.manifest("lib/app", &sha256(&sig), OCI_MANIFEST, &sig).expect(201, None);

    let s = t.req("GET", "/v1/status").send();
    s.expect(200, None);
    let s = s.json();
    assert_eq!(s["counts"]["repositories"], 2);
    assert_eq!(s["counts"]["tags"], 4);
    assert!(s["counts"]["storage_bytes"].as_i64().unwrap() > 0);
    assert_eq!(s["gc"]["running"], false);
    assert!(s["version"].is_string());

    let r = t.req("GET", "/v1/repositories?n=1").send().json();
    assert_eq!(r["repositories"][0]["name"], "lib/app");
    assert_eq!(r["repositories"][0]["tags"], 3);
    assert_eq!(r["next"], "lib/app");
    let r = t.req("GET", "/v1/repositories?n=1&last=lib/app").send().json();
    assert_eq!(r["repositories"][0]["name"], "lib/other");
    assert_eq!(r["next"], Value::Null);
    t.req("GET", "/v1/repositories?n=0").send().expect(400, None);
    t.req("GET", "/v1/repositories?n=x").send().expect(400, None);

    let r = t.req("GET", "/v1/repositories/lib/app").send().json();
    assert_eq!(r["name"], "lib/app");
    let tags: Vec<&str> =
        r["tag_list"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tags, ["multi", "v1", "v2"]);

    let r = t.req("GET", "/v1/repositories/lib/app/manifests/v1").send().json();
    assert_eq!(r["digest"], d.as_str());
    assert_eq!(r["tags"], json!(["v1", "v2"]));
    assert_eq!(r["layers"].as_array().unwrap().len(), 1);
    assert_eq!(r["referrers"].as_array().unwrap().len(), 1);
    let r = t.req("GET", "/v1/repositories/lib/app/manifests/multi").send().json();
    assert_eq!(r["manifests"][0]["platform"]["architecture"], "arm64");

    // Bad input and not found.
    t.req("GET", "/v1/repositories/Bad").send().expect(400, None);
    t.req("GET", "/v1/repositories/none").send().expect(404, None);
    t.req("GET", "/v1/repositories/lib/app/manifests/nope").send().expect(404, None);
    t.req("GET", "/v1/repositories/lib/app/manifests/sha256:zz").send().expect(400, None);

    // Tag and repository deletion.
    t.req("DELETE", "/v1/repositories/lib/app/tags/v2").send().expect(204, None);
    t.req("DELETE", "/v1/repositories/lib/app/tags/v2").send().expect(404, None);
    t.req("DELETE", "/v1/repositories/lib/app/tags/-bad").send().expect(400, None);
    assert_eq!(t.req("GET", "/v2/lib/app/tags/list").send().json()["tags"], json!(["multi", "v1"]));
    t.req("DELETE", "/v1/repositories/lib/other").send().expect(204, None);
    t.req("GET", "/v2/lib/other/manifests/latest").send().expect(404, None);
    t.req("DELETE", "/v1/repositories/lib/other").send().expect(404, None);
}

#[test]
fn policy_rules_over_rest_and_evaluate() {
    let t = TestApp::new();
    let post = |path: &str, body: &str| {
        t.req("POST", path).header("Content-Type", "application/json").body(body.as_bytes()).send()
    };
    let r = post(
        "/v1/policy/rules",
        r#"{"priority":5,"effect":"allow","actions":["push"],"repositories":["ci/*"],"usernames":["ci"]}"#,
    );
    r.expect(201, None);
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(t.req("GET", "/v1/policy/rules").send().json()[0]["id"], id);
    assert_eq!(
        t.req("GET", &format!("/v1/policy/rules/{id}")).send().json()["repositories"],
        json!(["ci/*"])
    );
    let eval = r#"{"username":"ci","account_type":"system","action":"push","repository":"ci/app"}"#;
    let d = post("/v1/policy/evaluate", eval).json();
    assert_eq!(d["allowed"], true);
    assert_eq!(d["rules"][0]["id"], id);
    post(&format!("/v1/policy/rules/{id}/disable"), "").expect(200, None);
    let d = post("/v1/policy/evaluate", eval).json();
    assert_eq!((d["allowed"].as_bool(), d["rules"].as_array().unwrap().len()), (Some(false), 0));
    post(&format!("/v1/policy/rules/{id}/enable"), "").expect(200, None);
    let r = t
        .req("PUT", &format!("/v1/policy/rules/{id}"))
        .body(br#"{"priority":5,"effect":"deny","actions":["push"]}"#)
        .send();
    r.expect(200, None);
    assert_eq!(post("/v1/policy/evaluate", eval).json()["allowed"], false);
    // Bad input.
    for bad in [
        "not json",
        r#"{"effect":"maybe"}"#,
        r#"{"effect":"allow","repositories":["["]}"#,
        r#"{"effect":"allow","colour":1}"#,
    ] {
        let r = post("/v1/policy/rules", bad);
        r.expect(400, None);
        assert_eq!(r.json()["error"]["code"], "INVALID_ARGUMENT", "{bad}");
    }
    post("/v1/policy/evaluate", r#"{"username":"x","action":"fly"}"#).expect(400, None);
    post("/v1/policy/evaluate", r#"{"username":"x","action":"pull","repository":"Bad"}"#).expect(400, None);
    t.req("GET", "/v1/policy/rules/999").send().expect(404, None);
    t.req("GET", "/v1/policy/rules/x").send().expect(400, None);
    t.req("DELETE", &format!("/v1/policy/rules/{id}")).send().expect(204, None);
    t.req("DELETE", &format!("/v1/policy/rules/{id}")).send().expect(404, None);
    let big = vec![b' '; 70_000];
    post("/v1/policy/rules", std::str::from_utf8(&big).unwrap()).expect(413, None);
}

#[test]
fn audit_users_over_rest() {
    let t = TestApp::new();
    let post = |path: &str, body: &str| t.req("POST", path).body(body.as_bytes()).send();
    post("/v1/users", r#"{"username":"carol","password":"carol-password","roles":["dev"]}"#)
        .expect(201, None);
    post("/v1/users", r#"{"username":"carol","password":"carol-password"}"#).expect(400, None);
    post("/v1/users", r#"{"username":"x","password":"short"}"#).expect(400, None);
    let users = t.req("GET", "/v1/users").send().json();
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == "carol" && u["roles"] == json!(["dev"])));
    t.req("GET", "/v2/").auth(&basic("carol", "carol-password")).send().expect(200, None);
    post("/v1/users/carol/password", r#"{"password":"carol-password-2"}"#).expect(204, None);
    t.req("GET", "/v2/").auth(&basic("carol", "carol-password-2")).send().expect(200, None);
    post("/v1/users/carol/disable", "").expect(204, None);
    t.req("GET", "/v2/token").auth(&basic("carol", "carol-password-2")).send().expect(401, None);
    post("/v1/users/carol/enable", "").expect(204, None);
    post("/v1/users/nobody/disable", "").expect(404, None);

    let r = t.req("GET", "/v1/audit?type=user_add&limit=10").send();
    r.expect(200, None);
    let ev = r.json()["events"].as_array().unwrap().clone();
    assert_eq!(ev.len(), 2, "admin and carol");
    assert_eq!(ev[1]["reference"], "user:carol");
    assert_eq!(ev[1]["actor"], "admin");
    t.req("GET", "/v1/audit?limit=0").send().expect(400, None);
    t.req("GET", "/v1/audit?since=yesterday").send().expect(400, None);
    let v = t.req("GET", "/v1/audit/verify").send().json();
    assert_eq!(v["first_broken"], Value::Null);
    assert!(v["rows"].as_u64().unwrap() >= 5);
}

#[test]
fn snapshot_while_writing_then_restore() {
    crate::sqlite_only!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start_on(&data, &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, addr, auth) = (stop.clone(), srv.addr, srv.admin_auth());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let b = bytes(n, 512);
                let r = http(
                    addr,
                    "POST",
                    &format!("/v2/busy/blobs/uploads/?digest={}", sha256(&b)),
                    &[("Authorization", &auth)],
                    &b,
                );
                assert_eq!(r.status, 201);
                n += 1;
            }
            n
        })
    };
    let mut images = Vec::new();
    for i in 0..3u64 {
        let cfg = format!("{{\"snap\":{i}}}").into_bytes();
        let layer = bytes(70 + i, 5000);
        for b in [&cfg, &layer] {
            assert_eq!(
                srv.http("POST", &format!("/v2/snap/blobs/uploads/?digest={}", sha256(b)), &[], b).status,
                201
            );
        }
        let m = image_manifest((&sha256(&cfg), cfg.len()), &[(&sha256(&layer), layer.len())], None);
        assert_eq!(
            srv.http("PUT", &format!("/v2/snap/manifests/v{i}"), &[("Content-Type", OCI_MANIFEST)], &m)
                .status,
            201
        );
        images.push((m, cfg, layer));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let r = srv.http("POST", "/v1/snapshot", &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    let snap = r.json();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.join().unwrap();
    assert!(written > 10, "writes went on during the snapshot ({written})");
    let path = snap["path"].as_str().unwrap().to_string();
    assert!(path.starts_with(data.join("snapshots").to_str().unwrap()));
    let bytes_on_disk = std::fs::read(&path).unwrap();
    assert_eq!(sha256(&bytes_on_disk)[7..], *snap["sha256"].as_str().unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    drop(conn);

    // More changes after the snapshot, then restore it on the stopped server.
    assert_eq!(
        srv.http("DELETE", &format!("/v2/snap/manifests/{}", sha256(&images[0].0)), &[], b"").status,
        202
    );
    assert!(srv.terminate().success());
    let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
        .args(["restore", &path, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let srv2 = Server::start_on(&data, &[]);
    for (i, (m, cfg, layer)) in images.iter().enumerate() {
        let r = srv2.http("GET", &format!("/v2/snap/manifests/v{i}"), &[], b"");
        assert_eq!((r.status, &r.body), (200, m), "image {i} pulls after restore");
        for b in [cfg, layer] {
            assert_eq!(&srv2.http("GET", &format!("/v2/snap/blobs/{}", sha256(b)), &[], b"").body, b);
        }
    }
    // A corrupted snapshot is refused.
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, b"not a database").unwrap();
    std::fs::write(dir.path().join("bad.db.sha256"), "0000  bad.db\n").unwrap();
    drop(srv2);
    let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
        .args(["restore"])
        .arg(&bad)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum"));
}

/// Restore refuses what it cannot verify: a snapshot without its checksum
/// file (unless --no-verify, which says so and is audited) and the live
/// database's own files; a refused restore changes nothing.
#[test]
fn restore_refuses_what_it_cannot_verify() {
    crate::sqlite_only!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start_on(&data, &[]);
    srv.push_image("keep", "v1", 1);
    let snap = srv.http("POST", "/v1/snapshot", &[], b"").json();
    let path = snap["path"].as_str().unwrap().to_string();
    assert!(srv.terminate().success());
    let restore = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
            .arg("restore")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let db_before = std::fs::read(data.join("mcr.db")).unwrap();
    // Without its checksum file.
    let bare = dir.path().join("bare.db");
    std::fs::copy(&path, &bare).unwrap();
    let (ok, err) = restore(&[bare.to_str().unwrap()]);
    assert!(!ok && err.contains("no readable checksum"), "{err}");
    // The live database, directly or through a path that leads to it.
    let sneaky = format!("{}/snapshots/../mcr.db", data.display());
    for p in [data.join("mcr.db").display().to_string(), sneaky] {
        let (ok, err) = restore(&[&p]);
        assert!(!ok && err.contains("live database"), "{p}: {err}");
    }
    assert!(data.join("mcr.db").exists(), "nothing was removed");
    assert_eq!(std::fs::read(data.join("mcr.db")).unwrap(), db_before, "nothing changed");
    // --no-verify restores, loudly, and the audit log says so.
    let (ok, err) = restore(&["--no-verify", bare.to_str().unwrap()]);
    assert!(ok && err.contains("WITHOUT a checksum"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
        .args(["audit", "list", "--type", "restore", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#""outcome":"unverified""#) && text.contains("system:cli"), "{text}");
    // A snapshot edited and re-summed without the audit key: refused.
    let forged = dir.path().join("forged.db");
    std::fs::copy(&path, &forged).unwrap();
    let db = rusqlite::Connection::open(&forged).unwrap();
    db.execute("UPDATE users SET roles = '[\"admin\"]'", []).unwrap();
    drop(db);
    let sum = mcr::model::Digest::of(mcr::model::Algorithm::Sha256, &std::fs::read(&forged).unwrap());
    std::fs::write(dir.path().join("forged.db.sha256"), format!("{}  forged.db\n", sum.hex())).unwrap();
    let (ok, err) = restore(&[forged.to_str().unwrap()]);
    assert!(!ok && err.contains("MAC"), "{err}");
    std::fs::write(
        dir.path().join("forged.db.sha256"),
        format!("{}  forged.db\nhmac-sha256:{}\n", sum.hex(), "ab".repeat(32)),
    )
    .unwrap();
    let (ok, err) = restore(&[forged.to_str().unwrap()]);
    assert!(!ok && err.contains("MAC"), "{err}");
    // A verified restore is recorded too.
    let (ok, err) = restore(&[&path]);
    assert!(ok, "{err}");
}
