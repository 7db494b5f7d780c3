//! An in-process app (a `TestApp` on a temporary data directory) driven
//! through the full HTTP dispatch, with requests (`Req`) and answers (`Resp`).

#![allow(dead_code)]

use super::*;
use mcr::app::App;
use mcr::config::Config;
use mcr::http::{Body, Request};
use serde_json::{json, Value};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use tempfile::TempDir;

pub struct TestApp {
    pub dir: TempDir,
    pub app: App,
    /// The generated admin password.
    pub admin: String,
}

/// A clock a test sets: starts at the real time, moves when told.
#[derive(Default)]
pub struct TestClock(std::sync::atomic::AtomicI64);

impl TestClock {
    pub fn new() -> Arc<TestClock> {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        Arc::new(TestClock(std::sync::atomic::AtomicI64::new(now)))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl mcr::app::Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

impl TestApp {
    pub fn new() -> TestApp {
        Self::with(|_| {})
    }

    pub fn with(f: impl FnOnce(&mut Config)) -> TestApp {
        Self::with_clock(f, Arc::new(mcr::app::SystemClock))
    }

    /// With a clock the test moves (`TestClock`).
    pub fn with_clock(f: impl FnOnce(&mut Config), clock: Arc<dyn mcr::app::Clock>) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().join("data");
        if let Some((url, password_file)) = test_database(&config.storage.data_dir) {
            config.database.url = url;
            config.database.password_file = password_file.display().to_string();
        }
        f(&mut config);
        let store = mcr::storage::open(&config.storage).unwrap();
        let app = App::open_with_clock(config, store, clock).unwrap();
        let admin = mcr::service::users::ensure_initial_admin(&mcr::app::Ctx::system(&app, "system:startup"))
            .unwrap()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        TestApp { dir, app, admin }
    }

    /// A request as the admin (Basic credentials); `.anon()` drops them.
    pub fn req(&self, method: &str, url: &str) -> Req<'_> {
        let auth = basic("admin", &self.admin);
        Req {
            app: &self.app,
            method: method.into(),
            url: url.into(),
            headers: vec![("Authorization".into(), auth)],
            body: None,
            peer: "127.0.0.1:40000".parse().unwrap(),
        }
    }

    /// A service context acting as the admin.
    pub fn admin_ctx(&self) -> mcr::app::Ctx<'_> {
        let admin = mcr::policy::Principal {
            subject: "local:1".into(),
            username: "admin".into(),
            roles: vec!["admin".into()],
            account_type: mcr::policy::AccountType::Human,
            scope: None,
        };
        mcr::app::Ctx { app: &self.app, actor: mcr::model::Actor::User(admin), req_id: "test", peer: None }
    }

    /// Creates a policy rule as the admin; returns it with its id.
    pub fn rule(&self, json: &str) -> mcr::policy::Rule {
        let rule: mcr::policy::Rule = serde_json::from_str(json).unwrap();
        mcr::service::policy::create(&self.admin_ctx(), &rule).unwrap()
    }

    /// Creates a local user.
    pub fn user(&self, name: &str, pass: &str, roles: &[&str], system: bool) {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let kind = if system { mcr::policy::AccountType::System } else { mcr::policy::AccountType::Human };
        mcr::service::users::add(&self.admin_ctx(), name, &mcr::auth::Password::new(pass), &roles, kind)
            .unwrap();
    }

    /// Uploads a blob monolithically; returns its digest.
    pub fn blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let r = self.req("POST", &format!("/v2/{repo}/blobs/uploads/?digest={d}")).body(data).send();
        assert_eq!(r.status, 201, "blob upload: {}", r.text());
        d
    }

    /// Pushes a manifest; returns the response.
    pub fn manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Resp {
        self.req("PUT", &format!("/v2/{repo}/manifests/{reference}"))
            .header("Content-Type", media_type)
            .body(body)
            .send()
    }

    /// Pushes a one-layer image; returns (manifest bytes, manifest digest).
    pub fn image(&self, repo: &str, tag: &str, seed: u64) -> (Vec<u8>, String) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
        let layer = bytes(seed, 1000 + seed as usize);
        let cd = self.blob(repo, &config);
        let ld = self.blob(repo, &layer);
        let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())], None);
        let r = self.manifest(repo, tag, OCI_MANIFEST, &m);
        assert_eq!(r.status, 201, "manifest push: {}", r.text());
        let d = sha256(&m);
        (m, d)
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub fn image_manifest(
    config: (&str, usize),
    layers: &[(&str, usize)],
    subject: Option<(&str, usize)>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers.iter().map(|(d, s)| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s
        })).collect::<Vec<_>>(),
    });
    if let Some((d, s)) = subject {
        m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": d, "size": s});
    }
    serde_json::to_vec(&m).unwrap()
}

pub struct Req<'a> {
    app: &'a App,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Box<dyn Read + 'a>>,
    peer: SocketAddr,
}

impl<'a> Req<'a> {
    /// The client's address (default 127.0.0.1:40000).
    pub fn from(mut self, peer: &str) -> Self {
        self.peer = peer.parse().unwrap();
        self
    }

    /// No credentials at all.
    pub fn anon(mut self) -> Self {
        self.headers.retain(|(k, _)| k != "Authorization");
        self
    }

    /// Replaces the credentials with this `Authorization` value.
    pub fn auth(self, value: &str) -> Self {
        self.anon().header("Authorization", value)
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// A body with a matching Content-Length.
    pub fn body(self, data: &[u8]) -> Self {
        let n = data.len().to_string();
        let mut s = self.header("Content-Length", &n);
        s.body = Some(Box::new(std::io::Cursor::new(data.to_vec())));
        s
    }

    /// A body stream with no Content-Length (like Docker's streamed PATCH).
    pub fn reader(mut self, r: impl Read + 'a) -> Self {
        self.body = Some(Box::new(r));
        self
    }

    pub fn send(self) -> Resp {
        let mut body: Box<dyn Read + 'a> = self.body.unwrap_or_else(|| Box::new(std::io::empty()));
        let mut req = Request {
            method: self.method.clone(),
            url: self.url,
            headers: self.headers,
            remote_addr: Some(self.peer),
            local_addr: Some("127.0.0.1:5000".parse().unwrap()),
            body: &mut body,
        };
        let resp = mcr::router::dispatch(self.app, &mut req, "test");
        let content_length = resp.body_len();
        let body = match resp.body {
            Body::Empty | Body::Head(_) => Vec::new(),
            Body::Bytes(b) => b,
            Body::Stream(mut r, n) => {
                let mut v = Vec::new();
                r.read_to_end(&mut v).unwrap();
                assert_eq!(v.len() as u64, n, "stream length matches the declared length");
                v
            }
            Body::File(f, n) => {
                let mut v = Vec::new();
                f.take(n).read_to_end(&mut v).unwrap();
                assert_eq!(v.len() as u64, n, "file holds the declared length");
                v
            }
        };
        Resp { status: resp.status, headers: resp.headers, body, content_length: Some(content_length) }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub content_length: Option<u64>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The OCI error code of an error answer (and checks the error format).
    pub fn code(&self) -> String {
        let v = self.json();
        let e = &v["errors"][0];
        assert!(e["message"].is_string(), "error has a message: {v}");
        e["code"].as_str().unwrap_or_else(|| panic!("no error code in {v}")).to_string()
    }

    #[track_caller]
    pub fn expect(&self, status: u16, code: Option<&str>) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text());
        if let Some(c) = code {
            assert_eq!(self.code(), c);
        }
        self
    }
}
