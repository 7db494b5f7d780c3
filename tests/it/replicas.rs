//! Scale-out (R-SCALE-2..5): three `mcr serve` replicas behind HAProxy
//! (round-robin, so consecutive requests land on different replicas), on a
//! three-replica Swift ring (`s3api`) and PostgreSQL, all real and started
//! here.  One set of engines serves every phase (they take ~20 s to start).

use crate::support::*;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo").arg("--insecure-policy").args(args).output().expect("run skopeo")
}

/// Pushes an image of `sizes` layers to `repo:tag` at `host` and returns
/// its layout and manifest digest.
fn push(
    host: &str,
    creds: &str,
    dir: &std::path::Path,
    repo: &str,
    tag: &str,
    seed: u64,
    sizes: &[usize],
) -> String {
    let mut layout = Layout::new(dir);
    let img = layout.image_sized(Some(tag), seed, sizes, "amd64");
    let src = format!("oci:{}:{tag}", dir.display());
    let dst = format!("docker://{host}/{repo}:{tag}");
    let out = skopeo(&["copy", "-q", "--dest-tls-verify=false", "--dest-creds", creds, &src, &dst]);
    assert!(out.status.success(), "push {repo}:{tag}: {}", String::from_utf8_lossy(&out.stderr));
    img.digest
}

