//! The OCI Distribution API through the full HTTP dispatch, in process:
//! every endpoint, status code and error of the spec that mcr implements.

use crate::support::*;
use serde_json::{json, Value};

#[test]
fn version_check_and_unknown_routes() {
    let t = TestApp::new();
    let r = t.req("GET", "/v2/").send();
    r.expect(200, None);
    assert_eq!(r.header("Docker-Distribution-API-Version"), Some("registry/2.0"));
    let r = t.req("GET", "/v2/some/repo").send();
    r.expect(404, Some("UNSUPPORTED"));
    assert_eq!(r.header("Docker-Distribution-API-Version"), Some("registry/2.0"), "errors carry it too");
    t.req("POST", "/v2/a/tags/list").send().expect(405, Some("UNSUPPORTED"));
    t.req("PATCH", "/v2/a/manifests/x").send().expect(405, Some("UNSUPPORTED"));
}

#[test]
fn monolithic_blob_head_get_range_delete() {
    let t = TestApp::new();
    let data = bytes(1, 1000);
    let d = sha256(&data);
    let r = t.req("POST", &format!("/v2/lib/a/blobs/uploads/?digest={d}")).body(&data).send();
    r.expect(201, None);
    assert_eq!(r.header("Location").unwrap(), format!("/v2/lib/a/blobs/{d}"));
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));

    let r = t.req("HEAD", &format!("/v2/lib/a/blobs/{d}")).send();
    r.expect(200, None);
    assert_eq!(r.content_length, Some(1000));
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));
    assert!(r.body.is_empty());

    let r = t.req("GET", &format!("/v2/lib/a/blobs/{d}")).send();
    r.expect(200, None);
    assert_eq!(r.body, data);

    for (range, start, end) in
        [("bytes=0-9", 0, 9), ("bytes=990-", 990, 999), ("bytes=-5", 995, 999), ("bytes=100-5000", 100, 999)]
    {
        let r = t.req("GET", &format!("/v2/lib/a/blobs/{d}")).header("Range", range).send();
        r.expect(206, None);
        assert_eq!(r.header("Content-Range").unwrap(), format!("bytes {start}-{end}/1000"));
        assert_eq!(r.body, &data[start..=end], "{range}");
    }
    for bad in ["bytes=500-0", "bytes=1000-", "bytes=x-1", "pages=0-1", "bytes=0-1,5-6"] {
        let r = t.req("GET", &format!("/v2/lib/a/blobs/{d}")).header("Range", bad).send();
        r.expect(416, None);
        assert_eq!(r.header("Content-Range"), Some("bytes */1000"), "{bad}");
    }

    // Not readable through another repository.
    t.req("GET", &format!("/v2/lib/b/blobs/{d}")).send().expect(404, Some("BLOB_UNKNOWN"));
    t.req("HEAD", &format!("/v2/lib/b/blobs/{d}")).send().expect(404, None);

    t.req("DELETE", &format!("/v2/lib/a/blobs/{d}")).send().expect(202, None);
    t.req("GET", &format!("/v2/lib/a/blobs/{d}")).send().expect(404, Some("BLOB_UNKNOWN"));
    t.req("DELETE", &format!("/v2/lib/a/blobs/{d}")).send().expect(404, Some("BLOB_UNKNOWN"));
}

#[test]
fn post_then_put_upload() {
    let t = TestApp::new();
    let data = bytes(2, 5000);
    let d = sha256(&data);
    let r = t.req("POST", "/v2/a/blobs/uploads/").send();
    r.expect(202, None);
    let loc = r.header("Location").unwrap().to_string();
    let uuid = r.header("Docker-Upload-UUID").unwrap();
    assert!(loc.ends_with(uuid), "{loc}");
    assert_eq!(r.header("Range"), Some("0-0"));
    let r = t.req("PUT", &format!("{loc}?digest={d}")).body(&data).send();
    r.expect(201, None);
    assert_eq!(r.header("Location").unwrap(), format!("/v2/a/blobs/{d}"));
    assert_eq!(t.req("GET", &format!("/v2/a/blobs/{d}")).send().body, data);
    // The session is over.
    t.req("GET", &loc).send().expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
}

