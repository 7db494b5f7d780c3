//! The real `mcr` binary on an ephemeral port, and a raw HTTP/1.1 client.

#![allow(dead_code)]

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

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
        if !env.iter().any(|(k, _)| *k == "MCR_DATABASE_URL") {
            if let Some((url, password_file)) = test_database(data) {
                cmd.env("MCR_DATABASE_URL", url).env("MCR_DATABASE_PASSWORD_FILE", password_file);
            }
        }
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
        self.status_kib("VmHWM:")
    }

    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(field))
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
