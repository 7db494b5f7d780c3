//! Tidy checks: the layering of ARCHITECTURE.md, held by grep.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

fn src(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(sub)
}

#[test]
fn core_layers_know_no_transport() {
    for layer in ["service", "policy", "auth", "audit", "gc", "db", "storage", "model"] {
        for f in rust_files(&src(layer)) {
            let text = std::fs::read_to_string(&f).unwrap();
            for banned in [
                "crate::oci",
                "crate::admin_api",
                "crate::http",
                "tiny_http",
                "rouille",
                "grpcio",
                "protobuf",
                "horrorshow",
            ] {
                assert!(!text.contains(banned), "{} uses {banned}", f.display());
            }
        }
    }
}

#[test]
fn frontends_go_through_the_service() {
    for frontend in ["oci", "admin_api", "http", "grpc", "cli"] {
        for f in rust_files(&src(frontend)) {
            let text = std::fs::read_to_string(&f).unwrap();
            for banned in ["crate::db", "crate::storage", "crate::gc", "rusqlite"] {
                assert!(!text.contains(banned), "{} uses {banned}", f.display());
            }
        }
    }
}

#[test]
fn only_db_opens_sqlite() {
    for layer in ["service", "policy", "auth", "gc", "storage", "model", "oci", "admin_api", "http", "bin"] {
        for f in rust_files(&src(layer)) {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(!text.contains("Connection::open"), "{} opens SQLite", f.display());
        }
    }
}

#[test]
fn sql_lives_in_db() {
    for f in rust_files(&src("")) {
        if f.starts_with(src("db")) || f.ends_with("bin/mcr.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for sql in ["SELECT ", "INSERT INTO", "DELETE FROM", "UPDATE "] {
            assert!(!text.contains(sql), "{} holds SQL ({sql})", f.display());
        }
    }
}

#[test]
fn every_file_says_what_it_is_for() {
    for f in rust_files(&src("")) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("//!"), "{} lacks a //! header", f.display());
    }
}