#[test]
fn chunked_upload_in_and_out_of_order() {
    let t = TestApp::new();
    let data = bytes(3, 300);
    let d = sha256(&data);
    let loc = t.req("POST", "/v2/a/blobs/uploads/").send().header("Location").unwrap().to_string();

    let r = t
        .req("PATCH", &loc)
        .header("Content-Range", "0-99")
        .header("Content-Type", "application/octet-stream")
        .body(&data[..100])
        .send();
    r.expect(202, None);
    assert_eq!(r.header("Range"), Some("0-99"));
    assert_eq!(r.header("Location"), Some(loc.as_str()));

    let r = t.req("GET", &loc).send();
    r.expect(204, None);
    assert_eq!(r.header("Range"), Some("0-99"));
    assert_eq!(r.header("Docker-Upload-UUID").map(|u| loc.ends_with(u)), Some(true));

    // Out of order: a chunk that starts past (or before) the offset.
    let r = t.req("PATCH", &loc).header("Content-Range", "150-199").body(&data[150..200]).send();
    r.expect(416, Some("BLOB_UPLOAD_INVALID"));
    assert_eq!(r.header("Range"), Some("0-99"));
    // A retried PATCH of the first chunk on the same Location: 416, never 404.
    t.req("PATCH", &loc).header("Content-Range", "0-99").body(&data[..100]).send().expect(416, None);
    // Content-Range that disagrees with Content-Length, or is malformed.
    t.req("PATCH", &loc).header("Content-Range", "100-109").body(&data[100..105]).send().expect(416, None);
    t.req("PATCH", &loc).header("Content-Range", "abc").body(&data[100..105]).send().expect(416, None);
    t.req("PATCH", &loc).header("Content-Range", "120-100").body(&data[100..105]).send().expect(416, None);

    // Docker's streamed PATCH: no Content-Range, no Content-Length.
    let r = t.req("PATCH", &loc).reader(&data[100..250]).send();
    r.expect(202, None);
    assert_eq!(r.header("Range"), Some("0-249"));

    // Bad digest on completion discards the session.
    let wrong = sha256(b"other");
    let loc2 = t.req("POST", "/v2/a/blobs/uploads/").send().header("Location").unwrap().to_string();
    t.req("PATCH", &loc2).body(b"abc").send().expect(202, None);
    t.req("PUT", &format!("{loc2}?digest={wrong}")).send().expect(400, Some("DIGEST_INVALID"));
    t.req("GET", &loc2).send().expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
    t.req("GET", &format!("/v2/a/blobs/{wrong}")).send().expect(404, None);

    // Missing or malformed digest on completion.
    t.req("PUT", &loc).send().expect(400, Some("DIGEST_INVALID"));
    t.req("PUT", &format!("{loc}?digest=sha256:short")).send().expect(400, Some("DIGEST_INVALID"));

    // Final chunk with the PUT.
    let r = t
        .req("PUT", &format!("{loc}?digest={d}"))
        .header("Content-Range", "250-299")
        .body(&data[250..])
        .send();
    r.expect(201, None);
    assert_eq!(t.req("GET", &format!("/v2/a/blobs/{d}")).send().body, data);
}

#[test]
fn upload_status_cancel_and_unknown_ids() {
    let t = TestApp::new();
    let loc = t.req("POST", "/v2/a/blobs/uploads/").send().header("Location").unwrap().to_string();
    let id = loc.rsplit('/').next().unwrap().to_string();
    // Another repository cannot see or touch the session.
    t.req("GET", &format!("/v2/b/blobs/uploads/{id}")).send().expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
    t.req("PATCH", &format!("/v2/b/blobs/uploads/{id}"))
        .body(b"x")
        .send()
        .expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
    t.req("DELETE", &loc).send().expect(204, None);
    t.req("GET", &loc).send().expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
    t.req("DELETE", &loc).send().expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
    for bad in ["nope", "..", "%2e%2e", "00000000-0000-4000-8000-000000000000", &"f".repeat(300)] {
        t.req("GET", &format!("/v2/a/blobs/uploads/{bad}")).send().expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
        t.req("PUT", &format!("/v2/a/blobs/uploads/{bad}?digest={}", sha256(b"")))
            .send()
            .expect(404, Some("BLOB_UPLOAD_UNKNOWN"));
    }
}

