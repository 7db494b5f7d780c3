//! skopeo, a real registry client, against the real `mcr` binary: images,
//! multi-platform indexes and artifacts go in and come back byte for byte.

use crate::support::*;
use std::path::Path;
use std::process::Command;

fn skopeo() -> Command {
    let mut c = Command::new("skopeo");
    c.arg("--insecure-policy");
    c
}

fn copy(srv: &Server, args: &[&str], src: &str, dst: &str) {
    let creds = srv.creds();
    let auth = if src.starts_with("docker://") { "--src-creds" } else { "--dest-creds" };
    run(skopeo()
        .arg("copy")
        .arg("-q")
        .arg("--preserve-digests")
        .args([auth, &creds])
        .args(args)
        .arg(src)
        .arg(dst));
}

fn inspect_raw(srv: &Server, image: &str) -> Vec<u8> {
    let host = srv.host();
    let out = skopeo()
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &srv.creds(),
            &format!("docker://{host}/{image}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "inspect {image}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Every blob and manifest of `src` is present, byte for byte, in `dst`.
fn same_blobs(src: &Path, dst: &Path, digests: &[&str]) {
    for d in digests {
        let hex = &d[7..];
        let a = std::fs::read(src.join("blobs/sha256").join(hex)).unwrap();
        let b = std::fs::read(dst.join("blobs/sha256").join(hex))
            .unwrap_or_else(|_| panic!("{d} missing after the round trip"));
        assert_eq!(a, b, "{d}");
        assert_eq!(sha256(&b), *d);
    }
}

fn manifest_blobs(layout: &Layout, manifest: &Desc) -> Vec<String> {
    let m: serde_json::Value = serde_json::from_slice(&layout.blob(&manifest.digest)).unwrap();
    let mut out = vec![manifest.digest.clone(), m["config"]["digest"].as_str().unwrap().to_string()];
    for l in m["layers"].as_array().unwrap() {
        out.push(l["digest"].as_str().unwrap().to_string());
    }
    out
}

#[test]
fn skopeo_image_round_trip_tags_and_delete() {
    let srv = Server::start();
    let host = srv.host();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut layout = Layout::new(&src);
    let img = layout.image(Some("v1"), 11, 3, "amd64");

    copy(
        &srv,
        &["--dest-tls-verify=false"],
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{host}/lib/multi:v1"),
    );
    copy(
        &srv,
        &["--dest-tls-verify=false"],
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{host}/lib/multi:v2"),
    );
    assert_eq!(inspect_raw(&srv, "lib/multi:v1"), layout.blob(&img.digest), "manifest kept byte for byte");

    let out = tmp.path().join("out");
    copy(
        &srv,
        &["--src-tls-verify=false"],
        &format!("docker://{host}/lib/multi:v1"),
        &format!("oci:{}:v1", out.display()),
    );
    let blobs = manifest_blobs(&layout, &img);
    assert_eq!(blobs.len(), 5);
    same_blobs(&src, &out, &blobs.iter().map(String::as_str).collect::<Vec<_>>());

    let tags = run(skopeo().args([
        "list-tags",
        "--tls-verify=false",
        "--creds",
        &srv.creds(),
        &format!("docker://{host}/lib/multi"),
    ]));
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1", "v2"]));

    // skopeo deletes by digest: both tags of that manifest go.
    run(skopeo().args([
        "delete",
        "--tls-verify=false",
        "--creds",
        &srv.creds(),
        &format!("docker://{host}/lib/multi:v1"),
    ]));
    let out = skopeo()
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &srv.creds(),
            &format!("docker://{host}/lib/multi:v2"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "deleted manifest is gone");
    let r = srv.http("GET", "/v2/lib/multi/tags/list", &[], b"");
    assert_eq!(r.json()["tags"], serde_json::json!([]));
}

#[test]
fn skopeo_multi_platform_index() {
    let srv = Server::start();
    let host = srv.host();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut layout = Layout::new(&src);
    let idx = layout.index("multi", 21, &["amd64", "arm64", "s390x"]);

    copy(
        &srv,
        &["--all", "--dest-tls-verify=false"],
        &format!("oci:{}:multi", src.display()),
        &format!("docker://{host}/plat:multi"),
    );
    assert_eq!(inspect_raw(&srv, "plat:multi"), layout.blob(&idx.digest));
    let index: serde_json::Value = serde_json::from_slice(&layout.blob(&idx.digest)).unwrap();
    let mut all = vec![idx.digest.clone()];
    for child in index["manifests"].as_array().unwrap() {
        let d = child["digest"].as_str().unwrap();
        assert_eq!(inspect_raw(&srv, &format!("plat@{d}")), layout.blob(d));
        let desc = Desc { media_type: OCI_MANIFEST.into(), digest: d.to_string(), size: 0 };
        all.extend(manifest_blobs(&layout, &desc));
    }
    let out = tmp.path().join("out");
    copy(
        &srv,
        &["--all", "--src-tls-verify=false"],
        &format!("docker://{host}/plat:multi"),
        &format!("oci:{}:multi", out.display()),
    );
    same_blobs(&src, &out, &all.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn skopeo_artifact_with_subject_and_referrers() {
    let srv = Server::start();
    let host = srv.host();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut layout = Layout::new(&src);
    let img = layout.image(Some("app"), 31, 1, "amd64");
    let art = layout.artifact("sig", "application/vnd.example.signature", &img, b"signed!");

    let s = src.display();
    copy(&srv, &["--dest-tls-verify=false"], &format!("oci:{s}:app"), &format!("docker://{host}/signed:app"));
    copy(&srv, &["--dest-tls-verify=false"], &format!("oci:{s}:sig"), &format!("docker://{host}/signed:sig"));
    assert_eq!(inspect_raw(&srv, "signed:sig"), layout.blob(&art.digest), "artifact manifest unchanged");

    let r = srv.http("GET", &format!("/v2/signed/referrers/{}", img.digest), &[], b"");
    assert_eq!(r.status, 200);
    let ms = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(ms.len(), 1, "{}", r.text());
    assert_eq!(ms[0]["digest"], art.digest.as_str());
    assert_eq!(ms[0]["artifactType"], "application/vnd.example.signature");
    assert_eq!(ms[0]["annotations"]["org.example.kind"], "signature");

    let out = tmp.path().join("out");
    copy(
        &srv,
        &["--src-tls-verify=false"],
        &format!("docker://{host}/signed:sig"),
        &format!("oci:{}:sig", out.display()),
    );
    same_blobs(&src, &out, &manifest_blobs(&layout, &art).iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn skopeo_with_a_wrong_password_or_without_rights_is_refused() {
    let srv = Server::start();
    let host = srv.host();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut layout = Layout::new(&src);
    layout.image(Some("v1"), 61, 1, "amd64");
    let try_copy = |creds: &str| {
        skopeo()
            .args(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", creds])
            .arg(format!("oci:{}:v1", src.display()))
            .arg(format!("docker://{host}/guarded/img:v1"))
            .output()
            .unwrap()
    };
    let out = try_copy("admin:not-the-password");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("unauthorized") || err.contains("invalid username/password"), "{err}");
    // A system account without a rule: authenticated, but denied.
    let mut add = mcr_on(&srv.data_dir)
        .args(["user", "add", "builder", "--system", "--password-stdin", "--data-dir"])
        .arg(&srv.data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        add.stdin.take().unwrap().write_all(b"builder-password\n").unwrap();
    }
    assert!(add.wait().unwrap().success());
    let out = try_copy("builder:builder-password");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("denied") || err.contains("403"), "{err}");
    // The admin may.
    let out = try_copy(&srv.creds());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
