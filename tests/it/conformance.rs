//! The OCI distribution-spec conformance workflows — pull, push, content
//! discovery, content management — ported from the upstream suite
//! (`opencontainers/distribution-spec/conformance`, its Ginkgo version),
//! which is Go and cannot be built here.  Same requests, same order, same
//! accepted status codes and header checks, the same shared state between
//! steps; the automatic cross-mount checks are left out, as upstream does
//! unless `OCI_AUTOMATIC_CROSSMOUNT` is set.  Run against one server here
//! and through the load balancer in `replicas.rs`.

use crate::support::*;
use serde_json::{json, Value};
use std::net::SocketAddr;

/// A registry as the suite sees it: an address and the credentials.
pub(crate) struct Target {
    pub addr: SocketAddr,
    pub auth: String,
}

impl Target {
    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut h = headers.to_vec();
        h.push(("Authorization", &self.auth));
        http(self.addr, method, path, &h, body)
    }
}

const MANIFEST: &str = OCI_MANIFEST;
const OCTETS: (&str, &str) = ("Content-Type", "application/octet-stream");
const ACCEPT: (&str, &str) = ("Accept", OCI_MANIFEST);
/// A tag that cannot exist (it is not even valid): always 404.
const NONEXISTENT: &str = ".INVALID_MANIFEST_NAME";
const ANNOTATION: &str = "org.opencontainers.conformance.test";
const TYPE_A: &str = "application/vnd.nhl.peanut.butter.bagel";
const TYPE_B: &str = "application/vnd.nba.strawberry.jam.croissant";
const EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";
/// The error codes of the distribution spec.
const CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "MANIFEST_UNVERIFIED",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "TAG_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
];

/// A piece of content with its digest.
#[derive(Clone)]
struct Blob {
    data: Vec<u8>,
    digest: String,
}

fn blob(data: Vec<u8>) -> Blob {
    let digest = sha256(&data);
    Blob { data, digest }
}

fn descriptor(media_type: &str, b: &Blob) -> Value {
    json!({"mediaType": media_type, "digest": b.digest, "size": b.data.len()})
}