#[test]
fn cross_repository_mount_and_fallback() {
    let t = TestApp::new();
    let d = t.blob("src", b"shared layer");
    let r = t.req("POST", &format!("/v2/dst/blobs/uploads/?mount={d}&from=src")).send();
    r.expect(201, None);
    assert_eq!(r.header("Location").unwrap(), format!("/v2/dst/blobs/{d}"));
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));
    assert_eq!(t.req("GET", &format!("/v2/dst/blobs/{d}")).send().body, b"shared layer");

    // Not mountable: the source lacks it, the source is unknown, or no source.
    let missing = sha256(b"missing");
    for q in [format!("mount={missing}&from=src"), format!("mount={d}&from=nowhere"), format!("mount={d}")] {
        let r = t.req("POST", &format!("/v2/third/blobs/uploads/?{q}")).send();
        r.expect(202, None);
        assert!(r.header("Location").unwrap().starts_with("/v2/third/blobs/uploads/"), "{q}");
    }
    t.req("POST", "/v2/third/blobs/uploads/?mount=sha256:nope&from=src")
        .send()
        .expect(400, Some("DIGEST_INVALID"));
    t.req("POST", &format!("/v2/third/blobs/uploads/?mount={d}&from=Bad"))
        .send()
        .expect(400, Some("NAME_INVALID"));
}

#[test]
fn digest_algorithms() {
    let t = TestApp::new();
    let data = b"sha512 content";
    let d512 = {
        use sha2::Digest as _;
        let h = sha2::Sha512::digest(data);
        format!("sha512:{}", h.iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    let r = t.req("POST", "/v2/a/blobs/uploads/?digest-algorithm=sha512").send();
    r.expect(202, None);
    let loc = r.header("Location").unwrap().to_string();
    t.req("PUT", &format!("{loc}?digest={d512}")).body(data).send().expect(201, None);
    let r = t.req("GET", &format!("/v2/a/blobs/{d512}")).send();
    r.expect(200, None);
    assert_eq!(r.body, data);
    // A sha256 session completed with a sha512 digest is re-hashed, not refused.
    let loc = t.req("POST", "/v2/b/blobs/uploads/").send().header("Location").unwrap().to_string();
    t.req("PATCH", &loc).body(data).send().expect(202, None);
    t.req("PUT", &format!("{loc}?digest={d512}")).send().expect(201, None);
    // Monolithic sha512.
    t.req("POST", &format!("/v2/c/blobs/uploads/?digest={d512}")).body(data).send().expect(201, None);
    for bad in ["md5", "sha1", "SHA256", ""] {
        t.req("POST", &format!("/v2/a/blobs/uploads/?digest-algorithm={bad}"))
            .send()
            .expect(400, Some("DIGEST_INVALID"));
    }
    t.req("GET", &format!("/v2/a/blobs/md5:{}", "a".repeat(32))).send().expect(400, Some("DIGEST_INVALID"));
}

#[test]
fn manifest_push_pull_by_tag_and_digest() {
    let t = TestApp::new();
    let (m, d) = t.image("lib/app", "v1", 7);
    let r = t.req("GET", "/v2/lib/app/manifests/v1").send();
    r.expect(200, None);
    assert_eq!(r.body, m);
    assert_eq!(r.header("Content-Type"), Some(OCI_MANIFEST));
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));
    let r = t.req("GET", &format!("/v2/lib/app/manifests/{d}")).header("Accept", OCI_MANIFEST).send();
    assert_eq!(r.body, m);
    let r = t.req("HEAD", "/v2/lib/app/manifests/v1").send();
    r.expect(200, None);
    assert_eq!(r.content_length, Some(m.len() as u64));
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));
    // Push by digest: the same bytes, the Location names the digest.
    let r = t.manifest("lib/app", &d, OCI_MANIFEST, &m);
    r.expect(201, None);
    assert_eq!(r.header("Location").unwrap(), format!("/v2/lib/app/manifests/{d}"));
    // Unknown.
    t.req("GET", "/v2/lib/app/manifests/nope").send().expect(404, Some("MANIFEST_UNKNOWN"));
    t.req("GET", &format!("/v2/lib/other/manifests/{d}")).send().expect(404, Some("MANIFEST_UNKNOWN"));
    t.req("HEAD", "/v2/lib/app/manifests/nope").send().expect(404, None);
    t.req("GET", "/v2/lib/app/manifests/sha256:zz").send().expect(400, Some("DIGEST_INVALID"));
    // A tag moves.
    let (_, d2) = t.image("lib/app", "v1", 8);
    assert_eq!(
        t.req("HEAD", "/v2/lib/app/manifests/v1").send().header("Docker-Content-Digest"),
        Some(d2.as_str())
    );
}