/// Pulls `repo:tag` from `host` and checks every blob against its digest.
fn pull_ok(host: &str, creds: &str, repo: &str, tag: &str) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let src = format!("docker://{host}/{repo}:{tag}");
    let dst = format!("oci:{}:{tag}", out_dir.display());
    let out = skopeo(&["copy", "-q", "--src-tls-verify=false", "--src-creds", creds, &src, &dst]);
    if !out.status.success() {
        return Err(format!("pull {repo}:{tag}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    for e in std::fs::read_dir(out_dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let want = format!("sha256:{}", e.file_name().to_string_lossy());
        if sha256(&std::fs::read(e.path()).unwrap()) != want {
            return Err(format!("{repo}:{tag}: {want} came back changed"));
        }
    }
    Ok(())
}

/// Starts an upload on `a`; its Location.
fn begin(a: &Server, repo: &str) -> String {
    let r = a.http("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    r.header("Location").unwrap().to_string()
}

fn with_digest(loc: &str, d: &str) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={d}")
}

/// Every blob that came back 201 reads back as its digest says, from both.
fn reads_back(a: &Server, b: &Server, repo: &str, d: &str, want: &[u8]) {
    for srv in [a, b] {
        let r = srv.http("GET", &format!("/v2/{repo}/blobs/{d}"), &[], b"");
        assert_eq!(r.status, 200, "{d} acknowledged but not readable: {}", r.text());
        assert!(r.body == want, "{d} reads back other bytes");
    }
}

fn sessions_race_across_replicas(a: &Server, b: &Server) {
    let repo = "scale/race";
    for round in 0..4u64 {
        // Two chunks at offset 0, one per replica, at once.
        let loc = begin(a, repo);
        let (x, y) = (bytes(900 + round, 100_000), bytes(950 + round, 100_000));
        let (rx, ry) = std::thread::scope(|s| {
            let hx = s.spawn(|| a.http("PATCH", &loc, &[("Content-Range", "0-99999")], &x));
            let hy = s.spawn(|| b.http("PATCH", &loc, &[("Content-Range", "0-99999")], &y));
            (hx.join().unwrap(), hy.join().unwrap())
        });
        let mut codes = [rx.status, ry.status];
        codes.sort();
        assert_eq!(codes, [202, 416], "two chunks at one offset: {} / {}", rx.text(), ry.text());
        let won = if rx.status == 202 { &x } else { &y };
        let lost = if rx.status == 202 { &y } else { &x };
        let r = a.http("PUT", &with_digest(&loc, &sha256(lost)), &[], b"");
        assert_eq!(r.status, 400, "the losing chunk's digest is refused: {}", r.text());
        // (A refused digest ends the session; the winner's bytes were never
        // acknowledged as a blob.)
        assert_eq!(a.http("HEAD", &format!("/v2/{repo}/blobs/{}", sha256(lost)), &[], b"").status, 404);
        assert_eq!(a.http("HEAD", &format!("/v2/{repo}/blobs/{}", sha256(won)), &[], b"").status, 404);

        // A finish on one replica against a cancel on the other.
        let loc = begin(a, repo);
        let z = bytes(1000 + round, 200_000);
        assert_eq!(a.http("PATCH", &loc, &[("Content-Range", "0-199999")], &z).status, 202);
        let dz = sha256(&z);
        let (put, del) = std::thread::scope(|s| {
            let hp = s.spawn(|| a.http("PUT", &with_digest(&loc, &dz), &[], b""));
            let hd = s.spawn(|| b.http("DELETE", &loc, &[], b""));
            (hp.join().unwrap(), hd.join().unwrap())
        });
        assert!(
            (put.status == 201 && del.status == 404) || (put.status == 404 && del.status == 204),
            "finish {} vs cancel {}",
            put.status,
            del.status
        );
        if put.status == 201 {
            reads_back(a, b, repo, &dz, &z);
        }

        // Two finishes at once, one with a last chunk.
        let loc = begin(a, repo);
        let (p1, p2) = (bytes(1100 + round, 100_000), bytes(1150 + round, 50_000));
        assert_eq!(a.http("PATCH", &loc, &[("Content-Range", "0-99999")], &p1).status, 202);
        let d1 = sha256(&p1);
        let both = [p1.clone(), p2.clone()].concat();
        let d12 = sha256(&both);
        let (r1, r2) = std::thread::scope(|s| {
            let h1 = s.spawn(|| a.http("PUT", &with_digest(&loc, &d1), &[], b""));
            let h2 = s.spawn(|| {
                b.http("PUT", &with_digest(&loc, &d12), &[("Content-Range", "100000-149999")], &p2)
            });
            (h1.join().unwrap(), h2.join().unwrap())
        });
        let wins = [r1.status, r2.status].iter().filter(|c| **c == 201).count();
        assert_eq!(wins, 1, "exactly one finish wins: {} / {}", r1.status, r2.status);
        if r1.status == 201 {
            reads_back(a, b, repo, &d1, &p1);
        } else {
            reads_back(a, b, repo, &d12, &both);
        }
    }
}

/// A client that stops in the middle of a chunk on one replica holds that
/// session: requests for it on another replica answer 429 within a few
/// seconds (found by a hostile run: they used to wait for the stalled body,
/// each holding a worker, until the replica answered nothing at all).
fn a_stalled_chunk_freezes_nothing(a: &Server, b: &Server) {
    use std::io::Write as _;
    let loc = begin(a, "scale/stall");
    let mut stalled = std::net::TcpStream::connect(a.addr).unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Range: 0-{}\r\nContent-Length: {}\r\n\r\n",
        a.admin_auth(),
        (8 << 20) - 1,
        8 << 20
    );
    stalled.write_all(head.as_bytes()).unwrap();
    stalled.write_all(&vec![7u8; 2 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let answers: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..12)
            .map(|_| s.spawn(|| b.http("PATCH", &loc, &[("Content-Range", "0-9")], b"0123456789").status))
            .collect();
        // Meanwhile the replica answers everyone else.
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        assert_eq!(b.http("GET", "/v2/", &[], b"").status, 200);
        assert!(t.elapsed() < Duration::from_secs(2), "GET /v2/ waited {:?}", t.elapsed());
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|c| *c == 429), "requests on the held session: {answers:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "they waited {:?}", started.elapsed());
    drop(stalled);
}

/// The access-log lines of `srv` that mention `needle`.
fn served(srv: &Server, needle: &str) -> usize {
    srv.log().lines().filter(|l| l.contains("access") && l.contains(needle)).count()
}