/// The suite's test data: configs, one layer, manifests, referrers.
struct Data {
    configs: Vec<Blob>,
    layer: Blob,
    manifests: Vec<Blob>,
    empty_layer_manifest: Blob,
    dummy: String,
    blob_a: Blob,
    blob_b: Blob,
    empty_json: Blob,
    ref_blob_a: Blob,
    ref_blob_b: Blob,
    /// (manifest, its annotation or "", whether it is an index)
    referrers: Vec<(Blob, &'static str, bool)>,
    ref_c: Blob,
}

fn test_data(seed: u64) -> Data {
    use base64::Engine as _;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let configs: Vec<Blob> = (0..5)
        .map(|i| {
            blob(
                format!(
                    "{{\n\t\"author\": \"conformance-{seed}-{i}\",\n\t\"architecture\": \"amd64\",\n\t\
                     \"os\": \"linux\",\n\t\"rootfs\": {{\n\t\t\"type\": \"layers\",\n\t\t\"diff_ids\": []\n\t}}\n}}"
                )
                .into_bytes(),
            )
        })
        .collect();
    let layer = blob(bytes(seed, 168));
    let config_descriptor = |c: &Blob| {
        json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.digest,
               "size": c.data.len(), "data": b64(&c.data), "newUnspecifiedField": "aGVsbG8gd29ybGQ="})
    };
    let manifests: Vec<Blob> = configs
        .iter()
        .map(|c| {
            let m = json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config_descriptor(c),
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer.digest, "size": layer.data.len(), "newUnspecifiedField": null}],
            });
            blob(serde_json::to_vec_pretty(&m).unwrap())
        })
        .collect();
    let empty_layer_manifest = blob(
        serde_json::to_vec_pretty(&json!({"schemaVersion": 2, "config": config_descriptor(&configs[1]),
                                          "layers": []}))
        .unwrap(),
    );
    let empty_json = blob(b"{}".to_vec());
    let ref_blob_a = blob(b"NHL Peanut Butter on my NHL bagel".to_vec());
    let ref_blob_b = blob(b"NBA Strawberry Jam on my NBA croissant".to_vec());
    let subject = |m: &Blob| descriptor(MANIFEST, m);
    let artifact = |config: Value, layer: Value, artifact_type: Option<&str>, subj: &Blob, note: &str| {
        let mut m = json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [layer],
                           "subject": subject(subj)});
        if let Some(t) = artifact_type {
            m["artifactType"] = json!(t);
        }
        if !note.is_empty() {
            m["annotations"] = json!({ANNOTATION: note});
        }
        blob(serde_json::to_vec(&m).unwrap())
    };
    let empty = descriptor(EMPTY_JSON, &empty_json);
    let a_config =
        artifact(descriptor(TYPE_A, &ref_blob_a), empty.clone(), None, &manifests[4], "test config a");
    let b_config =
        artifact(descriptor(TYPE_B, &ref_blob_b), empty.clone(), None, &manifests[4], "test config b");
    let a_layer =
        artifact(empty.clone(), descriptor(TYPE_A, &ref_blob_a), Some(TYPE_A), &manifests[4], "test layer a");
    let b_layer =
        artifact(empty.clone(), descriptor(TYPE_B, &ref_blob_b), Some(TYPE_B), &manifests[4], "test layer b");
    let ref_c = artifact(empty, descriptor(TYPE_B, &ref_blob_b), Some(TYPE_B), &manifests[3], "");
    let index = blob(
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "application/vnd.food.stand",
            "manifests": [descriptor(MANIFEST, &a_config), descriptor(MANIFEST, &a_layer)],
            "subject": subject(&manifests[4]), "annotations": {ANNOTATION: "test index"},
        }))
        .unwrap(),
    );
    Data {
        configs,
        layer,
        manifests,
        empty_layer_manifest,
        dummy: sha256(b"hello world"),
        blob_a: blob(bytes(seed + 1, 42)),
        blob_b: blob(bytes(seed + 2, 42)),
        empty_json,
        ref_blob_a,
        ref_blob_b,
        referrers: vec![
            (a_config, "test config a", false),
            (a_layer, "test layer a", false),
            (index, "test index", true),
            (b_config, "test config b", false),
            (b_layer, "test layer b", false),
        ],
        ref_c,
    }
}

/// The path and query of a Location (absolute or not).
fn rel(location: &str) -> String {
    match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/".to_string(), |i| rest[i..].to_string()),
        None => location.to_string(),
    }
}

fn with_digest(location: &str, digest: &str) -> String {
    let loc = rel(location);
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={digest}")
}

fn location(r: &Resp, spec: &str) -> String {
    let loc = r.header("Location").unwrap_or_default();
    assert!(!loc.is_empty(), "{spec}: no Location ({} {})", r.status, r.text());
    loc.to_string()
}

fn expect(r: &Resp, ok: &[u16], spec: &str) {
    assert!(ok.contains(&r.status), "{spec}: {} not in {ok:?}: {}", r.status, r.text());
}

fn two_hundreds(r: &Resp, spec: &str) {
    assert!((200..300).contains(&r.status), "{spec}: {} is not 2xx: {}", r.status, r.text());
}

/// `Docker-Content-Digest` is optional, but right when present.
fn digest_header(r: &Resp, want: &str, spec: &str) {
    if let Some(d) = r.header("Docker-Content-Digest") {
        assert_eq!(d, want, "{spec}: Docker-Content-Digest");
    }
}

impl Target {
    /// The suite's `pushBlob`: POST, then PUT with the digest; exactly 201.
    fn push_blob(&self, ns: &str, b: &Blob) {
        let r = self.req("POST", &format!("/v2/{ns}/blobs/uploads/"), &[], b"");
        expect(&r, &[201, 202], "push blob: POST");
        let loc = location(&r, "push blob: POST");
        let r = self.req("PUT", &with_digest(&loc, &b.digest), &[OCTETS], &b.data);
        expect(&r, &[201], "push blob: PUT");
    }