#[test]
fn manifest_bad_input() {
    let t = TestApp::new();
    let cd = t.blob("a", b"{}");
    let ld = t.blob("a", b"layer");
    let good = image_manifest((&cd, 2), &[(&ld, 5)], None);
    // Digest in the URL that does not match the body.
    t.manifest("a", &sha256(b"x"), OCI_MANIFEST, &good).expect(400, Some("DIGEST_INVALID"));
    // Missing layer / config.
    let missing = sha256(b"missing");
    let r = t.manifest("a", "t", OCI_MANIFEST, &image_manifest((&cd, 2), &[(&missing, 7)], None));
    r.expect(400, Some("MANIFEST_BLOB_UNKNOWN"));
    assert_eq!(r.json()["errors"][0]["detail"]["digest"], missing);
    t.manifest("a", "t", OCI_MANIFEST, &image_manifest((&missing, 2), &[], None))
        .expect(400, Some("MANIFEST_BLOB_UNKNOWN"));
    // A blob of another repository does not count.
    let other = t.blob("b", b"other layer");
    t.manifest("a", "t", OCI_MANIFEST, &image_manifest((&cd, 2), &[(&other, 11)], None))
        .expect(400, Some("MANIFEST_BLOB_UNKNOWN"));
    // Malformed bodies.
    for body in [
        &b"not json"[..],
        b"[]",
        b"{}",
        br#"{"schemaVersion":1}"#,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:x","size":1,"mediaType":"a"},"layers":[]}"#,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":-1,"mediaType":"a"},"layers":[]}"#,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":{}}"#,
        br#"{"schemaVersion":2,"mediaType":"application/x-unknown","layers":[]}"#,
    ] {
        let r = t.manifest("a", "t", OCI_MANIFEST, body);
        r.expect(400, Some("MANIFEST_INVALID"));
    }
    // Unknown media type in Content-Type with no mediaType in the body.
    let no_mt = serde_json::to_vec(&json!({"schemaVersion": 2, "layers": []})).unwrap();
    t.manifest("a", "t", "application/x-foo", &no_mt).expect(400, Some("MANIFEST_INVALID"));
    // Content-Type that contradicts the body.
    t.manifest("a", "t", OCI_INDEX, &good).expect(400, Some("MANIFEST_INVALID"));
    // Invalid tags.
    t.manifest("a", "-bad", OCI_MANIFEST, &good).expect(400, Some("MANIFEST_INVALID"));
    t.req("PUT", &format!("/v2/a/manifests/{}?tag=%20x", sha256(&good)))
        .header("Content-Type", OCI_MANIFEST)
        .body(&good)
        .send()
        .expect(400, Some("MANIFEST_INVALID"));
    // Too large: by Content-Length and by streamed body.
    let huge = vec![b' '; (4 << 20) + 1];
    t.manifest("a", "t", OCI_MANIFEST, &huge).expect(413, Some("MANIFEST_INVALID"));
    t.req("PUT", "/v2/a/manifests/t")
        .header("Content-Type", OCI_MANIFEST)
        .reader(&huge[..])
        .send()
        .expect(413, Some("MANIFEST_INVALID"));
    // Nothing was stored by all of that.
    t.req("GET", "/v2/a/tags/list").send().expect(200, None);
    assert_eq!(t.req("GET", "/v2/a/tags/list").send().json()["tags"], json!([]));
    // And the good one still goes in.
    t.manifest("a", "t", OCI_MANIFEST, &good).expect(201, None);
}

