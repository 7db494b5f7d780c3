//! mcrctl's output: the same structures from both transports, printed as
//! aligned tables or as stable JSON (`--json`).

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct StatusOut {
    pub version: String,
    pub uptime_secs: i64,
    pub repositories: i64,
    pub manifests: i64,
    pub tags: i64,
    pub blobs: i64,
    pub storage_bytes: i64,
    pub gc_running: bool,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct RepoRow {
    pub name: String,
    pub tags: i64,
    pub manifests: i64,
    pub size_bytes: i64,
    pub created_at: i64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct TagRow {
    pub name: String,
    pub digest: String,
    pub media_type: String,
    pub updated_at: i64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct RepoDetail {
    pub repository: RepoRow,
    pub tags: Vec<TagRow>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
pub struct PolicyTest {
    pub username: String,
    pub roles: Vec<String>,
    pub account_type: String,
    pub action: String,
    pub repository: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct DeciderOut {
    pub id: i64,
    pub priority: i64,
    pub effect: String,
    pub description: String,
    pub builtin: bool,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct DecisionOut {
    pub allowed: bool,
    pub reason: String,
    pub rules: Vec<DeciderOut>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Default, Clone)]
pub struct AuditFilter {
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub repository: Option<String>,
    pub since: Option<i64>,
    pub after_id: Option<i64>,
    pub limit: usize,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct AuditOut {
    pub id: i64,
    pub time: i64,
    pub event_type: String,
    pub actor: String,
    pub repository: String,
    pub reference: String,
    pub outcome: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct VerifyOut {
    pub rows: u64,
    pub first_broken: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct GcOut {
    pub running: bool,
    pub last_run_id: Option<u64>,
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub manifests_removed: u64,
    pub errors: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct ReconcileOut {
    pub orphan_files_removed: u64,
    pub orphan_bytes_freed: u64,
    pub missing_files: Vec<String>,
    pub uploads_purged: u64,
    pub staging_files_removed: u64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct SnapshotOut {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

pub use crate::model::human_bytes;

/// Unix seconds as local ISO time (the TZ offset from the environment's
/// `TZ` is not consulted: UTC, marked Z, is what every host agrees on).
pub fn iso(t: i64) -> String {
    crate::model::rfc3339(t)
}

/// An aligned table: header row, then rows; columns padded to the widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(
            table(&["NAME", "N"], &[vec!["a".into(), "1".into()], vec!["long-name".into(), "22".into()]]),
            "NAME       N\na          1\nlong-name  22\n"
        );
    }
}