    /// The suite's `pushManifest`: exactly 201, a Location, and
    /// `OCI-Subject` (when sent) naming the subject.
    fn push_manifest(&self, ns: &str, reference: &str, m: &Blob, index: bool, subject: Option<&Blob>) {
        let ct = if index { OCI_INDEX } else { MANIFEST };
        let r = self.req("PUT", &format!("/v2/{ns}/manifests/{reference}"), &[("Content-Type", ct)], &m.data);
        expect(&r, &[201], &format!("push manifest {reference}"));
        location(&r, "push manifest");
        if let (Some(s), Some(got)) = (subject, r.header("OCI-Subject")) {
            assert!(got == s.digest || got.is_empty(), "push manifest: OCI-Subject {got}");
        }
    }

    /// The suite's `deleteManifests`, in reverse order of the pushes.
    fn delete_manifests(&self, ns: &str, refs: &[String]) {
        for r in refs.iter().rev() {
            let path = format!("/v2/{ns}/manifests/{r}");
            if self.req("GET", &path, &[], b"").status != 200 {
                continue;
            }
            expect(&self.req("DELETE", &path, &[], b""), &[202, 404, 405], "delete manifest");
            // Upstream asks for a path with its placeholder left in.
            let r = self.req("GET", &format!("/v2/{ns}/manifests/%3Cref%3E"), &[], b"");
            expect(&r, &[404], "delete manifest: GET afterwards");
        }
    }

    /// The suite's `deleteBlobs`, in reverse order.
    fn delete_blobs(&self, ns: &str, digests: &[&str]) {
        for d in digests.iter().rev() {
            let r = self.req("DELETE", &format!("/v2/{ns}/blobs/{d}"), &[], b"");
            expect(&r, &[202, 404, 400, 405], "delete blob");
        }
    }

    fn tags(&self, ns: &str, query: &str, spec: &str) -> Vec<String> {
        let r = self.req("GET", &format!("/v2/{ns}/tags/list{query}"), &[], b"");
        expect(&r, &[200], spec);
        let tags = r.json()["tags"].clone();
        if tags.is_null() {
            return Vec::new();
        }
        serde_json::from_value(tags).unwrap_or_else(|e| panic!("{spec}: tag list: {e}: {}", r.text()))
    }
}

/// Every workflow against `t`, in the suite's order: repository `ns` and,
/// for the cross-repository mount, `xns` (both fresh).
pub(crate) fn run(t: &Target, ns: &str, xns: &str, seed: u64) {
    let d = test_data(seed);
    pull(t, ns, &d);
    push(t, ns, xns, &d);
    discovery(t, ns, &d);
    management(t, ns, &d);
}