#[test]
fn manifest_kinds_docker_index_foreign_layers() {
    let t = TestApp::new();
    let cd = t.blob("k", b"{\"os\":\"linux\"}");
    let ld = t.blob("k", b"docker layer");
    let docker = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd, "size": 15},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": ld, "size": 12},
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": sha256(b"windows"), "size": 99,
             "urls": ["https://example.invalid/layer"]},
        ],
    })).unwrap();
    let r = t.manifest("k", "docker", DOCKER_MANIFEST, &docker);
    r.expect(201, None);
    let dd = sha256(&docker);
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": dd, "size": docker.len(), "platform": {"architecture": "amd64", "os": "linux"}}],
    })).unwrap();
    t.manifest("k", "list", DOCKER_LIST, &list).expect(201, None);
    let r = t.req("GET", "/v2/k/manifests/list").send();
    assert_eq!(r.header("Content-Type"), Some(DOCKER_LIST));
    assert_eq!(r.body, list);
    // OCI index whose child is missing.
    let idx = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"absent"), "size": 5}],
    }))
    .unwrap();
    t.manifest("k", "idx", OCI_INDEX, &idx).expect(400, Some("MANIFEST_BLOB_UNKNOWN"));
    // mediaType only in the Content-Type header.
    let no_mt = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": 15},
        "layers": [],
    }))
    .unwrap();
    let r = t.manifest("k", "nomt", OCI_MANIFEST, &no_mt);
    r.expect(201, None);
    assert_eq!(t.req("HEAD", "/v2/k/manifests/nomt").send().header("Content-Type"), Some(OCI_MANIFEST));
}

#[test]
fn several_tags_in_one_push_and_subject() {
    let t = TestApp::new();
    let (sm, sd) = t.image("r", "base", 1);
    let cd = t.blob("r", b"{}");
    let m = image_manifest((&cd, 2), &[], Some((&sd, sm.len())));
    let d = sha256(&m);
    let r = t
        .req("PUT", &format!("/v2/r/manifests/{d}?tag=a&tag=b&tag=c"))
        .header("Content-Type", OCI_MANIFEST)
        .body(&m)
        .send();
    r.expect(201, None);
    assert_eq!(r.header("OCI-Subject"), Some(sd.as_str()));
    assert_eq!(r.headers_named("OCI-Tag"), vec!["a", "b", "c"]);
    let tags = t.req("GET", "/v2/r/tags/list").send().json();
    assert_eq!(tags, json!({"name": "r", "tags": ["a", "b", "base", "c"]}));
    // A subject that does not exist (yet) is accepted.
    let m2 = image_manifest((&cd, 2), &[], Some((&sha256(b"future"), 10)));
    let r = t.manifest("r", "sig", OCI_MANIFEST, &m2);
    r.expect(201, None);
    assert_eq!(r.header("OCI-Subject"), Some(sha256(b"future").as_str()));
}

