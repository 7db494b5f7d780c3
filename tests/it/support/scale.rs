//! The scale-out fixtures: a throwaway PostgreSQL (`scripts/postgres`) and
//! HAProxy in front of replicas, both stopped when dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

pub struct Postgres {
    dir: TempDir,
    pub url: String,
    pub password_file: PathBuf,
    /// The CA of the server's certificate, when it speaks TLS.
    pub ca: Option<PathBuf>,
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// A server that speaks TLS 1.3 only and refuses TCP clients without it.
    pub fn start_tls() -> Postgres {
        Postgres::start_with(true)
    }

    fn start_with(tls: bool) -> Postgres {
        let dir = tempfile::Builder::new().prefix("mcr-pg").tempdir().unwrap();
        let out = Command::new(script("postgres"))
            .arg("start")
            .arg(dir.path().join("pg"))
            .env("PG_OWNER_PID", std::process::id().to_string())
            // The run-long server lives in a static, which is never dropped:
            // its 1.5 GiB directory was left in /tmp by every run.
            .env("PG_OWNER_REMOVES", dir.path())
            .env("PG_TLS", if tls { "1" } else { "0" })
            .output()
            .expect("run scripts/postgres");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "scripts/postgres start: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, vars["PG_PASSWORD"]).unwrap();
        let ca = vars.get("PG_CA").map(PathBuf::from);
        Postgres { url: vars["PG_URL"].to_string(), password_file, ca, dir }
    }

    /// `MCR_DATABASE_*` for `mcr serve`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MCR_DATABASE_URL".into(), self.url.clone()),
            ("MCR_DATABASE_PASSWORD_FILE".into(), self.password_file.display().to_string()),
        ]
    }

    /// `psql -c SQL` as the superuser over the server's socket; its output.
    pub fn psql(&self, sql: &str) -> String {
        let d = self.dir.path().join("pg");
        let port = std::fs::read_to_string(d.join("port")).unwrap();
        // PostgreSQL's superuser is the `postgres` user: as root, become it.
        let psql = "/usr/lib/postgresql/15/bin/psql";
        let mut cmd = if is_root() { Command::new("runuser") } else { Command::new(psql) };
        if is_root() {
            cmd.args(["-u", "postgres", "--", psql]);
        }
        let out = cmd
            .args(["-At", "-h"])
            .arg(d.join("sock"))
            .args(["-p", port.trim(), "-U", "postgres", "-d", "postgres", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the server again after `stop` (same cluster, same port).
    pub fn start_again(&self) {
        let st =
            Command::new(script("postgres")).arg("restart").arg(self.dir.path().join("pg")).status().unwrap();
        assert!(st.success(), "scripts/postgres restart");
    }

    pub fn stop(&self) {
        let _ = Command::new(script("postgres")).arg("stop").arg(self.dir.path().join("pg")).status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port free now (for a listener started later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// HAProxy on `port`, round-robin over `backends`, one request at a time
/// per connection to a replica (so consecutive requests land on different
/// replicas).
pub struct Haproxy {
    child: Child,
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl Haproxy {
    pub fn start(port: u16, backends: &[SocketAddr]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, a)| format!("  server r{i} {a} check inter 500ms fall 2 rise 1\n"))
            .collect();
        let cfg = format!(
            "global\n  maxconn 2000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 300s\n  \
             timeout server 300s\n  option http-server-close\n  retries 2\n  option redispatch\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  balance roundrobin\n  option httpchk GET /v2/\n  http-check expect status 200,401\n{servers}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn haproxy (scripts/test installs it)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Haproxy { child, addr, _dir: dir }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when this test run puts every registry on PostgreSQL
/// (`MCR_TEST_POSTGRES=1`, as `scripts/test` does for its second pass).
pub fn on_postgres() -> bool {
    std::env::var("MCR_TEST_POSTGRES").is_ok_and(|v| v == "1")
}

/// On a PostgreSQL run, the `[database]` settings that give the registry
/// of `data_dir` a database of its own (the same one each time, so a
/// restart finds its data), on one server started for the whole run and
/// stopped when the test process ends.
pub fn test_database(data_dir: &Path) -> Option<(String, PathBuf)> {
    if !on_postgres() {
        return None;
    }
    static SERVER: std::sync::OnceLock<Postgres> = std::sync::OnceLock::new();
    let pg = SERVER.get_or_init(Postgres::start);
    let name = format!("t_{}", &super::sha256(data_dir.to_string_lossy().as_bytes())[7..23]);
    let password = std::fs::read_to_string(&pg.password_file).unwrap();
    let mut config: postgres::Config = pg.url.parse().unwrap();
    config.password(password.trim());
    let mut client = config.connect(postgres::NoTls).expect("connect to the test PostgreSQL");
    let exists =
        client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).unwrap().is_some();
    if !exists {
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    }
    let url = match pg.url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => unreachable!("PG_URL names a database"),
    };
    Some((url, pg.password_file.clone()))
}

/// Ends a test that only makes sense on SQLite (it reads or writes the
/// database file itself) when the run is on PostgreSQL; the SQLite pass
/// of the same suite runs it.
#[macro_export]
macro_rules! sqlite_only {
    () => {
        if $crate::support::on_postgres() {
            eprintln!("skipped on the PostgreSQL pass: this test works on the SQLite file itself");
            return;
        }
    };
}

/// The `mcr` command for offline use on `data` (`mcr user`, `mcr
/// reconcile`…), on the same database as the registry there.
pub fn mcr_on(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcr"));
    if let Some((url, password_file)) = test_database(data) {
        cmd.env("MCR_DATABASE_URL", url).env("MCR_DATABASE_PASSWORD_FILE", password_file);
    }
    cmd
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false)
}
