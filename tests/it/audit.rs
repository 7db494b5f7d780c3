//! The audit log: a scripted session leaves the expected events in order,
//! the hash chain verifies, a row edited behind mcr's back is named, and no
//! password or token lands in the database or the logs.

use crate::support::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn admin_ctx(t: &TestApp) -> mcr::app::Ctx<'_> {
    t.admin_ctx()
}

fn events(t: &TestApp) -> Vec<mcr::db::audit::AuditRow> {
    let f = mcr::db::audit::Filter { limit: 1000, ..Default::default() };
    mcr::service::audit::query(&admin_ctx(t), &f).unwrap()
}

#[test]
fn scripted_session_is_recorded_in_order_and_the_chain_holds() {
    let t = TestApp::new();
    t.user("ci", "ci-password-1", &[], true);
    let ci = basic("ci", "ci-password-1");
    let (_, d) = t.image("app", "v1", 1); // push (+ blob uploads, not audited)
    t.req("GET", "/v2/app/manifests/v1").send().expect(200, None); // pull
    t.req("POST", "/v2/app/blobs/uploads/").auth(&ci).send().expect(403, None); // denied
    t.req("GET", "/v2/").auth(&basic("ci", "wrong-pass")).send().expect(401, None); // failed login
    let tok = t.req("GET", "/v2/token").auth(&ci).send().json()["token"].as_str().unwrap().to_string(); // login
                                                                                                        // Queued events (reads, refusals) are written by the audit thread; wait
                                                                                                        // for them so the next, transactional event comes after them.
    t.app.audit.flush();
    let rule = t.rule(r#"{"effect":"allow","actions":["push"],"usernames":["ci"]}"#); // policy_create
    mcr::service::policy::delete(&admin_ctx(&t), rule.id).unwrap(); // policy_delete
    let (_, d2) = t.image("app", "v1", 2); // push + tag_update
    t.req("DELETE", &format!("/v2/app/manifests/{d}")).send().expect(202, None); // delete

    let evs = events(&t);
    let types: Vec<&str> = evs.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "user_add",
            "user_add",
            "push",
            "pull",
            "denied",
            "login_failed",
            "login",
            "policy_create",
            "policy_delete",
            "push",
            "tag_update",
            "delete"
        ],
        "{evs:#?}"
    );
    let by_type = |ty: &str| evs.iter().find(|e| e.event_type == ty).unwrap();
    let push = by_type("push");
    assert_eq!(
        (push.actor.as_deref(), push.repository.as_deref(), push.reference.as_deref()),
        (Some("admin"), Some("app"), Some("v1"))
    );
    assert!(push.detail.contains(&d), "{}", push.detail);
    assert_eq!(push.peer.as_deref(), Some("127.0.0.1:40000"));
    let denied = by_type("denied");
    assert_eq!((denied.actor.as_deref(), denied.outcome.as_str()), (Some("ci"), "denied"));
    assert!(denied.detail.contains("\"action\":\"push\""), "{}", denied.detail);
    let failed = by_type("login_failed");
    assert_eq!((failed.actor.as_deref(), failed.outcome.as_str()), (Some("ci"), "bad_credentials"));
    let moved = by_type("tag_update");
    assert!(moved.detail.contains(&d) && moved.reference.as_deref() == Some(d2.as_str()), "{moved:?}");
    assert!(by_type("policy_create").detail.contains("\"usernames\":[\"ci\"]"));
    for w in evs.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash, "linked");
        assert!(w[1].time >= w[0].time);
    }
    let v = mcr::service::audit::verify(&admin_ctx(&t)).unwrap();
    assert_eq!((v.rows, v.first_broken), (12, None));

    // Filters.
    let f = mcr::db::audit::Filter { event_type: Some("push".into()), limit: 10, ..Default::default() };
    assert_eq!(mcr::service::audit::query(&admin_ctx(&t), &f).unwrap().len(), 2);
    let f = mcr::db::audit::Filter { actor: Some("ci".into()), limit: 10, ..Default::default() };
    assert_eq!(mcr::service::audit::query(&admin_ctx(&t), &f).unwrap().len(), 3);
    let f = mcr::db::audit::Filter { after_id: Some(10), limit: 10, ..Default::default() };
    assert_eq!(mcr::service::audit::query(&admin_ctx(&t), &f).unwrap().len(), 2);
    let f = mcr::db::audit::Filter { limit: 0, ..Default::default() };
    assert!(mcr::service::audit::query(&admin_ctx(&t), &f).is_err());
    // Only admins read it.
    let ci_ctx = mcr::app::Ctx {
        app: &t.app,
        actor: mcr::model::Actor::User(mcr::policy::Principal {
            subject: "local:2".into(),
            username: "ci".into(),
            roles: vec![],
            account_type: mcr::policy::AccountType::System,
            scope: None,
        }),
        req_id: "t",
        peer: None,
    };
    assert!(matches!(mcr::service::audit::verify(&ci_ctx), Err(mcr::error::Error::Denied(_))));

    // No secret anywhere in the database files.
    t.app.audit.flush();
    for file in ["mcr.db", "mcr.db-wal"] {
        let bytes = std::fs::read(t.dir.path().join("data").join(file)).unwrap_or_default();
        for secret in [t.admin.as_str(), "ci-password-1", "wrong-pass", tok.as_str()] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} found in {file}");
        }
    }

    if on_postgres() {
        return; // the edits below work on the SQLite file itself
    }
    // Edit a row behind mcr's back: verification names it.
    let db = rusqlite::Connection::open(t.dir.path().join("data/mcr.db")).unwrap();
    db.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 5", []).unwrap();
    let v = mcr::audit::verify(&t.app.db).unwrap();
    assert_eq!(v.first_broken, Some(5), "{v:?}");
    db.execute("UPDATE audit_log SET actor = 'ci' WHERE id = 5", []).unwrap();
    assert_eq!(mcr::audit::verify(&t.app.db).unwrap().first_broken, None);
    db.execute("DELETE FROM audit_log WHERE id = 7", []).unwrap();
    let v = mcr::audit::verify(&t.app.db).unwrap();
    assert_eq!(v.first_broken, Some(7), "a deleted row is named as missing: {v:?}");
    assert!(v.reason.as_deref().unwrap_or("").contains("rows 7..7 are missing"), "{v:?}");
}