#[test]
fn delete_manifest_cascades_and_refuses_tags() {
    let t = TestApp::new();
    let (_, d) = t.image("del", "v1", 3);
    t.req("DELETE", "/v2/del/manifests/v1").send().expect(405, Some("UNSUPPORTED"));
    t.req("DELETE", &format!("/v2/del/manifests/{d}")).send().expect(202, None);
    t.req("GET", "/v2/del/manifests/v1").send().expect(404, Some("MANIFEST_UNKNOWN"));
    t.req("GET", &format!("/v2/del/manifests/{d}")).send().expect(404, Some("MANIFEST_UNKNOWN"));
    assert_eq!(t.req("GET", "/v2/del/tags/list").send().json()["tags"], json!([]));
    t.req("DELETE", &format!("/v2/del/manifests/{d}")).send().expect(404, Some("MANIFEST_UNKNOWN"));
    t.req("DELETE", "/v2/nothing/manifests/sha256:zz").send().expect(400, Some("DIGEST_INVALID"));
}

fn link_of(r: &Resp) -> Option<String> {
    r.header("Link").map(|l| l.split(['<', '>']).nth(1).unwrap().to_string())
}

#[test]
fn tags_pagination() {
    let t = TestApp::with(|c| c.limits.page_max = 10);
    let (m, _) = t.image("p", "t0", 1);
    for tag in ["b", "a", "d", "c", "e"] {
        t.manifest("p", tag, OCI_MANIFEST, &m).expect(201, None);
    }
    let r = t.req("GET", "/v2/p/tags/list?n=2").send();
    assert_eq!(r.json()["tags"], json!(["a", "b"]));
    let next = link_of(&r).unwrap();
    assert_eq!(next, "/v2/p/tags/list?n=2&last=b");
    assert!(r.header("Link").unwrap().ends_with("rel=\"next\""));
    let r = t.req("GET", &next).send();
    assert_eq!(r.json()["tags"], json!(["c", "d"]));
    let r = t.req("GET", &link_of(&r).unwrap()).send();
    assert_eq!(r.json()["tags"], json!(["e", "t0"]));
    assert!(r.header("Link").is_none(), "no Link on the last page");
    assert_eq!(t.req("GET", "/v2/p/tags/list?last=t0").send().json()["tags"], json!([]));
    // last is exclusive and need not exist.
    assert_eq!(t.req("GET", "/v2/p/tags/list?last=c").send().json()["tags"], json!(["d", "e", "t0"]));
    assert_eq!(t.req("GET", "/v2/p/tags/list?last=cc&n=1").send().json()["tags"], json!(["d"]));
    // n=0: empty list; n above the maximum or not a number: error.
    let r = t.req("GET", "/v2/p/tags/list?n=0").send();
    r.expect(200, None);
    assert_eq!(r.json()["tags"], json!([]));
    t.req("GET", "/v2/p/tags/list?n=11").send().expect(400, Some("PAGINATION_NUMBER_INVALID"));
    t.req("GET", "/v2/p/tags/list?n=-1").send().expect(400, Some("PAGINATION_NUMBER_INVALID"));
    t.req("GET", "/v2/p/tags/list?n=x").send().expect(400, Some("PAGINATION_NUMBER_INVALID"));
    // No n: up to the maximum, with a Link when there is more.
    assert_eq!(t.req("GET", "/v2/p/tags/list").send().json()["tags"].as_array().unwrap().len(), 6);
    t.req("GET", "/v2/unknown/tags/list").send().expect(404, Some("NAME_UNKNOWN"));
}

