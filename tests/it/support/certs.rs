//! Throwaway TLS certificates made with the openssl CLI.

#![allow(dead_code)]

use super::*;
use std::process::Command;
use tempfile::TempDir;

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
