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

/// The Rust files of a folder under `src/`, or the one file it names.
fn files(sub: &str) -> Vec<PathBuf> {
    let p = src(sub);
    if p.is_dir() {
        rust_files(&p)
    } else {
        vec![p]
    }
}

/// Rust files under `src/` outside the folder `sub`.
fn outside(sub: &str) -> Vec<PathBuf> {
    rust_files(&src("")).into_iter().filter(|f| !f.starts_with(src(sub))).collect()
}

#[test]
fn core_layers_know_no_transport() {
    for layer in ["service", "policy", "auth", "audit", "gc", "db", "storage", "model", "config.rs", "app.rs"]
    {
        for f in files(layer) {
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
    for frontend in ["oci", "admin_api", "http", "grpc", "cli", "ui"] {
        for f in rust_files(&src(frontend)) {
            let text = std::fs::read_to_string(&f).unwrap();
            for banned in ["crate::db", "crate::storage", "crate::gc", "rusqlite"] {
                assert!(!text.contains(banned), "{} uses {banned}", f.display());
            }
        }
    }
}

#[test]
fn only_db_knows_sqlite() {
    for f in outside("db") {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains("rusqlite"), "{} uses rusqlite", f.display());
        assert!(!text.contains("Connection::open"), "{} opens SQLite", f.display());
    }
}

/// What `db` hands out is its own: no public item of `db` (a function's
/// signature, a re-export, an alias, a field) names a rusqlite type, so a
/// second engine changes `db/` and nothing else.
#[test]
fn db_hands_out_no_sqlite_types() {
    for f in rust_files(&src("db")) {
        let text = std::fs::read_to_string(&f).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if !(t.starts_with("pub ") || t.starts_with("pub(crate) ")) {
                continue;
            }
            // A signature runs to its body's opening brace, or to the end
            // of a one-line item.
            let mut sig = String::new();
            for l in &lines[i..] {
                sig.push_str(l);
                sig.push(' ');
                let e = l.trim_end();
                if l.contains('{') || e.ends_with(';') || (e.ends_with(',') && !e.contains('(')) {
                    break;
                }
            }
            let sig = sig.split('{').next().unwrap();
            for banned in ["rusqlite", "Connection", "Transaction", "Statement", "Row<", "&Row"] {
                assert!(
                    !sig.contains(banned),
                    "{}:{} hands out a SQLite type ({banned}): {}",
                    f.display(),
                    i + 1,
                    sig.trim()
                );
            }
        }
    }
}

#[test]
fn sql_lives_in_db() {
    for f in outside("db") {
        let text = std::fs::read_to_string(&f).unwrap();
        for sql in ["SELECT ", "INSERT INTO", "DELETE FROM", "UPDATE ", "PRAGMA "] {
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

/// The gates of `service::access`; a service entry point's first statement
/// is one of them.
const GATES: &[&str] =
    &["authorize(ctx,", "require_admin(ctx)", "require_user(ctx)", "require_system(ctx)", "public(ctx)"];

/// Public functions of `service` that are not entry points: they take no
/// caller and touch no state.
const NOT_ENTRY_POINTS: &[&str] = &[
    "parse_repo",   // input → RepoName
    "parse_digest", // input → Digest
    "mark_started", // records the process start time, at start-up
];

/// Every public function of `service` (outside `access`, which defines the
/// gates) begins with a gate, so no frontend can reach state unchecked.
#[test]
fn every_service_function_starts_at_the_gate() {
    let mut checked = 0;
    for f in files("service") {
        if f.ends_with("access.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("pub fn ").or_else(|| line.strip_prefix("pub(crate) fn "))
            else {
                continue;
            };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if NOT_ENTRY_POINTS.contains(&name.as_str()) {
                continue;
            }
            // The body starts after the line that ends the signature.
            let open = (i..lines.len()).find(|&j| lines[j].trim_end().ends_with('{')).unwrap();
            let first = lines[open + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("//"))
                .unwrap_or("");
            let first = first.trim_start_matches("super::").trim_start_matches("access::");
            assert!(
                GATES.iter().any(|g| first.starts_with(g)),
                "{}:{}: pub fn {name} does not begin with a gate of service::access (begins: {first:?})",
                f.display(),
                i + 1
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} service functions found: is the scan still reading them?");
}

/// Request input is read through `http` (form_urlencoded, cookie, the
/// credentials parser), never decoded by hand in a frontend or the service.
#[test]
fn request_input_is_parsed_in_http() {
    for layer in ["oci", "admin_api", "grpc", "service", "router.rs", "ui"] {
        for f in files(layer) {
            let text = std::fs::read_to_string(&f).unwrap();
            for banned in [
                "base64::",
                "split('&')",
                "percent_decode",
                "req.header(\"Authorization\")",
                "req.header(\"Cookie\")",
            ] {
                assert!(!text.contains(banned), "{} decodes request input by hand ({banned})", f.display());
            }
        }
    }
}