#[test]
fn catalog_pagination_and_empty_repositories_disappear() {
    let t = TestApp::new();
    let mut digests = Vec::new();
    for repo in ["zeta", "alpha", "mid/one", "mid/two"] {
        digests.push((repo, t.image(repo, "v", repo.len() as u64).1));
    }
    // A repository with only blobs is not in the catalog.
    t.blob("blobsonly", b"x");
    let r = t.req("GET", "/v2/_catalog").send();
    assert_eq!(r.json(), json!({"repositories": ["alpha", "mid/one", "mid/two", "zeta"]}));
    let r = t.req("GET", "/v2/_catalog?n=3").send();
    assert_eq!(r.json()["repositories"], json!(["alpha", "mid/one", "mid/two"]));
    assert_eq!(link_of(&r).unwrap(), "/v2/_catalog?n=3&last=mid/two");
    let r = t.req("GET", &link_of(&r).unwrap()).send();
    assert_eq!(r.json()["repositories"], json!(["zeta"]));
    assert!(r.header("Link").is_none());
    assert_eq!(t.req("GET", "/v2/_catalog?n=0").send().json()["repositories"], json!([]));
    t.req("GET", "/v2/_catalog?n=1001").send().expect(400, Some("PAGINATION_NUMBER_INVALID"));
    let (_, d) = &digests[0];
    t.req("DELETE", &format!("/v2/zeta/manifests/{d}")).send().expect(202, None);
    let r = t.req("GET", "/v2/_catalog").send();
    assert_eq!(r.json()["repositories"], json!(["alpha", "mid/one", "mid/two"]));
}