fn pull(t: &Target, ns: &str, d: &Data) {
    // Setup.
    t.push_blob(ns, &d.configs[0]);
    t.push_blob(ns, &d.configs[1]);
    t.push_blob(ns, &d.layer);
    t.push_manifest(ns, "tagtest0", &d.manifests[0], false, None);
    t.push_manifest(ns, &d.manifests[1].digest, &d.manifests[1], false, None);
    // Pull blobs.
    let blob = |digest: &str| format!("/v2/{ns}/blobs/{digest}");
    expect(&t.req("HEAD", &blob(&d.dummy), &[], b""), &[404], "HEAD nonexistent blob");
    let r = t.req("HEAD", &blob(&d.configs[0].digest), &[], b"");
    expect(&r, &[200], "HEAD existing blob");
    digest_header(&r, &d.configs[0].digest, "HEAD existing blob");
    expect(&t.req("GET", &blob(&d.dummy), &[], b""), &[404], "GET nonexistent blob");
    expect(&t.req("GET", &blob(&d.configs[0].digest), &[], b""), &[200], "GET existing blob");
    // Pull manifests.
    let manifest = |r: &str| format!("/v2/{ns}/manifests/{r}");
    expect(&t.req("HEAD", &manifest(NONEXISTENT), &[], b""), &[404], "HEAD nonexistent manifest");
    for (reference, want) in [
        (d.manifests[0].digest.as_str(), &d.manifests[0].digest),
        (d.manifests[1].digest.as_str(), &d.manifests[1].digest),
        ("tagtest0", &d.manifests[0].digest),
    ] {
        let r = t.req("HEAD", &manifest(reference), &[ACCEPT], b"");
        expect(&r, &[200], &format!("HEAD manifest {reference}"));
        digest_header(&r, want, "HEAD manifest");
    }
    expect(&t.req("GET", &manifest(NONEXISTENT), &[], b""), &[404], "GET nonexistent manifest");
    for reference in [&d.manifests[0].digest, &d.manifests[1].digest, "tagtest0"] {
        expect(
            &t.req("GET", &manifest(reference), &[ACCEPT], b""),
            &[200],
            &format!("GET manifest {reference}"),
        );
    }
    // Error codes: a 400 carries an OCI error body.
    let r = t.req("GET", &manifest("sha256:totallywrong"), &[("Content-Type", MANIFEST)], b"blablabla");
    expect(&r, &[400, 404], "400 response body");
    if r.status == 400 {
        let code = r.json()["errors"][0]["code"].as_str().unwrap_or_default().to_string();
        assert!(CODES.contains(&code.as_str()), "400 response body: code {code:?}");
    }
    // Teardown: manifests, then blobs.
    t.delete_manifests(
        ns,
        &["tagtest0".into(), d.manifests[0].digest.clone(), d.manifests[1].digest.clone()],
    );
    t.delete_blobs(ns, &[&d.configs[0].digest, &d.configs[1].digest, &d.layer.digest]);
}

