//! The real `mcrctl` against a real server, over REST and over gRPC: every
//! command, the two transports' `--json` output compared, errors with their
//! exit codes, and `audit tail --follow` stopped with Ctrl-C.

use crate::support::*;
use serde_json::Value;
use std::process::{Command, Output, Stdio};

struct Ctl {
    srv: Server,
    home: tempfile::TempDir,
}

impl Ctl {
    fn new() -> Ctl {
        let srv = Server::start();
        let home = tempfile::tempdir().unwrap();
        let ctl = Ctl { srv, home };
        ctl.login();
        ctl
    }

    fn login(&self) {
        let ctl = self;
        let mut login = ctl
            .cmd(&[])
            .args(["login", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write as _;
            login.stdin.take().unwrap().write_all(format!("{}\n", ctl.srv.admin).as_bytes()).unwrap();
        }
        assert!(login.wait().unwrap().success());
    }

    fn cmd(&self, transport: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mcrctl"));
        c.env("XDG_CONFIG_HOME", self.home.path())
            .env_remove("MCR_TOKEN")
            .args(["--server", &format!("http://{}", self.srv.host())])
            .args(transport);
        c
    }

    fn run(&self, transport: &[&str], args: &[&str]) -> Output {
        self.cmd(transport).args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `--json` output of a command over REST and over gRPC.
    fn both(&self, args: &[&str]) -> (Value, Value) {
        let grpc = self.srv.grpc.to_string();
        let mut out = Vec::new();
        for transport in [vec![], vec!["--grpc", grpc.as_str()]] {
            let o = self.run(&transport, &[&["--json"][..], args].concat());
            assert!(o.status.success(), "{args:?} via {transport:?}: {}", String::from_utf8_lossy(&o.stderr));
            out.push(
                serde_json::from_slice(&o.stdout)
                    .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&o.stdout))),
            );
        }
        (out.remove(0), out.remove(0))
    }
}

