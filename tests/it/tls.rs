//! TLS on the public listener: TLS 1.3 only, real certificates from a test
//! CA, checked with openssl s_client, curl and skopeo.

use crate::support::*;
use std::process::{Command, Stdio};

fn tls_server(certs: &Certs, listen: &str) -> Server {
    let (cert, key) = (certs.path("server.crt"), certs.path("server.key"));
    Server::start_args(&["--listen", listen, "--tls-cert", &cert, "--tls-key", &key])
}

fn s_client(srv: &Server, certs: &Certs, version: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &srv.host(),
            version,
            "-CAfile",
            &certs.path("ca.crt"),
            "-verify_return_error",
            "-alpn",
            "http/1.1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn tls13_only_with_a_real_certificate() {
    let certs = Certs::new();
    let srv = tls_server(&certs, "127.0.0.1:0");
    assert!(srv.log().contains("listening https="), "{}", srv.log());

    let (ok, text) = s_client(&srv, &certs, "-tls1_3");
    assert!(ok, "TLS 1.3 handshake: {text}");
    assert!(text.contains("TLSv1.3") && text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    let (ok, text) = s_client(&srv, &certs, "-tls1_2");
    assert!(!ok, "TLS 1.2 must be refused: {text}");

    // curl over TLS 1.3 with the test CA; refused with no CA.
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "-u",
            &srv.creds(),
            "--cacert",
            &certs.path("ca.crt"),
            &format!("https://{}/v2/", srv.host()),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("Docker-Distribution-API-Version: registry/2.0"));
    let out = Command::new("curl").args(["-s", &format!("https://{}/v2/", srv.host())]).output().unwrap();
    assert!(!out.status.success(), "an unknown CA is refused by the client");
    let out = Command::new("curl")
        .args([
            "-s",
            "--tls-max",
            "1.2",
            "--cacert",
            &certs.path("ca.crt"),
            &format!("https://{}/v2/", srv.host()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "curl limited to TLS 1.2 is refused");

    // Plain HTTP on the TLS port gets a clear answer, not a hang.
    let r = srv.http("GET", "/v2/", &[], b"");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("HTTPS"), "{}", r.text());
}

#[test]
fn big_blobs_and_skopeo_over_tls() {
    let certs = Certs::new();
    let srv = tls_server(&certs, "127.0.0.1:0");
    let host = srv.host();
    let tmp = tempfile::tempdir().unwrap();
    // 8 MiB up and down through the TLS relay, with curl.
    let data = bytes(77, 8 << 20);
    let d = sha256(&data);
    let f = tmp.path().join("blob");
    std::fs::write(&f, &data).unwrap();
    let ca = certs.path("ca.crt");
    let out = run(Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            &srv.creds(),
            "--cacert",
            &ca,
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", f.display()))
        .arg(format!("https://{host}/v2/tls/blobs/uploads/?digest={d}")));
    assert_eq!(out, "201");
    let back = tmp.path().join("back");
    run(Command::new("curl")
        .args(["-s", "-u", &srv.creds(), "--cacert", &ca, "-o"])
        .arg(&back)
        .arg(format!("https://{host}/v2/tls/blobs/{d}")));
    assert_eq!(sha256(&std::fs::read(&back).unwrap()), d);

    // skopeo verifies the certificate with the CA in --dest-cert-dir.
    let src = tmp.path().join("src");
    let mut layout = Layout::new(&src);
    let img = layout.image(Some("v1"), 51, 2, "amd64");
    let trust = certs.path("trust");
    run(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "-q", "--dest-creds", &srv.creds(), "--dest-cert-dir", &trust])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{host}/tls/img:v1")));
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--creds",
        &srv.creds(),
        "--cert-dir",
        &trust,
        &format!("docker://{host}/tls/img:v1"),
    ]));
    assert_eq!(raw.as_bytes(), layout.blob(&img.digest));
    // Without the CA, skopeo refuses the server.
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--creds", &srv.creds(), &format!("docker://{host}/tls/img:v1")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "refused for the certificate: {err}");
}

#[test]
fn non_loopback_needs_tls_and_bad_tls_files_are_clear_errors() {
    let certs = Certs::new();
    // With TLS, a wildcard address is allowed.
    let srv = tls_server(&certs, "0.0.0.0:0");
    let (ok, text) = s_client(&srv, &certs, "-tls1_3");
    assert!(ok, "{text}");
    drop(srv);
    let dir = tempfile::tempdir().unwrap();
    let mcr = env!("CARGO_BIN_EXE_mcr");
    let serve = |extra: &[&str]| {
        let out = Command::new(mcr)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{extra:?} must not start");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = serve(&["--tls-cert", &certs.path("server.crt")]);
    assert!(err.contains("must be set together"), "{err}");
    let err = serve(&["--tls-cert", "/nonexistent.pem", "--tls-key", &certs.path("server.key")]);
    assert!(err.contains("cannot read TLS certificate"), "{err}");
    let err = serve(&["--tls-cert", &certs.path("server.key"), "--tls-key", &certs.path("server.key")]);
    assert!(err.contains("no certificate") || err.contains("not valid PEM"), "{err}");
    let err = serve(&["--tls-cert", &certs.path("server.crt"), "--tls-key", &certs.path("ca.key")]);
    assert!(err.contains("do not form a usable pair"), "{err}");
}

/// Over TLS the web UI's cookies are `Secure` as well as `HttpOnly` and
/// `SameSite=Strict` (on a plain loopback listener Secure is relaxed:
/// `ui::login_sets_strict_cookies_and_a_new_session_id`).
#[test]
fn ui_cookies_are_secure_over_tls() {
    let certs = Certs::new();
    let srv = tls_server(&certs, "127.0.0.1:0");
    let jar = certs.dir.path().join("jar");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-i", "--cacert", &certs.path("ca.crt"), "-c"])
            .arg(&jar)
            .arg("-b")
            .arg(&jar)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let page = curl(&[&format!("https://{}/ui/login", srv.host())]);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let pre = page.lines().find(|l| l.starts_with("Set-Cookie: mcr_prelogin=")).expect("a pre-login cookie");
    assert!(pre.contains("; Secure") && pre.contains("HttpOnly") && pre.contains("SameSite=Strict"), "{pre}");
    let at = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = &page[at..at + page[at..].find('"').unwrap()];
    let form = format!("csrf={csrf}&username=admin&password={}", srv.admin);
    let r = curl(&["--data", &form, &format!("https://{}/ui/login", srv.host())]);
    assert!(r.starts_with("HTTP/1.1 303"), "{r}");
    for name in ["mcr_session=", "mcr_csrf="] {
        let c = r
            .lines()
            .find(|l| l.starts_with(&format!("Set-Cookie: {name}")))
            .unwrap_or_else(|| panic!("{name}: {r}"));
        assert!(c.contains("; Secure") && c.contains("HttpOnly") && c.contains("SameSite=Strict"), "{c}");
    }
    let home = curl(&[&format!("https://{}/ui/", srv.host())]);
    assert!(home.starts_with("HTTP/1.1 200") && home.contains(r#"id="whoami">admin<"#), "{home}");
}