#[test]
fn real_server_logs_and_db_hold_no_secrets_and_cli_verifies() {
    crate::sqlite_only!();
    let mut srv = Server::start();
    let mcr = env!("CARGO_BIN_EXE_mcr");
    let data = srv.data_dir.clone();
    // First start: the log says where the admin password is, never the
    // password itself (stderr is not a terminal here); the file is 0600.
    assert!(srv.log().contains("created user admin; its password is in"), "{}", srv.log());
    assert!(!srv.admin.is_empty() && !srv.log().contains(&srv.admin), "{}", srv.log());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(data.join("initial-admin-password")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // mcr user add, with the password on stdin.
    let mut add = Command::new(mcr)
        .args(["user", "add", "robot", "--system", "--password-stdin", "--data-dir"])
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        add.stdin.take().unwrap().write_all(b"robot-password-1\n").unwrap();
    }
    assert!(add.wait().unwrap().success());
    let list = run(Command::new(mcr).args(["user", "list", "--data-dir"]).arg(&data));
    assert!(list.contains("robot") && list.contains("system") && list.contains("admin"), "{list}");
    let out =
        Command::new(mcr).args(["user", "disable", "nobody", "--data-dir"]).arg(&data).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("user not found"));

    // A session: token, pushes, pulls, a denial, failed logins.
    let r = srv.http("GET", "/v2/token", &[], b"");
    let token = r.json()["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {token}");
    let blob = b"audited blob";
    let d = sha256(blob);
    assert_eq!(
        srv.http("POST", &format!("/v2/s/blobs/uploads/?digest={d}"), &[("Authorization", &bearer)], blob)
            .status,
        201
    );
    let robot = basic("robot", "robot-password-1");
    assert_eq!(srv.http("GET", &format!("/v2/s/blobs/{d}"), &[("Authorization", &robot)], b"").status, 403);
    assert_eq!(
        srv.http("GET", "/v2/", &[("Authorization", &basic("robot", "not-the-password"))], b"").status,
        401
    );
    let status = srv.terminate();
    assert!(status.success());

    let log = srv.log();
    assert!(log.contains("access req=") && log.contains("user=admin") && log.contains("user=robot"), "{log}");
    assert!(!log.contains(&srv.admin), "the admin password is never in the log");
    for secret in [token.as_str(), "robot-password-1", "not-the-password"] {
        assert!(!log.contains(secret), "{secret} in the log");
        for file in ["mcr.db", "mcr.db-wal"] {
            let bytes = std::fs::read(data.join(file)).unwrap_or_default();
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} in {file}");
        }
    }
    let ok = run(Command::new(mcr).args(["audit", "verify", "--data-dir"]).arg(&data));
    assert!(ok.contains("audit chain ok"), "{ok}");
    let listed = run(Command::new(mcr).args(["audit", "list", "--type", "denied", "--data-dir"]).arg(&data));
    assert!(listed.contains("\"actor\":\"robot\""), "{listed}");
    let db = rusqlite::Connection::open(data.join("mcr.db")).unwrap();
    db.execute("UPDATE audit_log SET outcome = 'ok' WHERE event_type = 'denied'", []).unwrap();
    let id: i64 =
        db.query_row("SELECT id FROM audit_log WHERE event_type = 'denied'", [], |r| r.get(0)).unwrap();
    let out = Command::new(mcr).args(["audit", "verify", "--data-dir"]).arg(&data).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("broken at row {id}")), "{err}");
}