#[test]
fn every_command_gives_the_same_answer_over_rest_and_grpc() {
    let ctl = Ctl::new();
    use std::os::unix::fs::PermissionsExt as _;
    let token_file = ctl.home.path().join("mcrctl/token");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    // A loosened token file is tightened at the next login.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    ctl.login();
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    ctl.srv.push_image("lib/one", "v1", 1);
    ctl.srv.push_image("lib/one", "v2", 2);
    ctl.srv.push_image("lib/two", "latest", 3);

    let (mut a, mut b) = ctl.both(&["status"]);
    a["uptime_secs"] = Value::Null;
    b["uptime_secs"] = Value::Null;
    assert_eq!(a, b);
    assert_eq!(a["repositories"], 2);
    let (a, b) = ctl.both(&["repo", "list"]);
    assert_eq!(a, b);
    assert_eq!(a.as_array().unwrap().len(), 2);
    let (a, b) = ctl.both(&["repo", "show", "lib/one"]);
    assert_eq!(a, b);
    assert_eq!(a["tags"].as_array().unwrap().len(), 2);

    // Policy: create over REST, the rest compared.
    let o = ctl.run(
        &[],
        &[
            "--json",
            "policy",
            "create",
            "--effect",
            "allow",
            "--action",
            "push",
            "--action",
            "pull",
            "--repo",
            "ci/*",
            "--user",
            "ci",
            "--priority",
            "5",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let created: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = created["id"].as_i64().unwrap().to_string();
    let (a, b) = ctl.both(&["policy", "list"]);
    assert_eq!(a, b);
    let (a, b) = ctl.both(&["policy", "get", &id]);
    assert_eq!(a, b);
    assert_eq!(a["repositories"][0], "ci/*");
    let (a, b) = ctl.both(&[
        "policy",
        "test",
        "--user",
        "ci",
        "--account-type",
        "system",
        "--action",
        "push",
        "--repo",
        "ci/app",
    ]);
    assert_eq!(a, b);
    assert_eq!(a["allowed"], true);
    let (a, b) = ctl.both(&["policy", "disable", &id]);
    assert_eq!((a["enabled"].clone(), b["enabled"].clone()), (Value::Bool(false), Value::Bool(false)));
    let (a, b) = ctl.both(&["policy", "enable", &id]);
    assert_eq!(a, b);
    let rule_file = ctl.home.path().join("rule.toml");
    std::fs::write(&rule_file, "priority = 7\neffect = \"deny\"\nactions = [\"delete\"]\n").unwrap();
    let (a, b) = ctl.both(&["policy", "update", &id, "--file", rule_file.to_str().unwrap()]);
    assert_eq!(a, b);
    assert_eq!((a["priority"].clone(), a["effect"].clone()), (Value::from(7), Value::from("deny")));

    let (a, b) = ctl.both(&["audit", "tail", "--limit", "5"]);
    assert_eq!(a, b);
    let (a, b) = ctl.both(&["audit", "verify"]);
    assert_eq!(a, b);
    assert_eq!(a["first_broken"], Value::Null);
    let (a, b) = ctl.both(&["gc", "reconcile"]);
    assert_eq!(a, b);
    // GC: one run each way, then the same status.
    let (a, b) = ctl.both(&["gc", "trigger", "--wait"]);
    assert_eq!(a["running"], false);
    assert_eq!(b["last_run_id"].as_u64().unwrap(), a["last_run_id"].as_u64().unwrap() + 1);
    let (a, b) = ctl.both(&["gc", "status"]);
    assert_eq!(a, b);
    let grpc_addr = ctl.srv.grpc.to_string();
    if on_postgres() {
        // PostgreSQL is backed up with pg_dump: both transports say so.
        for transport in [vec![], vec!["--grpc", grpc_addr.as_str()]] {
            let o = ctl.run(&transport, &["snapshot"]);
            assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("pg_dump"));
        }
    } else {
        let (a, b) = ctl.both(&["snapshot"]);
        assert!(
            a["path"].as_str().unwrap().contains("snapshots")
                && b["path"].as_str().unwrap().contains("snapshots")
        );
        let out = ctl.home.path().join("copy.db");
        let o = ctl.run(&[], &["snapshot", "--output", out.to_str().unwrap()]);
        assert!(o.status.success() && out.exists());
    }

    // Deletions, one per transport, and their effect seen by both.
    let grpc = ctl.srv.grpc.to_string();
    assert!(ctl.run(&[], &["tag", "delete", "lib/one:v2"]).status.success());
    assert!(ctl.run(&["--grpc", &grpc], &["repo", "delete", "lib/two", "--yes"]).status.success());
    let (a, b) = ctl.both(&["repo", "list"]);
    assert_eq!(a, b);
    assert_eq!(a.as_array().unwrap().len(), 1);
    assert_eq!(a[0]["tags"], 1);
    let o = ctl.run(&["--grpc", &grpc], &["--json", "policy", "delete", &id]);
    assert!(o.status.success());
    let (a, b) = ctl.both(&["policy", "list"]);
    assert_eq!((a, b), (Value::Array(vec![]), Value::Array(vec![])));

    // Human output: aligned tables with headers, sizes in human units.
    let o = ctl.run(&[], &["repo", "list"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("NAME") && text.contains("KiB"), "{text}");
    let o = ctl.run(&[], &["completions", "bash"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("mcrctl"));
}

#[test]
fn errors_have_one_line_and_distinct_exit_codes() {
    let ctl = Ctl::new();
    let grpc = ctl.srv.grpc.to_string();
    let check = |o: Output, code: i32, needle: &str| {
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("mcrctl: ") && err.contains(needle), "{err}");
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"));
    };
    for t in [vec![], vec!["--grpc", grpc.as_str()]] {
        // Not found, invalid argument, permission denied, no token.
        check(ctl.run(&t, &["repo", "show", "nothing/here"]), 7, "not found");
        check(ctl.run(&t, &["repo", "show", "Bad/Name"]), 8, "invalid argument");
        check(ctl.run(&t, &["policy", "create", "--effect", "maybe"]), 8, "invalid");
        let mut c = ctl.cmd(&t);
        c.env("XDG_CONFIG_HOME", "/nonexistent").args(["status"]);
        check(c.output().unwrap(), 5, "not authenticated");
        check(ctl.run(&t, &["--token", "expired-or-forged", "status"]), 5, "not authenticated");
    }
    // A non-admin user.
    let body = br#"{"username":"bob","password":"bob-password-1"}"#;
    assert_eq!(ctl.srv.http("POST", "/v1/users", &[], body).status, 201);
    let tok =
        ctl.srv.http("GET", "/v2/token", &[("Authorization", &basic("bob", "bob-password-1"))], b"").json()
            ["token"]
            .as_str()
            .unwrap()
            .to_string();
    check(ctl.run(&[], &["--token", &tok, "repo", "list"]), 6, "permission denied");
    check(ctl.run(&["--grpc", &grpc], &["--token", &tok, "gc", "status"]), 6, "permission denied");
    // Unreachable server, TLS trouble, usage.
    check(
        Command::new(env!("CARGO_BIN_EXE_mcrctl"))
            .args(["--server", "http://127.0.0.1:1", "--token", "x", "status"])
            .output()
            .unwrap(),
        3,
        "unreachable",
    );
    let certs = Certs::new();
    let tls = Server::start_args(&[
        "--tls-cert",
        &certs.path("server.crt"),
        "--tls-key",
        &certs.path("server.key"),
    ]);
    let other_ca = Certs::new();
    let o = Command::new(env!("CARGO_BIN_EXE_mcrctl"))
        .args([
            "--server",
            &format!("https://{}", tls.host()),
            "--ca-cert",
            &other_ca.path("ca.crt"),
            "--token",
            "x",
            "status",
        ])
        .output()
        .unwrap();
    check(o, 4, "TLS");
    let o = Command::new(env!("CARGO_BIN_EXE_mcrctl"))
        .args([
            "--server",
            &format!("https://{}", tls.host()),
            "--ca-cert",
            &certs.path("ca.crt"),
            "--token",
            "x",
            "status",
        ])
        .output()
        .unwrap();
    check(o, 5, "not authenticated");
    let o = ctl.run(&[], &["tag", "delete", "no-colon"]);
    check(o, 8, "NAME:TAG");
    let o = ctl.run(&[], &["repo", "delete", "lib/x"]);
    assert_eq!(o.status.code(), Some(1), "unconfirmed delete does nothing");
    assert_eq!(ctl.run(&[], &["no-such-command"]).status.code(), Some(2));
}

#[test]
fn audit_tail_follow_shows_new_events_and_stops_on_ctrl_c() {
    let ctl = Ctl::new();
    for (i, t) in [vec![], vec!["--grpc".to_string(), ctl.srv.grpc.to_string()]].into_iter().enumerate() {
        let t: Vec<&str> = t.iter().map(String::as_str).collect();
        let mut child = ctl
            .cmd(&t)
            .args(["--json", "audit", "tail", "--follow", "--type", "push", "--limit", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(800));
        ctl.srv.push_image("followed", &format!("f{i}"), 10 + i as u64);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let stdout = child.stdout.take().unwrap();
        let wanted = format!("\"reference\":\"f{i}\"");
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            let mut lines = Vec::new();
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let done = line.contains(&wanted);
                lines.push(line);
                if done {
                    break;
                }
            }
            lines
        });
        while !reader.is_finished() {
            assert!(std::time::Instant::now() < deadline, "the new event was not shown");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let lines = reader.join().unwrap();
        assert!(lines.iter().any(|l| l.contains(&format!("\"reference\":\"f{i}\""))), "{lines:?}");
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let status = child.wait().unwrap();
        assert!(status.success(), "Ctrl-C exits cleanly: {status:?}");
    }
}