fn push(t: &Target, ns: &str, xns: &str, d: &Data) {
    let uploads = format!("/v2/{ns}/blobs/uploads/");
    let blob = |digest: &str| format!("/v2/{ns}/blobs/{digest}");
    // Blob upload, streamed.
    let r = t.req("POST", &uploads, &[], b"");
    let loc = location(&r, "streamed: POST");
    let r = t.req("PATCH", &rel(&loc), &[OCTETS], &d.blob_a.data);
    expect(&r, &[202], "PATCH with blob in body");
    let loc = location(&r, "PATCH with blob in body");
    let r = t.req("PUT", &with_digest(&loc, &d.blob_a.digest), &[OCTETS, ("Content-Length", "0")], b"");
    expect(&r, &[201], "PUT to session URL with digest");
    location(&r, "PUT to session URL with digest");
    // Blob upload, monolithic.
    expect(&t.req("GET", &blob(&d.dummy), &[], b""), &[404], "GET nonexistent blob");
    let c1 = &d.configs[1];
    let r = t.req("POST", &format!("{uploads}?digest={}", c1.digest), &[OCTETS], &c1.data);
    expect(&r, &[201, 202], "POST with digest and blob");
    location(&r, "POST with digest and blob");
    let want = if r.status == 202 { 404 } else { 200 };
    expect(&t.req("GET", &blob(&c1.digest), &[], b""), &[want], "GET blob from prior request");
    let r = t.req("POST", &uploads, &[], b"");
    expect(&r, &[202], "POST yields a session");
    let r =
        t.req("PUT", &with_digest(&location(&r, "POST yields a session"), &c1.digest), &[OCTETS], &c1.data);
    expect(&r, &[201], "PUT upload of a blob");
    location(&r, "PUT upload of a blob");
    expect(&t.req("GET", &blob(&c1.digest), &[], b""), &[200], "GET existing blob");
    let r = t.req("POST", &uploads, &[], b"");
    let loc = location(&r, "layer: POST");
    let r = t.req("PUT", &with_digest(&loc, &d.layer.digest), &[OCTETS], &d.layer.data);
    expect(&r, &[201], "PUT upload of a layer blob");
    location(&r, "PUT upload of a layer blob");
    expect(&t.req("GET", &blob(&d.layer.digest), &[], b""), &[200], "GET existing layer");
    // Blob upload, chunked: 22 + 20 bytes.
    let (chunk1, chunk2) = d.blob_b.data.split_at(22);
    let r = t.req("POST", &uploads, &[("Content-Length", "0")], b"");
    let loc = location(&r, "chunked: POST");
    let r = t.req("PATCH", &rel(&loc), &[OCTETS, ("Content-Range", "22-41")], chunk2);
    expect(&r, &[416], "out-of-order chunk");
    let r = t.req("POST", &uploads, &[("Content-Length", "0")], b"");
    let first = location(&r, "chunked: POST");
    let r = t.req("PATCH", &rel(&first), &[OCTETS, ("Content-Range", "0-21")], chunk1);
    expect(&r, &[202], "PATCH first chunk");
    assert_eq!(r.header("Range"), Some("0-21"), "PATCH first chunk: Range");
    let r = t.req("PATCH", &rel(&first), &[OCTETS, ("Content-Range", "0-21")], chunk1);
    expect(&r, &[416], "retry previous chunk");
    let r = t.req("GET", &rel(&first), &[], b"");
    expect(&r, &[204], "GET stale upload");
    assert_eq!(r.header("Range"), Some("0-21"), "GET stale upload: Range");
    let loc = location(&r, "GET stale upload");
    let r = t.req("PATCH", &rel(&loc), &[OCTETS, ("Content-Range", "22-41")], chunk2);
    expect(&r, &[202], "PATCH second chunk");
    let loc = location(&r, "PATCH second chunk");
    let r = t.req("PUT", &with_digest(&loc, &d.blob_b.digest), &[OCTETS, ("Content-Length", "0")], b"");
    expect(&r, &[201], "PUT with digest");
    location(&r, "PUT with digest");
    // Cross-repository blob mount.
    let xuploads = format!("/v2/{xns}/blobs/uploads/");
    let r = t.req("POST", &format!("{xuploads}?mount={}", d.dummy), &[], b"");
    expect(&r, &[202], "mount without from");
    location(&r, "mount without from");
    let r = t.req("POST", &format!("{xuploads}?mount={}&from={ns}", d.blob_a.digest), &[], b"");
    expect(&r, &[201, 202], "mount from another repository");
    let loc = rel(&location(&r, "mount from another repository"));
    if r.status == 201 {
        assert_eq!(loc, format!("/v2/{xns}/blobs/{}", d.blob_a.digest), "mounted blob's Location");
        expect(&t.req("GET", &loc, &[], b""), &[200], "GET mounted blob");
    } else {
        assert!(loc.starts_with(&xuploads), "mount fell back to an upload: {loc}");
    }
    // Manifest upload.
    let manifest = |r: &str| format!("/v2/{ns}/manifests/{r}");
    expect(&t.req("GET", &manifest(NONEXISTENT), &[], b""), &[404], "GET nonexistent manifest");
    let m1 = &d.manifests[1];
    for tag in ["test0", "test1", "test2", "test3"] {
        let r = t.req("PUT", &manifest(tag), &[("Content-Type", MANIFEST)], &m1.data);
        expect(&r, &[201], &format!("PUT manifest {tag}"));
        location(&r, "PUT manifest");
    }
    let empty = &d.empty_layer_manifest;
    let r = t.req("PUT", &manifest("emptylayer"), &[("Content-Type", MANIFEST)], &empty.data);
    expect(&r, &[201], "manifest with no layers");
    location(&r, "manifest with no layers");
    expect(&t.req("GET", &manifest(&m1.digest), &[ACCEPT], b""), &[200], "GET manifest by digest");
    // Teardown: manifests (no 404), then blobs.
    for m in [&m1.digest, &empty.digest] {
        two_hundreds_or_405(&t.req("DELETE", &manifest(m), &[], b""), "delete manifest created in tests");
    }
    for b in [&c1.digest, &d.layer.digest] {
        let r = t.req("DELETE", &blob(b), &[], b"");
        assert!(
            (200..300).contains(&r.status) || [404, 405].contains(&r.status),
            "delete blob: {}",
            r.status
        );
    }
}