/// Recomputes every row's hash with the unkeyed algorithm, as an attacker
/// without the key would after editing rows.
fn rehash_without_key(db: &rusqlite::Connection) {
    let rows: Vec<mcr::db::audit::AuditRow> = {
        let mut s = db
            .prepare("SELECT id, time, event_type, actor, peer, repository, reference, outcome, detail FROM audit_log ORDER BY id")
            .unwrap();
        s.query_map([], |r| {
            Ok(mcr::db::audit::AuditRow {
                id: r.get(0)?,
                time: r.get(1)?,
                event_type: r.get(2)?,
                actor: r.get(3)?,
                peer: r.get(4)?,
                repository: r.get(5)?,
                reference: r.get(6)?,
                outcome: r.get(7)?,
                detail: r.get(8)?,
                prev_hash: String::new(),
                hash: String::new(),
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let mut prev = mcr::audit::GENESIS.to_string();
    for mut r in rows {
        r.prev_hash = prev;
        r.hash = mcr::audit::row_hash(&r);
        db.execute(
            "UPDATE audit_log SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
            rusqlite::params![r.prev_hash, r.hash, r.id],
        )
        .unwrap();
        prev = r.hash;
    }
}

/// The test app's database, opened behind mcr's back.
fn open(t: &TestApp) -> rusqlite::Connection {
    rusqlite::Connection::open(t.dir.path().join("data/mcr.db")).unwrap()
}

fn data(t: &TestApp) -> std::path::PathBuf {
    t.dir.path().join("data")
}

/// Closes the app and opens its data directory again (a restart).
fn reopen(t: TestApp) -> (tempfile::TempDir, mcr::error::Result<mcr::app::App>) {
    let config = t.app.config.clone();
    drop(t.app);
    let app = mcr::app::App::open(config.clone(), mcr::storage::open(&config.storage).unwrap());
    (t.dir, app)
}

fn some_events(t: &TestApp, n: u64) {
    for i in 0..n {
        t.image("chain/app", &format!("v{i}"), i + 1);
    }
    t.app.audit.flush();
}

/// The keyed, anchored chain: truncation, a missing middle row, swapped
/// rows and a chain re-hashed without the key are each named; a clean
/// chain passes.
#[test]
fn the_keyed_chain_names_truncation_gaps_swaps_and_rehashing() {
    crate::sqlite_only!();
    let verify = |t: &TestApp| mcr::audit::verify(&t.app.db).unwrap();
    // Clean.
    let t = TestApp::new();
    some_events(&t, 4);
    let v = verify(&t);
    assert_eq!(v.first_broken, None, "{v:?}");
    let rows = v.rows as i64;
    assert!(
        t.dir.path().join("data/audit.checkpoint").exists() && t.dir.path().join("data/audit.key").exists()
    );
    // The last 3 rows cut off: named as the missing range.
    open(&t).execute("DELETE FROM audit_log WHERE id > ?1", [rows - 3]).unwrap();
    let v = verify(&t);
    assert_eq!(v.first_broken, Some(rows - 2), "{v:?}");
    assert!(v.reason.unwrap().contains(&format!("rows {}..{} are missing", rows - 2, rows)));
    // Two rows swapped.
    let t = TestApp::new();
    some_events(&t, 4);
    let db = open(&t);
    db.execute_batch("UPDATE audit_log SET id = -3 WHERE id = 3; UPDATE audit_log SET id = 3 WHERE id = 4; UPDATE audit_log SET id = 4 WHERE id = -3;")
        .unwrap();
    let v = verify(&t);
    assert_eq!(v.first_broken, Some(3), "{v:?}");
    // An edited actor, with the chain re-hashed by the public algorithm.
    let t = TestApp::new();
    some_events(&t, 4);
    let db = open(&t);
    db.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 2", []).unwrap();
    rehash_without_key(&db);
    let v = verify(&t);
    assert_eq!(v.first_broken, Some(1), "the first re-hashed keyed row: {v:?}");
    assert!(v.reason.unwrap().contains("without the key"));
    // No checkpoint: truncation cannot be ruled out, and verify says so.
    let t = TestApp::new();
    some_events(&t, 1);
    std::fs::remove_file(t.dir.path().join("data/audit.checkpoint")).unwrap();
    let v = verify(&t);
    assert!(v.first_broken.is_some() && v.reason.unwrap().contains("checkpoint"), "missing checkpoint");
}

/// A chain from before keying is verified under the old scheme, then
/// re-anchored by an `audit_rekeyed` event; it passes, and an edit to its
/// unkeyed part is still named.
#[test]
fn an_unkeyed_chain_migrates_and_still_verifies() {
    crate::sqlite_only!();
    let t = TestApp::new();
    some_events(&t, 3);
    // Make it a chain as mcr wrote before version 4.
    let data = t.dir.path().join("data");
    let db = rusqlite::Connection::open(data.join("mcr.db")).unwrap();
    rehash_without_key(&db);
    db.execute_batch(
        "DROP TABLE audit_meta; DROP TABLE registry; DROP TABLE login_events; PRAGMA user_version = 3;",
    )
    .unwrap();
    // Nor did its data directory carry a registry marker.
    std::fs::remove_file(t.dir.path().join("data/blobs/registry")).unwrap();
    let legacy_rows: i64 = db.query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0)).unwrap();
    drop(db);
    std::fs::remove_file(data.join("audit.checkpoint")).unwrap();
    // Nor did mcr before version 4 have a key.
    std::fs::remove_file(data.join("audit.key")).unwrap();
    let config = t.app.config.clone();
    drop(t.app);
    let app = mcr::app::App::open(config.clone(), mcr::storage::open(&config.storage).unwrap()).unwrap();
    app.audit.flush();
    let v = mcr::audit::verify(&app.db).unwrap();
    assert_eq!(v.first_broken, None, "{v:?}");
    assert_eq!(v.rows as i64, legacy_rows + 1, "plus the re-anchoring event");
    let db = rusqlite::Connection::open(data.join("mcr.db")).unwrap();
    let (event, detail): (String, String) = db
        .query_row("SELECT event_type, detail FROM audit_log WHERE id = ?1", [legacy_rows + 1], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(event, "audit_rekeyed");
    assert!(detail.contains(r#""legacy_chain_ok":true"#), "{detail}");
    db.execute("UPDATE audit_log SET outcome = 'forged' WHERE id = 2", []).unwrap();
    assert_eq!(mcr::audit::verify(&app.db).unwrap().first_broken, Some(2));
}

/// A data directory whose audit key is gone does not start: a new key
/// would make every keyed row look forged.
#[test]
fn a_missing_audit_key_stops_the_start() {
    let t = TestApp::new();
    some_events(&t, 1);
    let config = t.app.config.clone();
    drop(t.app);
    std::fs::remove_file(t.dir.path().join("data/audit.key")).unwrap();
    let err =
        mcr::app::App::open(config.clone(), mcr::storage::open(&config.storage).unwrap()).err().unwrap();
    let text = match &err {
        mcr::error::Error::Internal(e) => format!("{e:#}"),
        other => other.to_string(),
    };
    assert!(text.contains("audit.key"), "{text}");
}

/// What a local attacker without the key tried (the hostile run): moving
/// the keyed start past the end and re-hashing everything as "legacy",
/// forging the checkpoint to fit a shortened chain, removing the anchor and
/// the checkpoint, and planting a trigger that swallows rows. Each is
/// named by verify, or refused outright.
#[test]
fn what_an_attacker_without_the_key_tried_is_caught() {
    crate::sqlite_only!();
    let cp_path = |t: &TestApp| t.dir.path().join("data/audit.checkpoint");
    // Every row made "legacy" (keyed_from past the end, in the database and
    // in a rewritten checkpoint), re-hashed with SHA-256.
    let t = TestApp::new();
    some_events(&t, 3);
    let db = open(&t);
    db.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 2", []).unwrap();
    rehash_without_key(&db);
    let (last, hash): (i64, String) = db
        .query_row("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    db.execute("UPDATE audit_meta SET keyed_from = ?1", [last + 1]).unwrap();
    let mut cp: serde_json::Value = serde_json::from_slice(&std::fs::read(cp_path(&t)).unwrap()).unwrap();
    cp["keyed_from"] = (last + 1).into();
    cp["last_id"] = last.into();
    cp["last_hash"] = hash.into();
    std::fs::write(cp_path(&t), cp.to_string()).unwrap();
    let v = mcr::audit::verify(&t.app.db).unwrap();
    assert!(v.first_broken.is_some() && v.reason.as_deref().unwrap().contains("MAC"), "{v:?}");
    // The same with the anchor and the checkpoint removed, then a restart.
    let t = TestApp::new();
    some_events(&t, 3);
    let db = open(&t);
    rehash_without_key(&db);
    db.execute("DELETE FROM audit_meta", []).unwrap();
    std::fs::remove_file(cp_path(&t)).unwrap();
    let config = t.app.config.clone();
    let checkpoint = cp_path(&t);
    drop(t.app);
    let app = mcr::app::App::open(config.clone(), mcr::storage::open(&config.storage).unwrap()).unwrap();
    let v = mcr::audit::verify(&app.db).unwrap();
    assert!(
        v.first_broken.is_some(),
        "a chain that lost its anchor under an existing key is not re-anchored: {v:?}"
    );
    assert!(!checkpoint.exists(), "nor is a missing checkpoint recreated over the evidence");
    drop(app);
    // A trigger that swallows rows: the change is refused, not unrecorded.
    let t = TestApp::new();
    some_events(&t, 1);
    open(&t)
        .execute_batch("CREATE TRIGGER hide BEFORE INSERT ON audit_log WHEN NEW.event_type = 'push' BEGIN SELECT RAISE(IGNORE); END;")
        .unwrap();
    let r = t.manifest(
        "chain/app",
        "hidden",
        OCI_MANIFEST,
        &image_manifest((&t.blob("chain/app", b"{}"), 2), &[], None),
    );
    assert_eq!(r.status, 500, "no change without its record: {}", r.text());
    t.req("GET", "/v2/chain/app/manifests/hidden").header("Accept", OCI_MANIFEST).send().expect(404, None);
}

/// The second hostile run, without the key: every row made "legacy" with
/// the checkpoint removed, the whole log wiped, key and anchor removed
/// together, the anchor removed while running then rows cut, and a trigger
/// that deletes rows after their insert. Each fails verify or the start.
#[test]
fn the_second_round_of_attacks_without_the_key_is_caught() {
    crate::sqlite_only!();
    // All rows "legacy", keyed start past the end, no checkpoint.
    let t = TestApp::new();
    some_events(&t, 3);
    let db = open(&t);
    db.execute("DELETE FROM audit_log WHERE event_type = 'push'", []).unwrap();
    db.execute("UPDATE audit_meta SET keyed_from = 1000000000000", []).unwrap();
    std::fs::remove_file(data(&t).join("audit.checkpoint")).unwrap();
    let (_d, app) = reopen(t);
    let app = app.unwrap();
    let v = mcr::audit::verify(&app.db).unwrap();
    assert!(v.first_broken.is_some() && v.reason.as_deref().unwrap().contains("checkpoint"), "{v:?}");
    drop(app);
    // The whole log wiped, checkpoint removed.
    let t = TestApp::new();
    some_events(&t, 2);
    open(&t).execute("DELETE FROM audit_log", []).unwrap();
    std::fs::remove_file(data(&t).join("audit.checkpoint")).unwrap();
    let (_d, app) = reopen(t);
    let app = app.unwrap();
    assert!(mcr::audit::verify(&app.db).unwrap().first_broken.is_some(), "a wiped log fails");
    drop(app);
    // Key and anchor removed together (checkpoint kept, or removed too).
    for keep_checkpoint in [true, false] {
        let t = TestApp::new();
        some_events(&t, 2);
        let db = open(&t);
        rehash_without_key(&db);
        db.execute("DELETE FROM audit_meta", []).unwrap();
        std::fs::remove_file(data(&t).join("audit.key")).unwrap();
        if !keep_checkpoint {
            std::fs::remove_file(data(&t).join("audit.checkpoint")).unwrap();
        }
        let (_d, app) = reopen(t);
        match app {
            Err(_) => {}
            Ok(app) => {
                let v = mcr::audit::verify(&app.db).unwrap();
                assert!(v.first_broken.is_some(), "keep_checkpoint={keep_checkpoint}: {v:?}");
            }
        }
    }
    // The anchor removed while running; then the newest rows cut.
    let t = TestApp::new();
    some_events(&t, 2);
    open(&t).execute("DELETE FROM audit_meta", []).unwrap();
    some_events(&t, 2);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    t.app.audit.flush();
    let db = open(&t);
    let last: i64 = db.query_row("SELECT max(id) FROM audit_log", [], |r| r.get(0)).unwrap();
    db.execute("DELETE FROM audit_log WHERE id > ?1", [last - 2]).unwrap();
    db.execute("INSERT INTO audit_meta(id, keyed_from) VALUES (1, 1)", []).unwrap();
    let v = mcr::audit::verify(&t.app.db).unwrap();
    assert!(v.first_broken.is_some(), "rows cut after the anchor was removed: {v:?}");
    // A trigger that deletes rows after their insert.
    let t = TestApp::new();
    some_events(&t, 1);
    open(&t)
        .execute_batch("CREATE TRIGGER zz AFTER INSERT ON audit_log WHEN NEW.event_type = 'push' BEGIN DELETE FROM audit_log WHERE id = NEW.id; END;")
        .unwrap();
    let v = mcr::audit::verify(&t.app.db).unwrap();
    assert!(v.reason.as_deref().unwrap_or("").contains("trigger"), "{v:?}");
    let (_d, app) = reopen(t);
    assert!(app.is_err(), "a database with a trigger mcr did not create does not open");
}

/// A checkpoint shipped off the machine catches what one kept beside the
/// database cannot: the log cut back to an older checkpoint, put back with
/// it. `mcr audit verify --expect LAST_ID:HASH`.
#[test]
fn a_shipped_checkpoint_catches_a_rollback_of_the_log() {
    crate::sqlite_only!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start_on(&data, &[]);
    srv.push_image("ship", "v1", 1);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let older = std::fs::read(data.join("audit.checkpoint")).unwrap();
    let older_id = serde_json::from_slice::<serde_json::Value>(&older).unwrap()["last_id"].as_i64().unwrap();
    srv.push_image("ship", "v2", 2);
    assert!(srv.terminate().success());
    let shipped: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("audit.checkpoint")).unwrap()).unwrap();
    let expect = format!("{}:{}", shipped["last_id"], shipped["last_hash"].as_str().unwrap());
    // Cut the log back to the older checkpoint, and put that one back.
    let db = rusqlite::Connection::open(data.join("mcr.db")).unwrap();
    db.execute("DELETE FROM audit_log WHERE id > ?1", [older_id]).unwrap();
    drop(db);
    std::fs::write(data.join("audit.checkpoint"), &older).unwrap();
    let verify = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
            .args(["audit", "verify"])
            .args(extra)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, _) = verify(&[]);
    assert!(ok, "without the shipped value the rollback cannot be seen (documented)");
    let (ok, err) = verify(&["--expect", &expect]);
    assert!(!ok && err.contains("missing"), "{err}");
    let (ok, err) = verify(&["--expect", "not-a-checkpoint"]);
    assert!(!ok && err.contains("LAST_ID:HASH"), "bad input is refused with the expected form: {err}");
}

/// The third hostile run: a trigger disguised by editing `sqlite_master`
/// directly, a FIFO in place of the checkpoint, a keyed database dressed
/// up as schema 3 with key and checkpoint kept, and the database deleted
/// outright. Each fails verify (promptly) or the start.
#[test]
fn the_third_round_of_attacks_without_the_key_is_caught() {
    crate::sqlite_only!();
    // A trigger whose type was rewritten in sqlite_master.
    let t = TestApp::new();
    some_events(&t, 1);
    open(&t)
        .execute_batch(
            "CREATE TRIGGER zz AFTER INSERT ON audit_log WHEN NEW.actor = 'alice' BEGIN DELETE FROM audit_log WHERE id = NEW.id; END;
             PRAGMA writable_schema = ON; UPDATE sqlite_master SET type = 'Trigger' WHERE name = 'zz'; PRAGMA writable_schema = OFF;",
        )
        .unwrap();
    let v = mcr::audit::verify(&t.app.db).unwrap();
    assert!(v.first_broken.is_some() && v.reason.as_deref().unwrap().contains("zz"), "{v:?}");
    let (_d, app) = reopen(t);
    assert!(app.is_err(), "the disguised trigger refuses the start");
    // A FIFO in place of the checkpoint: verify answers at once, and fails.
    let t = TestApp::new();
    some_events(&t, 1);
    let cp = data(&t).join("audit.checkpoint");
    std::fs::remove_file(&cp).unwrap();
    assert!(Command::new("mkfifo").arg(&cp).status().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| tx.send(mcr::audit::verify(&t.app.db).unwrap()).unwrap());
        let v = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("verify must not block on a FIFO");
        assert!(v.first_broken.is_some() && v.reason.as_deref().unwrap().contains("regular file"), "{v:?}");
        // Unblock anything that did open it, so the scope can end.
        let _ = std::fs::remove_file(&cp);
    });
    // A keyed database dressed up as schema 3, key and checkpoint kept.
    let t = TestApp::new();
    some_events(&t, 2);
    let db = open(&t);
    db.execute("DELETE FROM audit_log WHERE event_type = 'push' AND id = (SELECT max(id) FROM audit_log WHERE event_type = 'push')", []).unwrap();
    rehash_without_key(&db);
    db.execute_batch(
        "DROP TABLE audit_meta; DROP TABLE registry; DROP TABLE login_events; PRAGMA user_version = 3;",
    )
    .unwrap();
    // Nor did its data directory carry a registry marker.
    std::fs::remove_file(t.dir.path().join("data/blobs/registry")).unwrap();
    drop(db);
    let (_d, app) = reopen(t);
    let app = app.unwrap();
    let v = mcr::audit::verify(&app.db).unwrap();
    assert!(v.first_broken.is_some(), "not re-anchored while its key and checkpoint exist: {v:?}");
    drop(app);
    // The database deleted outright, key and checkpoint kept.
    let t = TestApp::new();
    some_events(&t, 2);
    let dir = data(&t);
    let config = t.app.config.clone();
    drop(t.app);
    for f in ["mcr.db", "mcr.db-wal", "mcr.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    // Not a fresh start: the blobs name the registry whose database went.
    let err = match mcr::app::App::open(config.clone(), mcr::storage::open(&config.storage).unwrap()) {
        Ok(_) => panic!("a deleted database started as a fresh registry"),
        Err(e) => format!("{e:?}"),
    };
    assert!(err.contains("belong to registry"), "{err}");
    // Without the marker either, the audit key and checkpoint still tell.
    std::fs::remove_file(dir.join("blobs/registry")).unwrap();
    for f in ["mcr.db", "mcr.db-wal", "mcr.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let app = mcr::app::App::open(config.clone(), mcr::storage::open(&config.storage).unwrap()).unwrap();
    let v = mcr::audit::verify(&app.db).unwrap();
    assert!(v.first_broken.is_some(), "a deleted database is not a fresh start: {v:?}");
}

/// The fourth hostile run: a trigger renamed into SQLite's own `sqlite_`
/// namespace through `writable_schema` is foreign all the same; the
/// statistics tables ANALYZE makes are not.
#[test]
fn a_trigger_in_sqlites_namespace_is_foreign_and_analyze_is_not() {
    crate::sqlite_only!();
    let t = TestApp::new();
    some_events(&t, 1);
    open(&t).execute_batch("ANALYZE;").unwrap();
    let v = mcr::audit::verify(&t.app.db).unwrap();
    assert_eq!(v.first_broken, None, "ANALYZE's tables are SQLite's own: {v:?}");
    open(&t)
        .execute_batch(
            "CREATE TRIGGER zz AFTER INSERT ON audit_log WHEN NEW.actor = 'alice' BEGIN DELETE FROM audit_log WHERE id = NEW.id; END;
             PRAGMA writable_schema = ON;
             UPDATE sqlite_master SET name = 'sqlite_zz', sql = replace(sql, 'TRIGGER zz', 'TRIGGER sqlite_zz') WHERE name = 'zz';
             PRAGMA writable_schema = OFF;",
        )
        .unwrap();
    let v = mcr::audit::verify(&t.app.db).unwrap();
    assert!(v.first_broken.is_some() && v.reason.as_deref().unwrap().contains("sqlite_zz"), "{v:?}");
    let config = t.app.config.clone();
    drop(t.app);
    assert!(mcr::app::App::open(config.clone(), mcr::storage::open(&config.storage).unwrap()).is_err());
}

#[test]
fn a_database_lock_held_elsewhere_loses_no_audit_event_and_refuses_writes_with_503() {
    crate::sqlite_only!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let srv = Server::start_on(&data, &[]);
    let (manifest, _) = srv.push_image("locked/app", "v1", 5);
    let db = rusqlite::Connection::open(data.join("mcr.db")).unwrap();
    let before = pull_events(&db);
    // Another process holds the write lock longer than the busy timeout (10 s).
    let holder = hold_write_lock(&data);
    let held = Instant::now();
    for _ in 0..20 {
        let r = srv.http("GET", "/v2/locked/app/manifests/v1", &[("Accept", OCI_MANIFEST)], b"");
        assert_eq!(r.status, 200, "reads go on beside the lock: {}", r.text());
    }
    let r = srv.http("PUT", "/v2/locked/app/manifests/v2", &[("Content-Type", OCI_MANIFEST)], &manifest);
    assert_eq!(r.status, 503, "a write that cannot get the lock: {} {}", r.status, r.text());
    std::thread::sleep(Duration::from_secs(12).saturating_sub(held.elapsed()));
    holder.execute_batch("COMMIT").unwrap();
    // The audit writer's batch waited for the lock instead of being lost.
    await_pull_events(&db, &srv, before, 20);
    assert!(srv.log().contains("audit batch waits for the database"), "{}", srv.log());
    assert!(!srv.log().contains("audit batch lost"), "{}", srv.log());
}

#[test]
fn a_full_audit_queue_answers_503_after_two_seconds_and_records_every_pull_it_served() {
    crate::sqlite_only!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let srv = Server::start_on(&data, &[]);
    srv.push_image("full/app", "v1", 6);
    let db = rusqlite::Connection::open(data.join("mcr.db")).unwrap();
    let before = pull_events(&db);
    // The writer cannot write while another process holds the lock: the
    // queue (4,096 events) fills, and then a pull waits at most 2 s.
    let holder = hold_write_lock(&data);
    let auth = srv.admin_auth();
    let results: Vec<(usize, u16, Duration, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut served = 0;
                    loop {
                        let t = Instant::now();
                        let r = http(
                            srv.addr,
                            "GET",
                            "/v2/full/app/manifests/v1",
                            &[("Accept", OCI_MANIFEST), ("Authorization", &auth)],
                            b"",
                        );
                        if r.status != 200 || served == 3000 {
                            return (served, r.status, t.elapsed(), r.text());
                        }
                        served += 1;
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let served: usize = results.iter().map(|r| r.0).sum();
    for (_, status, took, body) in &results {
        assert_eq!(*status, 503, "a pull beyond a full queue: {body}");
        assert!(body.contains("UNAVAILABLE"), "{body}");
        assert!(
            *took >= Duration::from_millis(1900) && *took < Duration::from_secs(5),
            "answered after {took:?}"
        );
    }
    assert!((4096..4200).contains(&served), "{served} pulls served before the queue was full");
    holder.execute_batch("COMMIT").unwrap();
    // Every pull that was answered 200 is recorded; none of the refused ones.
    await_pull_events(&db, &srv, before, served as i64);
    assert!(srv.log().contains("audit queue full, event not taken"), "{}", srv.log());
    let r = srv.http("GET", "/v2/full/app/manifests/v1", &[("Accept", OCI_MANIFEST)], b"");
    assert_eq!(r.status, 200, "pulls are served again once the writer can write: {}", r.text());
}

fn pull_events(db: &rusqlite::Connection) -> i64 {
    db.query_row("SELECT COUNT(*) FROM audit_log WHERE event_type = 'pull'", [], |r| r.get(0)).unwrap()
}

/// Another process's write transaction on the server's SQLite file, held
/// until the returned connection commits or is dropped.
fn hold_write_lock(data: &std::path::Path) -> rusqlite::Connection {
    let holder = rusqlite::Connection::open(data.join("mcr.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    holder
}

/// Waits until `want` pull events past `before` are written, then checks
/// that no more follow.
fn await_pull_events(db: &rusqlite::Connection, srv: &Server, before: i64, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pull_events(db) < before + want {
        let got = pull_events(db) - before;
        assert!(Instant::now() < deadline, "pull events lost: {got} of {want}\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pull_events(db), before + want);
}