#[test]
fn referrers_and_artifact_type_filter() {
    let t = TestApp::new();
    let (sm, sd) = t.image("ref", "base", 5);
    let empty = t.blob("ref", b"{}");
    let mut pushed = Vec::new();
    for (i, at) in ["application/vnd.example.sig", "application/vnd.example.sbom"].iter().enumerate() {
        let payload = t.blob("ref", format!("payload {i}").as_bytes());
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": at,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": payload, "size": 9}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": sd, "size": sm.len()},
            "annotations": {"n": i.to_string()},
        }))
        .unwrap();
        let d = sha256(&m);
        t.manifest("ref", &d, OCI_MANIFEST, &m).expect(201, None);
        pushed.push((d, m.len(), at.to_string()));
    }
    // An image manifest with a subject and no artifactType: config type stands in.
    let cfg = t.blob("ref", b"{\"a\":1}");
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.example.config", "digest": cfg, "size": 7},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": sd, "size": sm.len()},
    }))
    .unwrap();
    t.manifest("ref", &sha256(&m), OCI_MANIFEST, &m).expect(201, None);

    let r = t.req("GET", &format!("/v2/ref/referrers/{sd}")).send();
    r.expect(200, None);
    assert_eq!(r.header("Content-Type"), Some(OCI_INDEX));
    assert!(r.header("OCI-Filters-Applied").is_none());
    let v = r.json();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let ms = v["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 3);
    let sig = ms.iter().find(|m| m["digest"] == pushed[0].0.as_str()).unwrap();
    assert_eq!(sig["artifactType"], "application/vnd.example.sig");
    assert_eq!(sig["size"], pushed[0].1);
    assert_eq!(sig["mediaType"], OCI_MANIFEST);
    assert_eq!(sig["annotations"], json!({"n": "0"}));
    assert!(ms.iter().any(|m| m["artifactType"] == "application/vnd.example.config"));

    let r = t.req("GET", &format!("/v2/ref/referrers/{sd}?artifactType=application/vnd.example.sbom")).send();
    assert_eq!(r.header("OCI-Filters-Applied"), Some("artifactType"));
    let ms: Vec<Value> = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["digest"], pushed[1].0.as_str());

    // No referrers, or no such repository: an empty index, still 200.
    for url in [format!("/v2/ref/referrers/{}", sha256(b"none")), format!("/v2/nope/referrers/{sd}")] {
        let r = t.req("GET", &url).send();
        r.expect(200, None);
        assert_eq!(r.json()["manifests"], json!([]));
    }
    t.req("GET", "/v2/ref/referrers/notadigest").send().expect(400, Some("DIGEST_INVALID"));
    // Deleting a referrer removes it from the index.
    t.req("DELETE", &format!("/v2/ref/manifests/{}", pushed[0].0)).send().expect(202, None);
    assert_eq!(
        t.req("GET", &format!("/v2/ref/referrers/{sd}")).send().json()["manifests"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn invalid_names_everywhere() {
    let t = TestApp::new();
    let long = "a".repeat(256);
    let d = sha256(b"x");
    for name in ["UPPER", "a/../b", "a//b", "a/", "-a", "a__-b", &long, "a%2Fb", "a b"] {
        for (m, path) in [
            ("GET", format!("/v2/{name}/tags/list")),
            ("GET", format!("/v2/{name}/manifests/latest")),
            ("PUT", format!("/v2/{name}/manifests/latest")),
            ("GET", format!("/v2/{name}/blobs/{d}")),
            ("POST", format!("/v2/{name}/blobs/uploads/")),
            ("GET", format!("/v2/{name}/referrers/{d}")),
        ] {
            let r = t.req(m, &path).send();
            assert_eq!((r.status, r.code()), (400, "NAME_INVALID".to_string()), "{m} {path}");
        }
    }
    // Deep names route fine.
    let deep = "a/b/c/d/e/f/g/h/i/j/k";
    t.image(deep, "v", 1);
    assert_eq!(t.req("GET", &format!("/v2/{deep}/tags/list")).send().json()["name"], deep);
}

#[test]
fn cut_off_bodies_leave_nothing_behind() {
    let t = TestApp::new();
    let data = bytes(9, 10_000);
    let d = sha256(&data);
    // Monolithic: declared 10000 bytes, only 4000 arrive.
    let r = t
        .req("POST", &format!("/v2/c/blobs/uploads/?digest={d}"))
        .header("Content-Length", "10000")
        .reader(&data[..4000])
        .send();
    r.expect(400, Some("SIZE_INVALID"));
    t.req("HEAD", &format!("/v2/c/blobs/{d}")).send().expect(404, None);
    let staged: Vec<_> = std::fs::read_dir(t.dir.path().join("data/uploads")).unwrap().collect();
    assert!(staged.is_empty(), "no staging file is left: {staged:?}");
    assert!(!t.dir.path().join(format!("data/blobs/sha256/{}/{}", &d[7..9], &d[7..])).exists());

    // Chunked: a cut chunk does not move the offset; the next whole chunk lands.
    let loc = t.req("POST", "/v2/c/blobs/uploads/").send().header("Location").unwrap().to_string();
    t.req("PATCH", &loc).header("Content-Range", "0-4999").body(&data[..5000]).send().expect(202, None);
    let r = t
        .req("PATCH", &loc)
        .header("Content-Range", "5000-9999")
        .header("Content-Length", "5000")
        .reader(&data[5000..7000])
        .send();
    r.expect(400, Some("SIZE_INVALID"));
    assert_eq!(t.req("GET", &loc).send().header("Range"), Some("0-4999"));
    t.req("PATCH", &loc).header("Content-Range", "5000-9999").body(&data[5000..]).send().expect(202, None);
    t.req("PUT", &format!("{loc}?digest={d}")).send().expect(201, None);
    assert_eq!(t.req("GET", &format!("/v2/c/blobs/{d}")).send().body, data);

    // A manifest cut short.
    let (m, _) = t.image("c", "v", 2);
    let r = t
        .req("PUT", "/v2/c/manifests/w")
        .header("Content-Type", OCI_MANIFEST)
        .header("Content-Length", &m.len().to_string())
        .reader(&m[..m.len() / 2])
        .send();
    r.expect(400, Some("SIZE_INVALID"));
    t.req("GET", "/v2/c/manifests/w").send().expect(404, Some("MANIFEST_UNKNOWN"));
}

#[test]
fn same_blob_pushed_twice_and_to_two_repositories() {
    let t = TestApp::new();
    let d = t.blob("one", b"dup");
    assert_eq!(t.blob("one", b"dup"), d);
    assert_eq!(t.blob("two", b"dup"), d);
    t.req("DELETE", &format!("/v2/one/blobs/{d}")).send().expect(202, None);
    // Still served by the other repository.
    assert_eq!(t.req("GET", &format!("/v2/two/blobs/{d}")).send().body, b"dup");
}
