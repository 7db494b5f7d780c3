//! The S3 blob store on a real replicated object store: a three-replica
//! OpenStack Swift ring with `s3api`, started by `scripts/swift` (R-SCALE-1).
//! One ring serves every phase (it takes ~15 s and ~500 MiB to start).

use crate::support::*;
use std::process::Command;

fn skopeo_copy(srv: &Server, tls_flag: &str, src: &str, dst: &str) {
    let auth = if src.starts_with("docker://") { "--src-creds" } else { "--dest-creds" };
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "-q",
        "--preserve-digests",
        auth,
        &srv.creds(),
        tls_flag,
        src,
        dst,
    ]));
}

/// Pushes an image with a layer over one part (multipart) and small ones
/// with skopeo, pulls it back, and checks every blob byte for byte.
fn round_trip(srv: &Server, repo: &str, seed: u64) -> Vec<String> {
    let host = srv.host();
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
    let mut layout = Layout::new(&src);
    let img = layout.image_sized(Some("v1"), seed, &[1000, 12 << 20, 5 << 20], "amd64");
    skopeo_copy(
        srv,
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{host}/{repo}:v1"),
    );
    skopeo_copy(
        srv,
        "--src-tls-verify=false",
        &format!("docker://{host}/{repo}:v1"),
        &format!("oci:{}:v1", out.display()),
    );
    let m: serde_json::Value = serde_json::from_slice(&layout.blob(&img.digest)).unwrap();
    let mut digests = vec![img.digest.clone(), m["config"]["digest"].as_str().unwrap().to_string()];
    digests.extend(m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()));
    for d in &digests {
        let got = std::fs::read(out.join("blobs/sha256").join(&d[7..]))
            .unwrap_or_else(|_| panic!("{d} not pulled"));
        assert_eq!(sha256(&got), *d, "{repo}: {d} came back changed");
    }
    digests
}

/// Files under `dir`, recursively (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn s3_backend_on_a_three_replica_swift_ring() {
    let swift = Swift::start();

    // The blob-store conformance suite, as FsStore runs it.
    let store = swift.store("conformance/");
    mcr::storage::tests::conformance(&store);

    // A registry on the ring: skopeo pushes and pulls real images.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut env = swift.env("registry/");
    env.push(("MCR_GC_MIN_AGE".into(), "0s".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut a = Server::start_on(&data, &env);
    let pushed = round_trip(&a, "s3/app", 31);
    assert!(!a.log().contains(&swift.secret_key), "the S3 secret is never logged");
    // The blobs are in the bucket, under the registry's prefix, not on disk.
    let mut in_bucket = Vec::new();
    mcr::storage::BlobStore::each_blob(&swift.store("registry/"), &mut |d, _| {
        in_bucket.extend(d.map(|d| d.to_string()))
    })
    .unwrap();
    // (Manifests live in the database: the config and layers are blobs.)
    for d in &pushed[1..] {
        assert!(in_bucket.contains(d), "{d} is not in the bucket");
    }
    let on_disk = walk(&data.join("blobs"));
    assert!(on_disk.is_empty(), "blobs on the local disk: {on_disk:?}");

    // Another database on the same prefix (a lost data directory, a staging
    // copy) must not start: its reconcile would take every blob for an orphan.
    let other = tmp.path().join("other");
    let out = Command::new(env!("CARGO_BIN_EXE_mcr"))
        .args(["serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&other)
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second registry started on the bucket: {err}");
    assert!(err.contains("belongs to registry"), "{err}");

    // A chunked upload that another process finishes: the hash state
    // travels with the upload (its first 6 MiB are a multipart part that
    // S3 cannot read back, so nothing else could continue it).
    let blob = bytes(77, (9 << 20) + 123);
    let loc =
        a.http("POST", "/v2/s3/chunked/blobs/uploads/", &[], b"").header("Location").unwrap().to_string();
    let first = 6 << 20;
    let r = a.http("PATCH", &loc, &[("Content-Range", &format!("0-{}", first - 1))], &blob[..first]);
    assert_eq!(r.status, 202, "{}", r.text());
    a.terminate();
    let b = Server::start_on(&data, &env);
    let r =
        b.http("PATCH", &loc, &[("Content-Range", &format!("{first}-{}", blob.len() - 1))], &blob[first..]);
    assert_eq!(r.status, 202, "{}", r.text());
    let d = sha256(&blob);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = b.http("PUT", &format!("{loc}{sep}digest={d}"), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = b.http("GET", &format!("/v2/s3/chunked/blobs/{d}"), &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body == blob, "the blob reads back whole");
    let r = b.http("GET", &format!("/v2/s3/chunked/blobs/{d}"), &[("Range", "bytes=7340032-7340041")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &blob[7340032..7340042], "a range comes from the right offset");

    // One of the three object servers dies: pushes and pulls go on.
    swift.ctl(&["kill-object", "1"]);
    let kept = round_trip(&b, "s3/degraded", 32);

    // Garbage collection on the bucket: the deleted image's blobs go, the
    // other image's stay and still pull; reconcile finds nothing amiss.
    let r = b.http("DELETE", &format!("/v2/s3/app/manifests/{}", pushed[0]), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let run = b.http("POST", "/v1/gc", &[], b"");
    assert_eq!(run.status, 202, "{}", run.text());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let last = loop {
        let st = b.http("GET", "/v1/gc/status", &[], b"").json();
        if st["running"] == false && st["last"]["run_id"] == run.json()["run_id"] {
            break st["last"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "GC did not finish: {st}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(last["errors"], serde_json::json!([]), "{last}");
    // The deleted image's config and layers, and the chunked blob no image uses.
    assert_eq!(last["blobs_removed"], pushed.len() - 1 + 1, "{last}");
    let mut in_bucket = Vec::new();
    mcr::storage::BlobStore::each_blob(&swift.store("registry/"), &mut |d, _| {
        in_bucket.extend(d.map(|d| d.to_string()))
    })
    .unwrap();
    for d in &pushed[1..] {
        assert!(!in_bucket.contains(d), "{d} of the deleted image is still in the bucket");
    }
    for d in &kept[1..] {
        assert!(in_bucket.contains(d), "{d} of the kept image was collected");
    }
    round_trip(&b, "s3/degraded", 32);
    let rec = b.http("POST", "/v1/gc/reconcile", &[], b"");
    assert_eq!(rec.status, 200, "{}", rec.text());
    let rec = rec.json();
    assert_eq!(rec["missing_files"], serde_json::json!([]), "{rec}");
    assert_eq!(rec["unknown_files"], serde_json::json!([]), "{rec}");
}
