//! Garbage collection and reconciliation: every kind of reference keeps
//! its blob, truly unreferenced blobs go, pushes and pulls during
//! collection lose nothing, and a SIGKILL in either phase leaves a
//! consistent registry after restart.

use crate::support::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn blob_file(t: &TestApp, d: &str) -> std::path::PathBuf {
    t.dir.path().join(format!("data/blobs/sha256/{}/{}", &d[7..9], &d[7..]))
}

fn gc(t: &TestApp) -> serde_json::Value {
    let r = t.req("POST", "/v1/gc").send();
    r.expect(202, None);
    let status = t.req("GET", "/v1/gc/status").send();
    status.expect(200, None);
    let v = status.json();
    assert_eq!(v["running"], false);
    assert_eq!(v["last"]["run_id"], r.json()["run_id"]);
    v["last"].clone()
}

/// An image whose config and layers are the given blobs (pushed to `repo`).
fn image_of(
    t: &TestApp,
    repo: &str,
    reference: &str,
    config: &[u8],
    layers: &[&[u8]],
    subject: Option<(&str, usize)>,
) -> (Vec<u8>, String) {
    let cd = t.blob(repo, config);
    let ls: Vec<(String, usize)> = layers.iter().map(|l| (t.blob(repo, l), l.len())).collect();
    let refs: Vec<(&str, usize)> = ls.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    let m = image_manifest((&cd, config.len()), &refs, subject);
    let d = sha256(&m);
    t.manifest(repo, reference, OCI_MANIFEST, &m).expect(201, None);
    (m, d)
}

