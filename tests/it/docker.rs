//! The docker CLI with its own dockerd against the real `mcr` binary:
//! `docker push` and `docker pull` just work.  Docker re-encodes the
//! manifest on push, so what is checked is the image id (the config digest),
//! which docker keeps.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    key_existed: bool,
}

impl Dockerd {
    pub(crate) fn start() -> Dockerd {
        // Short paths: unix socket paths are limited to ~100 bytes.
        let dir = tempfile::Builder::new().prefix("mcrdk").tempdir_in("/tmp").unwrap();
        let d = dir.path();
        let key_existed = Path::new("/etc/docker/key.json").exists();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs"])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("log")).unwrap())
            .spawn()
            .expect("dockerd runs (scripts/test installs docker.io)");
        let dk = Dockerd { child, dir, key_existed };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dk.docker().args(["version"]).output().is_ok_and(|o| o.status.success()) {
            assert!(Instant::now() < deadline, "dockerd did not start: {}", dk.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        dk
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub(crate) fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.dir.path().join("docker.sock").display()))
            .env("DOCKER_CONFIG", self.dir.path().join("cfg"));
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.key_existed {
            let _ = std::fs::remove_file("/etc/docker/key.json");
        }
    }
}

pub(crate) fn docker_archive(tmp: &Path) -> (PathBuf, String) {
    let src = tmp.join("src");
    let mut layout = Layout::new(&src);
    let img = layout.image(Some("v1"), 41, 2, "amd64");
    let m: serde_json::Value = serde_json::from_slice(&layout.blob(&img.digest)).unwrap();
    let config = m["config"]["digest"].as_str().unwrap().to_string();
    let tar = tmp.join("img.tar");
    run(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "-q"])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker-archive:{}:mcrtest/img:v1", tar.display())));
    (tar, config)
}

/// `docker login` as admin at `host`.
pub(crate) fn docker_login(dk: &Dockerd, host: &str, password: &str) {
    let mut login = dk
        .docker()
        .args(["login", "-u", "admin", "--password-stdin", host])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        login.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
    }
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "docker login: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn docker_push_and_pull() {
    let srv = Server::start();
    let host = srv.host();
    let tmp = tempfile::tempdir().unwrap();
    let (tar, config) = docker_archive(tmp.path());
    let dk = Dockerd::start();
    docker_login(&dk, &host, &srv.admin);
    run(dk.docker().args(["load", "-q", "-i"]).arg(&tar));
    let remote = format!("{host}/library/img:v1");
    run(dk.docker().args(["tag", "mcrtest/img:v1", &remote]));
    run(dk.docker().args(["push", "-q", &remote]));

    let r = srv.http("GET", "/v2/library/img/tags/list", &[], b"");
    assert_eq!(r.json()["tags"], serde_json::json!(["v1"]));
    let accept = format!("{DOCKER_MANIFEST}, {OCI_MANIFEST}");
    let r = srv.http("GET", "/v2/library/img/manifests/v1", &[("Accept", &accept)], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["config"]["digest"], config.as_str(), "docker keeps the config (image id)");
    assert_eq!(r.header("Docker-Content-Digest"), Some(sha256(&r.body).as_str()));

    run(dk.docker().args(["rmi", "-f", &remote, "mcrtest/img:v1"]));
    run(dk.docker().args(["pull", "-q", &remote]));
    let id = run(dk.docker().args(["image", "inspect", "--format", "{{.Id}}", &remote]));
    assert_eq!(id.trim(), config);
}