fn two_hundreds_or_405(r: &Resp, spec: &str) {
    if r.status != 405 {
        two_hundreds(r, spec);
    }
}

fn discovery(t: &Target, ns: &str, d: &Data) {
    // Setup: eight tags on one manifest, then the referrers.
    t.push_blob(ns, &d.configs[2]);
    t.push_blob(ns, &d.layer);
    let mut pushed = Vec::new();
    for i in 0..4 {
        for tag in [format!("test{i}"), format!("TEST{i}")] {
            t.push_manifest(ns, &tag, &d.manifests[2], false, None);
            pushed.push(tag);
        }
    }
    pushed.push(d.manifests[2].digest.clone());
    let subject = &d.manifests[4];
    t.push_blob(ns, &d.empty_json);
    t.push_blob(ns, &d.ref_blob_a);
    // Referrers first, before their subject exists.
    for (m, _, index) in &d.referrers[..3] {
        t.push_manifest(ns, &m.digest, m, *index, Some(subject));
        pushed.push(m.digest.clone());
    }
    t.push_blob(ns, &d.configs[4]);
    t.push_blob(ns, &d.layer);
    t.push_manifest(ns, "tagtest0", subject, false, None);
    pushed.extend(["tagtest0".to_string(), subject.digest.clone()]);
    t.push_blob(ns, &d.ref_blob_b);
    for (m, _, index) in &d.referrers[3..] {
        t.push_manifest(ns, &m.digest, m, *index, Some(subject));
        pushed.push(m.digest.clone());
    }
    t.push_manifest(ns, &d.ref_c.digest, &d.ref_c, false, Some(&d.manifests[3]));
    pushed.push(d.ref_c.digest.clone());

    // Listing tags: sorted, limited by n, continued after last.
    let tags = t.tags(ns, "", "list tags");
    let mut ascii = tags.clone();
    ascii.sort();
    let mut lexical = tags.clone();
    lexical.sort_by_key(|t| t.to_lowercase());
    assert!(tags == ascii || tags == lexical, "tags are not sorted: {tags:?}");
    let half = tags.len() / 2;
    let page = t.tags(ns, &format!("?n={half}"), "tags limited by n");
    assert_eq!(page.len(), half, "n={half} gave {page:?}");
    let last = page[half - 1].clone();
    let next = t.tags(ns, &format!("?n={half}&last={last}"), "tags after last");
    assert!(next.len() <= half && !next.contains(&last), "after {last}: {next:?}");

    // Listing referrers.
    let referrers = |digest: &str, query: &str, spec: &str| {
        let r = t.req("GET", &format!("/v2/{ns}/referrers/{digest}{query}"), &[], b"");
        expect(&r, &[200], spec);
        assert_eq!(r.header("Content-Type"), Some(OCI_INDEX), "{spec}: Content-Type");
        let index = r.json();
        let list = index["manifests"].as_array().cloned().unwrap_or_else(|| panic!("{spec}: {}", r.text()));
        (r, list)
    };
    let annotated = |list: &[Value], spec: &str| {
        for entry in list {
            let digest = entry["digest"].as_str().unwrap();
            let (_, note, _) =
                d.referrers.iter().find(|(m, _, _)| m.digest == digest).expect("a known referrer");
            let notes = entry["annotations"].as_object().unwrap_or_else(|| panic!("{spec}: {entry}"));
            assert_eq!(notes.len(), 1, "{spec}: {entry}");
            assert_eq!(notes[ANNOTATION], json!(note), "{spec}: {entry}");
        }
    };
    let (_, none) = referrers(&d.dummy, "", "referrers of a nonexistent blob");
    assert!(none.is_empty(), "{none:?}");
    let (_, all) = referrers(&subject.digest, "", "referrers of an existing manifest");
    assert_eq!(all.len(), 5, "{all:?}");
    assert_ne!(all[0]["digest"], all[1]["digest"]);
    annotated(&all, "referrers");
    let (r, filtered) = referrers(&subject.digest, &format!("?artifactType={TYPE_A}"), "referrers, filtered");
    if r.header("OCI-Filters-Applied").is_some() {
        assert_eq!(r.header("OCI-Filters-Applied"), Some("artifactType"));
        assert_eq!(filtered.len(), 2, "{filtered:?}");
    } else {
        assert_eq!(filtered.len(), 5, "{filtered:?}");
    }
    annotated(&filtered, "referrers, filtered");
    let (_, missing) = referrers(&d.manifests[3].digest, "", "referrers of a missing manifest");
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0]["digest"], json!(d.ref_c.digest));

    // Teardown: manifests, then blobs.
    t.delete_manifests(ns, &pushed);
    t.delete_blobs(
        ns,
        &[
            &d.configs[2].digest,
            &d.layer.digest,
            &d.empty_json.digest,
            &d.ref_blob_a.digest,
            &d.configs[4].digest,
            &d.layer.digest,
            &d.ref_blob_b.digest,
        ],
    );
}