#[test]
fn every_reference_kind_keeps_its_blob() {
    let t = TestApp::with(|c| c.gc.min_age = "0s".into());
    // Tagged image, and a blob nothing references.
    let (m1, d1) = image_of(&t, "a", "v1", b"{\"c\":1}", &[b"layer one"], None);
    let unref = t.blob("a", b"nobody needs me");
    // An index whose children are untagged.
    let (c2, dc2) = image_of(
        &t,
        "a",
        &sha256(&image_manifest((&sha256(b"{\"c\":2}"), 7), &[(&sha256(b"layer two"), 9)], None)),
        b"{\"c\":2}",
        &[b"layer two"],
        None,
    );
    let idx = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": dc2, "size": c2.len()}]}))
    .unwrap();
    t.manifest("a", "multi", OCI_INDEX, &idx).expect(201, None);
    // A referrer (untagged) whose subject is the tagged image.
    let (_, dref) = image_of(
        &t,
        "a",
        &sha256(&image_manifest(
            (&sha256(b"{\"sig\":1}"), 9),
            &[(&sha256(b"signature"), 9)],
            Some((&d1, m1.len())),
        )),
        b"{\"sig\":1}",
        &[b"signature"],
        Some((&d1, m1.len())),
    );
    // A layer shared between repositories; one of them lets go of it.
    image_of(&t, "b", "v1", b"{\"c\":3}", &[b"shared layer"], None);
    let (_, dc) = image_of(&t, "c", "v1", b"{\"c\":4}", &[b"shared layer", b"only in c"], None);
    t.req("DELETE", &format!("/v2/c/manifests/{dc}")).send().expect(202, None);

    let report = gc(&t);
    let gone: HashSet<String> = [unref.clone(), sha256(b"only in c"), sha256(b"{\"c\":4}")].into();
    assert_eq!(report["blobs_removed"], gone.len(), "{report}");
    assert_eq!(report["bytes_freed"], (15 + 9 + 7) as u64);
    for d in &gone {
        assert!(!blob_file(&t, d).exists(), "{d} unlinked");
    }
    t.req("HEAD", &format!("/v2/a/blobs/{unref}")).send().expect(404, None);
    // Everything still referenced still pulls, byte for byte.
    for (repo, data) in [
        ("a", &b"{\"c\":1}"[..]),
        ("a", b"layer one"),
        ("a", b"{\"c\":2}"),
        ("a", b"layer two"),
        ("a", b"{\"sig\":1}"),
        ("a", b"signature"),
        ("b", b"shared layer"),
        ("b", b"{\"c\":3}"),
    ] {
        let r = t.req("GET", &format!("/v2/{repo}/blobs/{}", sha256(data))).send();
        assert_eq!((r.status, r.body.as_slice()), (200, data), "{repo} {}", String::from_utf8_lossy(data));
    }
    for reference in ["v1", "multi", dc2.as_str(), dref.as_str()] {
        t.req("GET", &format!("/v2/a/manifests/{reference}")).send().expect(200, None);
    }
    // A second run finds nothing more.
    let again = gc(&t);
    assert_eq!((again["blobs_removed"].as_u64(), again["manifests_removed"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn untagged_manifests_go_only_when_nothing_needs_them() {
    let t = TestApp::with(|c| {
        c.gc.min_age = "0s".into();
        c.gc.delete_untagged = true;
    });
    let (m1, d1) = image_of(&t, "u", "v1", b"{\"k\":1}", &[b"kept layer"], None);
    let loose = image_manifest((&sha256(b"{\"k\":2}"), 7), &[(&sha256(b"loose layer"), 11)], None);
    let (_, dloose) = image_of(&t, "u", &sha256(&loose), b"{\"k\":2}", &[b"loose layer"], None);
    let child = image_manifest((&sha256(b"{\"k\":3}"), 7), &[], None);
    let (_, dchild) = image_of(&t, "u", &sha256(&child), b"{\"k\":3}", &[], None);
    let idx = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": dchild, "size": child.len()}]}))
    .unwrap();
    t.manifest("u", "idx", OCI_INDEX, &idx).expect(201, None);
    let sig = image_manifest((&sha256(b"{\"k\":4}"), 7), &[], Some((&d1, m1.len())));
    let (_, dsig) = image_of(&t, "u", &sha256(&sig), b"{\"k\":4}", &[], Some((&d1, m1.len())));

    let r = gc(&t);
    assert_eq!(r["manifests_removed"], 1, "only the loose manifest: {r}");
    t.req("GET", &format!("/v2/u/manifests/{dloose}")).send().expect(404, None);
    t.req("GET", &format!("/v2/u/blobs/{}", sha256(b"loose layer"))).send().expect(404, None);
    for d in [&d1, &dchild, &dsig] {
        t.req("GET", &format!("/v2/u/manifests/{d}")).send().expect(200, None);
    }
    // Once the subject is gone, its referrer goes too; untagging the index frees its child.
    t.req("DELETE", &format!("/v2/u/manifests/{d1}")).send().expect(202, None);
    let idx_digest = sha256(&idx);
    t.req("DELETE", &format!("/v2/u/manifests/{idx_digest}")).send().expect(202, None);
    let r = gc(&t);
    assert_eq!(r["manifests_removed"], 2, "{r}");
    t.req("GET", &format!("/v2/u/manifests/{dsig}")).send().expect(404, None);
    t.req("GET", &format!("/v2/u/manifests/{dchild}")).send().expect(404, None);
}

#[test]
fn the_grace_period_protects_young_blobs() {
    let t = TestApp::new(); // min_age 1h
    let d = t.blob("g", b"fresh and unreferenced");
    let r = gc(&t);
    assert_eq!(r["blobs_removed"], 0);
    t.req("GET", &format!("/v2/g/blobs/{d}")).send().expect(200, None);
    assert!(blob_file(&t, &d).exists());
}

#[test]
fn reconcile_removes_leftovers_and_reports_missing_files() {
    let t = TestApp::with(|c| c.uploads.ttl = "0s".into());
    let kept = t.blob("r", b"kept");
    let lost = t.blob("r", b"file will vanish");
    std::fs::remove_file(blob_file(&t, &lost)).unwrap();
    // A blob file with no row (a crash between rename and insert).
    let orphan = sha256(b"orphan");
    let p = blob_file(&t, &orphan);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"orphan").unwrap();
    // A staging file without a session, and a session past its TTL.
    std::fs::write(t.dir.path().join("data/uploads/0bad0bad-0000-4000-8000-000000000000"), b"junk").unwrap();
    let loc = t.req("POST", "/v2/r/blobs/uploads/").send().header("Location").unwrap().to_string();
    t.req("PATCH", &loc).body(b"partial").send().expect(202, None);

    let r = t.req("POST", "/v1/gc/reconcile").send();
    r.expect(200, None);
    let v = r.json();
    assert_eq!(v["orphan_files_removed"], 1, "{v}");
    assert_eq!(v["orphan_bytes_freed"], 6);
    assert_eq!(v["missing_files"], json!([lost]));
    assert_eq!(v["uploads_purged"], 1);
    assert!(!p.exists());
    t.req("GET", &loc).send().expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
    assert_eq!(std::fs::read_dir(t.dir.path().join("data/uploads")).unwrap().count(), 0, "staging cleaned");
    t.req("GET", &format!("/v2/r/blobs/{kept}")).send().expect(200, None);
}

/// The database is the record of uploads: online, with the default TTL, a
/// staged upload that no session names goes at once (no age needed), and
/// a live session's bytes stay and can still be finished.
#[test]
fn online_reconcile_aborts_staged_uploads_without_a_session_and_keeps_live_ones() {
    let t = TestApp::new();
    let uploads = t.dir.path().join("data/uploads");
    std::fs::write(uploads.join("0bad0bad-0000-4000-8000-000000000001"), b"junk").unwrap();
    let loc = t.req("POST", "/v2/r/blobs/uploads/").send().header("Location").unwrap().to_string();
    t.req("PATCH", &loc).body(b"live ").send().expect(202, None);
    let v = t.req("POST", "/v1/gc/reconcile").send().json();
    assert_eq!(v["staging_files_removed"], 1, "{v}");
    assert_eq!(v["uploads_purged"], 0, "{v}");
    let left: Vec<String> = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left.iter().filter(|n| !n.contains('.')).count(),
        1,
        "only the live session's upload is left: {left:?}"
    );
    let d = sha256(b"live session");
    t.req("PUT", &format!("{loc}?digest={d}")).body(b"session").send().expect(201, None);
    assert_eq!(t.req("GET", &format!("/v2/r/blobs/{d}")).send().body, b"live session");
    // Monolithic uploads are sessions too while they run: none is left over.
    t.blob("r", b"monolithic");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
}

#[test]
fn admin_api_auth_and_errors() {
    let t = TestApp::new();
    t.user("bob", "bob-password-1", &[], false);
    let r = t.req("GET", "/v1/health").anon().send();
    r.expect(200, None);
    assert_eq!(r.json()["status"], "ok");
    let r = t.req("POST", "/v1/gc").anon().send();
    r.expect(401, None);
    assert_eq!(r.json()["error"]["code"], "UNAUTHENTICATED");
    assert!(r.json()["error"]["request_id"].is_string());
    assert!(r.header("WWW-Authenticate").is_some());
    let r = t.req("POST", "/v1/gc").auth(&basic("bob", "bob-password-1")).send();
    r.expect(403, None);
    assert_eq!(r.json()["error"]["code"], "PERMISSION_DENIED");
    t.req("GET", "/v1/gc/status").auth(&basic("bob", "bob-password-1")).send().expect(403, None);
    t.req("GET", "/v1/gc/status").auth(&basic("bob", "nope")).send().expect(401, None);
    let r = t.req("GET", "/v1/nope").send();
    r.expect(404, None);
    assert_eq!(r.json()["error"]["code"], "NOT_FOUND");
    let r = t.req("DELETE", "/v1/gc").send();
    r.expect(405, None);
    assert_eq!(r.json()["error"]["code"], "METHOD_NOT_ALLOWED");
    t.req("POST", "/v1/health").anon().send().expect(405, None);
}

// ------------------------------------------------------------ real server

fn auth_hdr(srv: &Server) -> String {
    srv.admin_auth()
}

/// Pushes blobs then the manifest; re-uploads and retries when GC took a
/// blob in between (MANIFEST_BLOB_UNKNOWN).  Returns the manifest digest.
fn push_image(srv: &Server, repo: &str, tag: &str, blobs: &[Vec<u8>]) -> (Vec<u8>, String) {
    let a = auth_hdr(srv);
    for _attempt in 0..100 {
        for b in blobs {
            let r = srv.http(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(b)),
                &[("Authorization", &a)],
                b,
            );
            assert_eq!(r.status, 201, "{}", r.text());
        }
        let cd = sha256(&blobs[0]);
        let layers: Vec<(String, usize)> = blobs[1..].iter().map(|b| (sha256(b), b.len())).collect();
        let refs: Vec<(&str, usize)> = layers.iter().map(|(d, n)| (d.as_str(), *n)).collect();
        let m = image_manifest((&cd, blobs[0].len()), &refs, None);
        let r = srv.http(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Authorization", &a), ("Content-Type", OCI_MANIFEST)],
            &m,
        );
        match r.status {
            201 => return (m.clone(), sha256(&m)),
            400 if r.code() == "MANIFEST_BLOB_UNKNOWN" => continue,
            s => panic!("manifest push: {s} {}", r.text()),
        }
    }
    panic!("manifest never committed");
}

fn verify_image(srv: &Server, repo: &str, digest: &str, manifest: &[u8], blobs: &[Vec<u8>]) {
    let r = srv.http("GET", &format!("/v2/{repo}/manifests/{digest}"), &[], b"");
    assert_eq!(r.status, 200, "{repo}@{digest} lost");
    assert_eq!(r.body, manifest);
    for b in blobs {
        let r = srv.http("GET", &format!("/v2/{repo}/blobs/{}", sha256(b)), &[], b"");
        assert_eq!(r.status, 200, "blob of {repo}@{digest} lost");
        assert_eq!(&r.body, b);
    }
}

#[test]
fn pushes_and_pulls_during_repeated_gc_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Arc::new(Server::start_with(&dir.path().join("data"), &[], &[("MCR_GC_MIN_AGE", "0s")]));
    // Garbage that nothing will ever reference.
    let garbage: Vec<Vec<u8>> = (0..5).map(|i| bytes(1000 + i, 3000)).collect();
    for g in &garbage {
        let r = srv.http("POST", &format!("/v2/junk/blobs/uploads/?digest={}", sha256(g)), &[], g);
        assert_eq!(r.status, 201);
    }
    let shared = bytes(7, 50_000);
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let (srv, stop) = (srv.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::SeqCst) {
                let r = srv.http("POST", "/v1/gc", &[], b"");
                assert!(r.status == 202 || r.status == 409, "{}", r.text());
                runs += usize::from(r.status == 202);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            runs
        })
    };
    let clients: Vec<_> = (0..4u64)
        .map(|c| {
            let (srv, shared) = (srv.clone(), shared.clone());
            std::thread::spawn(move || {
                let mut committed = Vec::new();
                for i in 0..6u64 {
                    let config = format!("{{\"client\":{c},\"i\":{i}}}").into_bytes();
                    let blobs = vec![config, shared.clone(), bytes(c * 100 + i, 20_000)];
                    let repo = format!("team/c{c}");
                    let (m, d) = push_image(&srv, &repo, &format!("t{i}"), &blobs);
                    // Pull back what was just pushed, while GC runs.
                    verify_image(&srv, &repo, &d, &m, &blobs);
                    committed.push((repo, d, m, blobs));
                }
                committed
            })
        })
        .collect();
    let committed: Vec<_> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    stop.store(true, Ordering::SeqCst);
    let runs = collector.join().unwrap();
    assert!(runs >= 3, "GC ran {runs} times during the pushes");
    // A final collection with nothing in flight, then everything committed pulls.
    loop {
        let r = srv.http("POST", "/v1/gc", &[], b"");
        if r.status == 202 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for _ in 0..100 {
        if srv.http("GET", "/v1/gc/status", &[], b"").json()["running"] == false {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(committed.len(), 24);
    for (repo, d, m, blobs) in &committed {
        verify_image(&srv, repo, d, m, blobs);
    }
    for g in &garbage {
        assert_eq!(
            srv.http("HEAD", &format!("/v2/junk/blobs/{}", sha256(g)), &[], b"").status,
            404,
            "garbage collected"
        );
        let d = sha256(g);
        assert!(!srv.data_dir.join(format!("blobs/sha256/{}/{}", &d[7..9], &d[7..])).exists());
    }
}

fn count_blob_files(data: &std::path::Path) -> usize {
    let mut n = 0;
    for shard in std::fs::read_dir(data.join("blobs/sha256")).unwrap() {
        n += std::fs::read_dir(shard.unwrap().path()).unwrap().count();
    }
    n
}

fn crash_during(phase: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pause = format!("{phase}:5000");
    let mut srv = Server::start_with(&data, &[], &[("MCR_GC_MIN_AGE", "0s"), ("MCR_TEST_GC_PAUSE", &pause)]);
    let images: Vec<_> = (0..3u64)
        .map(|i| {
            let blobs = vec![format!("{{\"crash\":{i}}}").into_bytes(), bytes(500 + i, 10_000)];
            let (m, d) = push_image(&srv, "crash", &format!("v{i}"), &blobs);
            (d, m, blobs)
        })
        .collect();
    for i in 0..4u64 {
        let g = bytes(900 + i, 4000);
        assert_eq!(
            srv.http("POST", &format!("/v2/crash/blobs/uploads/?digest={}", sha256(&g)), &[], &g).status,
            201
        );
    }
    assert_eq!(srv.http("POST", "/v1/gc", &[], b"").status, 202);
    // Wait until the collector sits in the pause, then kill it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !srv.log().contains(&format!("gc test pause phase={phase}")) {
        assert!(std::time::Instant::now() < deadline, "{}", srv.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    srv.kill();

    let mut srv2 = Server::start_on(&data, &[("MCR_GC_MIN_AGE", "0s")]);
    for (d, m, blobs) in &images {
        verify_image(&srv2, "crash", d, m, blobs);
    }
    // Collect again (to completion), stop, and reconcile offline: no orphan
    // file, no row without a file.
    assert_eq!(srv2.http("POST", "/v1/gc", &[], b"").status, 202);
    for _ in 0..100 {
        if srv2.http("GET", "/v1/gc/status", &[], b"").json()["running"] == false {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(srv2.terminate().success());
    let out = mcr_on(&data).args(["reconcile", "--data-dir"]).arg(&data).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert_eq!(report["missing_files"], json!([]));
    assert_eq!(report["orphan_files_removed"], 0, "the restart's reconcile already cleaned up: {report}");
    // The blob rows, counted through the API (either engine).
    let srv3 = Server::start_on(&data, &[]);
    let rows = srv3.http("GET", "/v1/status", &[], b"").json()["counts"]["blobs"].as_i64().unwrap_or(-1);
    assert_eq!(count_blob_files(&data) as i64, rows, "one file per row");
    assert_eq!(rows, 6, "the 3 images' blobs remain, the garbage is gone");
}

#[test]
fn sigkill_during_gc_phase1_loses_nothing() {
    crash_during("phase1");
}

#[test]
fn sigkill_during_gc_phase2_loses_nothing() {
    crash_during("phase2");
}

#[test]
fn a_manifest_naming_a_collected_blob_is_refused_and_gc_is_audited() {
    let t = TestApp::with(|c| c.gc.min_age = "0s".into());
    let cd = t.blob("late", b"{}");
    let ld = t.blob("late", b"late layer");
    gc(&t);
    let m = image_manifest((&cd, 2), &[(&ld, 10)], None);
    t.manifest("late", "v1", OCI_MANIFEST, &m).expect(400, Some("MANIFEST_BLOB_UNKNOWN"));
    t.req("POST", "/v1/gc/reconcile").send().expect(200, None);
    let rows = mcr::service::audit::query(
        &t.admin_ctx(),
        &mcr::db::audit::Filter { limit: 100, ..Default::default() },
    )
    .unwrap();
    let types: Vec<&str> = rows
        .iter()
        .map(|r| r.event_type.as_str())
        .filter(|t| t.contains("gc") || t.contains("reconcile"))
        .collect();
    assert_eq!(types, ["gc_started", "gc_completed", "reconcile_completed"]);
    let done = rows.iter().find(|r| r.event_type == "gc_completed").unwrap();
    assert_eq!(done.actor.as_deref(), Some("admin"));
    assert!(done.detail.contains("\"blobs_removed\":2"), "{}", done.detail);
}

#[test]
fn scheduled_collections_run_on_the_gc_thread() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_with(
        &dir.path().join("data"),
        &[],
        &[("MCR_GC_INTERVAL", "1s"), ("MCR_GC_MIN_AGE", "0s")],
    );
    let g = b"scheduled garbage";
    assert_eq!(srv.http("POST", &format!("/v2/s/blobs/uploads/?digest={}", sha256(g)), &[], g).status, 201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let st = srv.http("GET", "/v1/gc/status", &[], b"").json();
        if st["last"]["blobs_removed"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no scheduled run: {st}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(srv.http("HEAD", &format!("/v2/s/blobs/{}", sha256(g)), &[], b"").status, 404);
    assert!(
        srv.log().contains("gc started") && srv.log().contains("actor=system:gc-schedule"),
        "{}",
        srv.log()
    );
}

/// A chunk cut short by a crash (SIGKILL mid-PATCH) is not part of the
/// upload after the restart: the session resumes at its last whole chunk
/// and completes with the right digest.
#[test]
fn a_chunk_cut_by_a_crash_is_not_part_of_the_upload() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start_on(&data, &[]);
    let blob = bytes(77, 3 << 20);
    let r = srv.http("POST", "/v2/crash/blobs/uploads/", &[], b"");
    let loc = r.header("Location").unwrap().to_string();
    let r = srv.http("PATCH", &loc, &[("Content-Range", "0-99")], &blob[..100]);
    assert_eq!(r.status, 202, "{}", r.text());
    // A chunk that declares the rest, sends a part of it, and the server dies.
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Range: 100-{}\r\nContent-Length: {}\r\n\r\n",
        srv.admin_auth(),
        blob.len() - 1,
        blob.len() - 100
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&blob[100..(2 << 20)]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    srv.kill();
    drop(s);
    let srv = Server::start_on(&data, &[]);
    let r = srv.http("GET", &loc, &[], b"");
    assert_eq!((r.status, r.header("Range")), (204, Some("0-99")), "the cut chunk is gone: {}", r.text());
    let r = srv.http("PATCH", &loc, &[("Content-Range", &format!("100-{}", blob.len() - 1))], &blob[100..]);
    assert_eq!(r.status, 202, "{}", r.text());
    let r = srv.http("PUT", &format!("{loc}?digest={}", sha256(&blob)), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = srv.http("GET", &format!("/v2/crash/blobs/{}", sha256(&blob)), &[], b"");
    assert!(r.body == blob, "the blob reads back whole");
}

/// A session a request is streaming into is never purged, however short
/// the TTL: the purge takes the session's lock, and skips it when busy.
#[test]
fn reconcile_never_purges_a_session_in_use() {
    use std::sync::mpsc;
    let t = TestApp::with(|c| c.uploads.ttl = "0s".into());
    let loc = t.req("POST", "/v2/r/blobs/uploads/").send().header("Location").unwrap().to_string();
    let data = bytes(5, 64 * 1024);
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    /// A body that stops halfway until told to go on.
    struct Slow<'a> {
        data: &'a [u8],
        at: usize,
        started: Option<mpsc::Sender<()>>,
        go: mpsc::Receiver<()>,
    }
    impl std::io::Read for Slow<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at == self.data.len() / 2 {
                if let Some(s) = self.started.take() {
                    s.send(()).unwrap();
                    self.go.recv().unwrap();
                }
            }
            let end = (self.at + buf.len()).min(self.data.len()).min(if self.at < self.data.len() / 2 {
                self.data.len() / 2
            } else {
                self.data.len()
            });
            let n = end - self.at;
            buf[..n].copy_from_slice(&self.data[self.at..end]);
            self.at = end;
            Ok(n)
        }
    }
    std::thread::scope(|s| {
        let patch = s.spawn(|| {
            let body = Slow { data: &data, at: 0, started: Some(started_tx), go: go_rx };
            t.req("PATCH", &loc).header("Content-Length", &data.len().to_string()).reader(body).send()
        });
        started.recv().unwrap();
        let rep = mcr::service::admin::reconcile(&t.admin_ctx()).unwrap();
        assert_eq!(rep.uploads_purged, 0, "the busy session is kept: {rep:?}");
        go.send(()).unwrap();
        let r = patch.join().unwrap();
        assert_eq!(r.status, 202, "{}", r.text());
    });
    let d = sha256(&data);
    t.req("PUT", &format!("{loc}?digest={d}")).send().expect(201, None);
    // Idle, the same session would have gone.
    let loc = t.req("POST", "/v2/r/blobs/uploads/").send().header("Location").unwrap().to_string();
    assert_eq!(mcr::service::admin::reconcile(&t.admin_ctx()).unwrap().uploads_purged, 1);
    t.req("GET", &loc).send().expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
}

/// A manifest can name a blob of a repository its pusher may not read only
/// as a non-distributable layer, and then pins nothing: once that
/// repository is deleted, its blob is collected.
#[test]
fn a_foreign_layer_reference_does_not_pin_another_repositorys_blob() {
    let t = TestApp::with(|c| c.gc.min_age = "0s".into());
    let secret = bytes(42, 5000);
    image_of(&t, "private/app", "v1", b"{\"private\":1}", &[&secret], None);
    let sd = sha256(&secret);
    t.user("bob", "bob-password-1", &[], true);
    t.rule(r#"{"effect":"allow","actions":["pull","push"],"repositories":["bob/*"],"usernames":["bob"]}"#);
    let bob = basic("bob", "bob-password-1");
    assert_eq!(
        t.req("GET", &format!("/v2/private/app/blobs/{sd}")).auth(&bob).send().status,
        403,
        "bob may not read it"
    );
    let config = b"{\"bob\":1}".to_vec();
    let cd = sha256(&config);
    t.req("POST", &format!("/v2/bob/app/blobs/uploads/?digest={cd}"))
        .auth(&bob)
        .body(&config)
        .send()
        .expect(201, None);
    let layer = |media: &str| {
        serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len() },
            "layers": [{ "mediaType": media, "digest": sd, "size": secret.len() }],
        })
        .to_string()
        .into_bytes()
    };
    // As an ordinary layer: refused, it is not in bob's repository.
    let r = t
        .req("PUT", "/v2/bob/app/manifests/plain")
        .auth(&bob)
        .header("Content-Type", OCI_MANIFEST)
        .body(&layer("application/vnd.oci.image.layer.v1.tar"))
        .send();
    r.expect(400, Some("MANIFEST_BLOB_UNKNOWN"));
    // As a non-distributable layer: accepted, recorded, pinning nothing.
    let m = layer("application/vnd.oci.image.layer.nondistributable.v1.tar");
    let r = t
        .req("PUT", "/v2/bob/app/manifests/foreign")
        .auth(&bob)
        .header("Content-Type", OCI_MANIFEST)
        .body(&m)
        .send();
    r.expect(201, None);
    t.req("DELETE", "/v1/repositories/private/app").send().expect(204, None);
    assert!(blob_file(&t, &sd).exists());
    let report = gc(&t);
    assert!(!blob_file(&t, &sd).exists(), "the private blob is collected: {report}");
    let r = t.req("GET", "/v2/bob/app/manifests/foreign").auth(&bob).header("Accept", OCI_MANIFEST).send();
    assert_eq!((r.status, r.body), (200, m), "bob's manifest is still there");
}
