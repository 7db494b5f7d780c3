//! Test support: an in-process app driven through the full HTTP dispatch,
//! the real `mcr` binary on an ephemeral port, a raw HTTP client, and
//! builders for real OCI image layouts (gzip tar layers, configs with
//! matching diff_ids) that skopeo and friends accept.

#![allow(dead_code)]

use mcr::app::App;
use mcr::config::Config;
use mcr::http::{Body, Request};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let mut s = String::from("sha256:");
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Deterministic pseudo-random bytes (xorshift), so tests make distinct
/// but reproducible blobs without a RNG dependency.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------- in-process

pub struct TestApp {
    pub dir: TempDir,
    pub app: App,
    /// The generated admin password.
    pub admin: String,
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
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().join("data");
        f(&mut config);
        let store = mcr::storage::open(&config.storage).unwrap();
        let app = App::open(config, store).unwrap();
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

// ------------------------------------------------------------- real server

pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The gRPC listener.
    pub grpc: SocketAddr,
    /// The admin password the server generated on first start.
    pub admin: String,
    pub data_dir: PathBuf,
    log: Arc<Mutex<String>>,
    _dir: Option<TempDir>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_args(&[])
    }

    /// Starts on a fresh data directory with extra `mcr serve` arguments.
    pub fn start_args(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut s = Server::start_with(&data, args, &[]);
        s._dir = Some(dir);
        s
    }

    /// Starts `mcr serve` on port 0 with `data` as data directory.
    pub fn start_on(data: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with(data, &[], env)
    }

    /// Starts `mcr serve` with extra arguments (default `--listen 127.0.0.1:0`).
    pub fn start_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcr"));
        cmd.arg("serve");
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if !args.contains(&"--grpc-listen") {
            cmd.args(["--grpc-listen", "127.0.0.1:0"]);
        }
        cmd.args(args)
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn mcr");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                {
                    let mut l = log2.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
                // Announce the addresses only once their line is in the log.
                if let Some(rest) = line.split("listening ").nth(1) {
                    let mut words = rest.split_whitespace();
                    let http = words.next().and_then(|w| w.split_once('=')).map(|(_, a)| a.to_string());
                    let grpc = words.next().and_then(|w| w.strip_prefix("grpc=")).map(str::to_string);
                    if let (Some(h), Some(g)) = (http, grpc) {
                        let _ = tx.send((h, g));
                    }
                }
            }
        });
        let loopback = |a: &str| {
            let a: SocketAddr = a.parse().unwrap();
            // A wildcard bind is reached through loopback.
            if a.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            } else {
                a
            }
        };
        let (addr, grpc) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((h, g)) => (loopback(&h), loopback(&g)),
            Err(_) => {
                let _ = child.kill();
                panic!("mcr did not start: {}", log.lock().unwrap());
            }
        };
        let admin = std::fs::read_to_string(data.join("initial-admin-password"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Server { child: Some(child), addr, grpc, admin, data_dir: data.to_path_buf(), log, _dir: None }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("server running");
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "mcr did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// One exchange as the admin (unless `headers` carry an Authorization).
    pub fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let auth = self.admin_auth();
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if !h.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
            h.push(("Authorization", &auth));
        }
        http(self.addr, method, path, &h, body)
    }

    /// Pushes a one-layer image as the admin; returns (manifest, digest).
    pub fn push_image(&self, repo: &str, tag: &str, seed: u64) -> (Vec<u8>, String) {
        let cfg = format!("{{\"seed\":{seed}}}").into_bytes();
        let layer = bytes(seed, 3000);
        for b in [&cfg, &layer] {
            let r = self.http("POST", &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(b)), &[], b);
            assert_eq!(r.status, 201, "{}", r.text());
        }
        let m = image_manifest((&sha256(&cfg), cfg.len()), &[(&sha256(&layer), layer.len())], None);
        let r =
            self.http("PUT", &format!("/v2/{repo}/manifests/{tag}"), &[("Content-Type", OCI_MANIFEST)], &m);
        assert_eq!(r.status, 201, "{}", r.text());
        let d = sha256(&m);
        (m, d)
    }

    pub fn admin_auth(&self) -> String {
        basic("admin", &self.admin)
    }

    /// `admin:<password>` for skopeo's --creds.
    pub fn creds(&self) -> String {
        format!("admin:{}", self.admin)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`).
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s, method == "HEAD")
}

pub fn read_response(s: &mut TcpStream, head: bool) -> Resp {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("response has a header block");
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect();
    let content_length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok());
    let body = if head { Vec::new() } else { raw[split + 4..].to_vec() };
    Resp { status, headers, body, content_length }
}

// ------------------------------------------------------------ OCI layouts

/// An OCI image layout directory on disk, as skopeo reads and writes them.
pub struct Layout {
    pub dir: PathBuf,
    index: Vec<Value>,
}

#[derive(Clone, Debug)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let l = Layout { dir: dir.to_path_buf(), index: Vec::new() };
        l.write_index();
        l
    }

    pub fn put_blob(&self, data: &[u8]) -> String {
        let d = sha256(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
        d
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.dir.join("blobs/sha256").join(&digest[7..])).unwrap()
    }

    fn write_index(&self) {
        let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.index});
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    }

    fn tag(&mut self, d: &Desc, tag: &str) {
        self.index.push(json!({
            "mediaType": d.media_type, "digest": d.digest, "size": d.size,
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }));
        self.write_index();
    }

    /// A gzip tar layer holding one file of `size` pseudo-random bytes;
    /// returns (compressed descriptor, diff_id).
    pub fn layer(&self, seed: u64, size: usize) -> (Desc, String) {
        let mut tar = tar::Builder::new(Vec::new());
        let data = bytes(seed, size);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, format!("data-{seed}.bin"), &data[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        let diff_id = sha256(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let digest = self.put_blob(&gz);
        (
            Desc { media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(), digest, size: gz.len() },
            diff_id,
        )
    }

    /// An image of `layers` layers for `arch`; tagged in index.json when `tag` is given.
    pub fn image(&mut self, tag: Option<&str>, seed: u64, layers: usize, arch: &str) -> Desc {
        let ls: Vec<(Desc, String)> =
            (0..layers).map(|i| self.layer(seed * 100 + i as u64, 2000 + 3000 * i)).collect();
        let config = json!({
            "architecture": arch, "os": "linux",
            "config": {"Env": [format!("SEED={seed}")]},
            "rootfs": {"type": "layers", "diff_ids": ls.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>()},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let cd = self.put_blob(&config);
        let m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": ls.iter().map(|(d, _)| json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size})).collect::<Vec<_>>(),
        });
        let m = serde_json::to_vec(&m).unwrap();
        let d = Desc { media_type: OCI_MANIFEST.into(), digest: self.put_blob(&m), size: m.len() };
        if let Some(t) = tag {
            self.tag(&d, t);
        }
        d
    }

    /// A multi-platform index over new images for each architecture.
    pub fn index(&mut self, tag: &str, seed: u64, arches: &[&str]) -> Desc {
        let children: Vec<Value> = arches
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let d = self.image(None, seed + i as u64, 2, a);
                json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size,
                       "platform": {"architecture": a, "os": "linux"}})
            })
            .collect();
        let idx =
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}))
                .unwrap();
        let d = Desc { media_type: OCI_INDEX.into(), digest: self.put_blob(&idx), size: idx.len() };
        self.tag(&d, tag);
        d
    }

    /// An artifact (empty config, one blob layer) whose subject is `subject`.
    pub fn artifact(&mut self, tag: &str, artifact_type: &str, subject: &Desc, payload: &[u8]) -> Desc {
        let empty = self.put_blob(b"{}");
        let pd = self.put_blob(payload);
        let m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": pd, "size": payload.len()}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
            "annotations": {"org.example.kind": "signature"},
        });
        let m = serde_json::to_vec(&m).unwrap();
        let d = Desc { media_type: OCI_MANIFEST.into(), digest: self.put_blob(&m), size: m.len() };
        self.tag(&d, tag);
        d
    }
}

/// Runs a command, panicking with its output when it fails.
#[track_caller]
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (scripts/test installs the clients)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// -------------------------------------------------------------- TLS certs

/// A throwaway CA and a server certificate for 127.0.0.1/localhost, made
/// with the openssl CLI.
pub struct Certs {
    pub dir: TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ossl = |args: &[&str]| {
            run(Command::new("openssl").args(args).current_dir(d));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        ossl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=mcr test CA", "-days", "2"],
            ]
            .concat(),
        );
        ossl(
            &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]]
                .concat(),
        );
        std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        ossl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        // A directory holding only the CA, as skopeo's --cert-dir wants.
        std::fs::create_dir(d.join("trust")).unwrap();
        std::fs::copy(d.join("ca.crt"), d.join("trust/ca.crt")).unwrap();
        Certs { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}