#[test]
fn three_replicas_behind_haproxy_on_swift_and_postgres() {
    let swift = Swift::start();
    let pg = Postgres::start();
    let tmp = tempfile::tempdir().unwrap();
    let lb_port = free_port();
    let mut env = swift.env("replicas/");
    env.extend(pg.env());
    env.push(("MCR_AUDIT_KEY_FILE".into(), tmp.path().join("audit.key").display().to_string()));
    env.push(("MCR_SERVER_EXTERNAL_URL".into(), format!("http://127.0.0.1:{lb_port}")));
    // A short grace period: blobs a push has uploaded but no manifest names
    // yet are kept for it (with none, GC may take them: by design).
    env.push(("MCR_GC_MIN_AGE".into(), "5s".into()));
    // Every client here is 127.0.0.1 (HAProxy too): one address's share of
    // the workers (a quarter, tested in front_door) would queue this
    // test's requests behind its own 12 held PATCHes.
    env.push(("MCR_SERVER_MAX_WORKERS_PER_PEER".into(), "16".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let data = |i: usize| tmp.path().join(format!("r{i}"));
    let r0 = Server::start_on(&data(0), &env);
    let mut replicas = vec![r0];
    for i in 1..3 {
        let mut r = Server::start_on(&data(i), &env);
        r.admin = replicas[0].admin.clone();
        replicas.push(r);
    }
    assert!(!replicas[0].admin.is_empty(), "the first replica made the admin");
    let backends: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    let lb = Haproxy::start(lb_port, &backends);
    let host = lb.addr.to_string();
    let creds = replicas[0].creds();
    let auth = replicas[0].admin_auth();
    let via_lb = |method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| {
        let mut h = headers.to_vec();
        h.push(("Authorization", &auth));
        http(lb.addr, method, path, &h, body)
    };

    // A chunked upload whose chunks land on different replicas: the
    // session lives in PostgreSQL and the bucket, its hash state too.
    let blob = bytes(41, (13 << 20) + 5);
    let r = via_lb("POST", "/v2/scale/chunked/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = r.header("Location").unwrap().to_string();
    let id = loc.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    let cuts = [0, 3 << 20, 7 << 20, 11 << 20, blob.len()];
    for w in cuts.windows(2) {
        let range = format!("{}-{}", w[0], w[1] - 1);
        let r = via_lb("PATCH", &loc, &[("Content-Range", &range)], &blob[w[0]..w[1]]);
        assert_eq!(r.status, 202, "PATCH {range}: {}", r.text());
    }
    let d = sha256(&blob);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = via_lb("PUT", &format!("{loc}{sep}digest={d}"), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    let on: Vec<usize> = replicas.iter().map(|s| served(s, &id)).collect();
    assert!(
        on.iter().filter(|n| **n > 0).count() >= 2,
        "the session's requests all went to one replica: {on:?}"
    );
    for srv in &replicas {
        let r = srv.http("GET", &format!("/v2/scale/chunked/blobs/{d}"), &[], b"");
        assert_eq!(r.status, 200);
        assert!(r.body == blob, "replica {} serves the blob whole", srv.addr);
    }

    // Races between replicas on one upload session (found by a hostile
    // run): two chunks at the same offset, a finish against a cancel, and
    // two finishes — one request wins, and what is acknowledged reads back
    // as its digest says.
    sessions_race_across_replicas(&replicas[0], &replicas[1]);
    a_stalled_chunk_freezes_nothing(&replicas[0], &replicas[1]);

    // The OCI conformance workflows through the balancer: consecutive
    // requests of every workflow land on different replicas.
    let target = crate::conformance::Target { addr: lb.addr, auth: auth.clone() };
    crate::conformance::run(&target, "conformance/lb", "conformance/lb-cross", 11);

    // skopeo through the balancer: multi-layer images in, and back out,
    // while one of Swift's three object servers is killed.
    let dir = tempfile::tempdir().unwrap();
    push(&host, &creds, &dir.path().join("a"), "scale/app", "v1", 51, &[2000, 6 << 20, 30_000]);
    pull_ok(&host, &creds, "scale/app", "v1").unwrap();
    swift.ctl(&["kill-object", "2"]);
    push(&host, &creds, &dir.path().join("b"), "scale/app", "v2", 52, &[3000, 7 << 20]);
    pull_ok(&host, &creds, "scale/app", "v2").unwrap();
    pull_ok(&host, &creds, "scale/app", "v1").unwrap();

    // docker, with a dockerd of its own, through the balancer.
    {
        use crate::docker::{docker_archive, docker_login, Dockerd};
        let (tar, config) = docker_archive(dir.path());
        let dk = Dockerd::start();
        docker_login(&dk, &host, &replicas[0].admin);
        run(dk.docker().args(["load", "-q", "-i"]).arg(&tar));
        let remote = format!("{host}/scale/docker:v1");
        run(dk.docker().args(["tag", "mcrtest/img:v1", &remote]));
        run(dk.docker().args(["push", "-q", &remote]));
        run(dk.docker().args(["rmi", "-f", &remote, "mcrtest/img:v1"]));
        run(dk.docker().args(["pull", "-q", &remote]));
        let id = run(dk.docker().args(["image", "inspect", "--format", "{{.Id}}", &remote]));
        assert_eq!(id.trim(), config, "docker pulls back the image it pushed through the balancer");
    }

    // A policy rule made on one replica is in force on the others within
    // the refresh interval (2 s).
    let rule = serde_json::json!({
        "priority": 1, "effect": "deny", "description": "no pulls of scale/app",
        "actions": ["pull"], "repositories": ["scale/app"]
    });
    let r = replicas[1].http(
        "POST",
        "/v1/policy/rules",
        &[("Content-Type", "application/json")],
        rule.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let rule_id = r.json()["id"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(2600));
    for srv in [&replicas[0], &replicas[2]] {
        let r = srv.http("GET", "/v2/scale/app/manifests/v1", &[], b"");
        assert_eq!(r.status, 403, "replica {} still allows the pull: {}", srv.addr, r.text());
    }
    let r = replicas[1].http("DELETE", &format!("/v1/policy/rules/{rule_id}"), &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    std::thread::sleep(Duration::from_millis(2600));

    // A client guessing passwords on one replica is throttled on all: the
    // replicas share login outcomes through the database (each writes its
    // own and replays the others' every 2 s).
    let guess = basic("no-such-user", "guess");
    for i in 0..10 {
        let r = http(replicas[1].addr, "GET", "/v2/", &[("Authorization", &guess)], b"");
        assert_eq!(r.status, 401, "guess {i} on one replica");
    }
    assert_eq!(http(replicas[1].addr, "GET", "/v2/", &[("Authorization", &guess)], b"").status, 429);
    // One refresh to write them, one to read them: 4 s at most.  A single
    // try each (a failure there would count on its own).
    std::thread::sleep(Duration::from_millis(4500));
    for srv in [&replicas[0], &replicas[2]] {
        let r = http(srv.addr, "GET", "/v2/", &[("Authorization", &guess)], b"");
        assert_eq!(r.status, 429, "replica {} lets the guessing go on: {}", srv.addr, r.text());
    }
    // The user's own logins from there are not held back by it.
    assert_eq!(replicas[2].http("GET", "/v2/", &[], b"").status, 200);

    // Garbage collection over and over on one replica while the others
    // push: nothing acknowledged is lost.
    let stop = Arc::new(AtomicBool::new(false));
    let gc_runs = std::thread::scope(|s| {
        let gc = s.spawn(|| {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = replicas[0].http("POST", "/v1/gc", &[], b"");
                assert!(r.status == 202 || r.status == 409, "gc: {} {}", r.status, r.text());
                runs += (r.status == 202) as usize;
                std::thread::sleep(Duration::from_millis(100));
            }
            runs
        });
        // Stops the GC loop however the pushes end (a failed push panics,
        // and the scope would wait for the loop forever).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        for n in 0..4u64 {
            let srv = &replicas[1 + (n as usize % 2)];
            push(
                &srv.host(),
                &creds,
                &dir.path().join(format!("g{n}")),
                "scale/gc",
                &format!("t{n}"),
                60 + n,
                &[1500, 40_000 + n as usize],
            );
        }
        stop.store(true, Ordering::Relaxed);
        gc.join().unwrap()
    });
    assert!(gc_runs >= 2, "GC ran {gc_runs} times during the pushes");
    let deadline = Instant::now() + Duration::from_secs(30);
    while replicas[0].http("GET", "/v1/gc/status", &[], b"").json()["running"] == true {
        assert!(Instant::now() < deadline, "GC did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    for n in 0..4 {
        pull_ok(&host, &creds, "scale/gc", &format!("t{n}")).unwrap();
    }

    // One replica killed mid-push: the client's retry through the balancer
    // completes on the others.
    let big = dir.path().join("big");
    let killer = {
        let pid = replicas[2].pid();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        })
    };
    let mut layout = Layout::new(&big);
    layout.image_sized(Some("v1"), 70, &[24 << 20, 24 << 20], "amd64");
    let src = format!("oci:{}:v1", big.display());
    let dst = format!("docker://{host}/scale/big:v1");
    let first = skopeo(&["copy", "-q", "--dest-tls-verify=false", "--dest-creds", &creds, &src, &dst]);
    killer.join().unwrap();
    replicas[2].kill();
    if !first.status.success() {
        let retry = skopeo(&["copy", "-q", "--dest-tls-verify=false", "--dest-creds", &creds, &src, &dst]);
        assert!(retry.status.success(), "the retry failed: {}", String::from_utf8_lossy(&retry.stderr));
    }
    pull_ok(&host, &creds, "scale/big", "v1").unwrap();

    // PostgreSQL restarted during a chunked push: clear 503s while it is
    // down, then the same session goes on and the blob is whole.
    let blob = bytes(43, (6 << 20) + 77);
    let r = via_lb("POST", "/v2/scale/outage/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = r.header("Location").unwrap().to_string();
    let half = 3 << 20;
    let r = via_lb("PATCH", &loc, &[("Content-Range", &format!("0-{}", half - 1))], &blob[..half]);
    assert_eq!(r.status, 202, "{}", r.text());
    pg.stop();
    let r = via_lb("PATCH", &loc, &[("Content-Range", &format!("{half}-{}", blob.len() - 1))], &blob[half..]);
    assert_eq!(r.status, 503, "a chunk while the database is down: {} {}", r.status, r.text());
    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r =
            via_lb("PATCH", &loc, &[("Content-Range", &format!("{half}-{}", blob.len() - 1))], &blob[half..]);
        if r.status == 202 {
            break;
        }
        assert!(r.status == 503 || r.status == 416, "retrying the chunk: {} {}", r.status, r.text());
        if r.status == 416 {
            // The chunk landed after all (the store took it, the answer was lost).
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", r.text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let d = sha256(&blob);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = via_lb("PUT", &format!("{loc}{sep}digest={d}"), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = via_lb("GET", &format!("/v2/scale/outage/blobs/{d}"), &[], b"");
    assert!(r.status == 200 && r.body == blob, "the blob pushed across the outage is whole");

    // And again with the database down for every replica's request.
    pg.stop();
    let r = replicas[0].http("GET", "/v2/scale/app/tags/list", &[], b"");
    assert_eq!(r.status, 503, "with the database down: {} {}", r.status, r.text());
    assert!(r.text().contains("UNAVAILABLE") || r.text().contains("errors"), "{}", r.text());
    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = replicas[0].http("GET", "/v2/scale/app/tags/list", &[], b"");
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the database restart: {} {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    pull_ok(&host, &creds, "scale/app", "v1").unwrap();

    // One audit chain, written by every replica, verifies.
    for srv in &replicas[..2] {
        let v = srv.http("GET", "/v1/audit/verify", &[], b"");
        assert_eq!(v.status, 200, "{}", v.text());
        let v = v.json();
        assert_eq!(v["first_broken"], serde_json::Value::Null, "{v}");
        assert!(v["rows"].as_u64().unwrap() > 20, "{v}");
    }
}

#[test]
fn postgresql_over_tls_1_3_only() {
    let pg = Postgres::start_tls();
    let ca = pg.ca.clone().expect("the server's CA");
    let tmp = tempfile::tempdir().unwrap();
    let base: Vec<(String, String)> = pg.env();
    let with = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut e = base.clone();
        e.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        e
    };
    // Without the CA: a URL that asks for TLS is refused with a reason, and
    // a plain one is refused by the server (it takes TLS clients only).
    for (url, needle) in
        [(format!("{}?sslmode=require", pg.url), "database.ca_file"), (pg.url.clone(), "database")]
    {
        let mut env = with(&[]);
        env.retain(|(k, _)| k != "MCR_DATABASE_URL");
        env.push(("MCR_DATABASE_URL".into(), url));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcr"))
            .args(["serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("refused"))
            .envs(env)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{err}");
    }
    // With it: TLS 1.3 on every connection mcr makes.
    let ca = ca.display().to_string();
    let env = with(&[("MCR_DATABASE_CA_FILE", &ca)]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start_on(&tmp.path().join("data"), &env);
    let (_, d) = srv.push_image("tls/app", "v1", 5);
    let r = srv.http("GET", &format!("/v2/tls/app/manifests/{d}"), &[], b"");
    assert_eq!(r.status, 200);
    let conns = pg.psql(
        "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'mcr'",
    );
    let lines: Vec<&str> = conns.lines().collect();
    assert!(!lines.is_empty(), "mcr holds connections");
    assert!(lines.iter().all(|l| *l == "t|TLSv1.3"), "every connection is TLS 1.3: {lines:?}");
}