fn management(t: &Target, ns: &str, d: &Data) {
    // Setup.
    for b in [&d.configs[3], &d.layer] {
        let r = t.req("POST", &format!("/v2/{ns}/blobs/uploads/"), &[], b"");
        let r = t.req("PUT", &with_digest(&location(&r, "setup: POST"), &b.digest), &[OCTETS], &b.data);
        two_hundreds(&r, "setup: PUT blob");
    }
    let m3 = &d.manifests[3];
    let r = t.req("PUT", &format!("/v2/{ns}/manifests/tagtest0"), &[("Content-Type", MANIFEST)], &m3.data);
    two_hundreds(&r, "setup: PUT manifest");
    let before = t.tags(ns, "", "tags before deleting").len();
    // Manifest delete.
    let r = t.req("DELETE", &format!("/v2/{ns}/manifests/tagtest0"), &[], b"");
    expect(&r, &[400, 202, 405], "DELETE manifest tag");
    if r.status == 400 {
        assert_eq!(r.json()["errors"][0]["code"], json!("UNSUPPORTED"));
    }
    let r = t.req("DELETE", &format!("/v2/{ns}/manifests/{}", m3.digest), &[], b"");
    expect(&r, &[202, 404], "DELETE manifest by digest");
    let r = t.req("GET", &format!("/v2/{ns}/manifests/{}", m3.digest), &[], b"");
    expect(&r, &[404, 200], "GET deleted manifest");
    let after = t.tags(ns, "", "tags after deleting").len();
    assert!(after < before, "the tag list does not reflect the deletion: {after} tags, {before} before");
    // Blob delete.
    let r = t.req("DELETE", &format!("/v2/{ns}/blobs/{}", d.configs[3].digest), &[], b"");
    expect(&r, &[202, 404, 405], "DELETE config blob");
    let r = t.req("DELETE", &format!("/v2/{ns}/blobs/{}", d.layer.digest), &[], b"");
    expect(&r, &[202, 404, 405], "DELETE layer blob");
    if r.status != 405 {
        let r = t.req("GET", &format!("/v2/{ns}/blobs/{}", d.configs[3].digest), &[], b"");
        expect(&r, &[404], "GET deleted blob");
    }
}

#[test]
fn oci_conformance_workflows_on_one_server() {
    let srv = Server::start();
    let t = Target { addr: srv.addr, auth: srv.admin_auth() };
    run(&t, "conformance/one", "conformance/one-cross", 7);
    assert!(!srv.log().contains("panicked"), "{}", srv.log());
}
