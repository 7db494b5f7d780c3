//! mcrctl internals: one command layer over a `Client` trait with two
//! transports (REST over `/v1`, gRPC), so both give the same output for the
//! same command.
//!
//! Invariant: commands print only through `types` (aligned tables or
//! stable JSON); every failure is a `CliError` with a documented exit code.

pub mod commands;
pub mod grpc;
pub mod rest;
pub mod types;

use crate::policy::Rule;
use types::*;

/// Exit codes (documented in the README).
#[derive(Debug)]
pub enum CliError {
    /// 3: the server cannot be reached.
    Unreachable(String),
    /// 4: the TLS handshake failed (wrong CA, protocol).
    Tls(String),
    /// 5: no token, or the token was refused (expired, revoked).
    Unauthenticated(String),
    /// 6: authenticated, but not allowed.
    Denied(String),
    /// 7: the thing named does not exist.
    NotFound(String),
    /// 8: the server refused the input.
    Invalid(String),
    /// 9: the server is busy with it already (GC running).
    Conflict(String),
    /// 1: anything else.
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Other(_) => 1,
            CliError::Unreachable(_) => 3,
            CliError::Tls(_) => 4,
            CliError::Unauthenticated(_) => 5,
            CliError::Denied(_) => 6,
            CliError::NotFound(_) => 7,
            CliError::Invalid(_) => 8,
            CliError::Conflict(_) => 9,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, m) = match self {
            CliError::Unreachable(m) => ("server unreachable", m),
            CliError::Tls(m) => ("TLS failure", m),
            CliError::Unauthenticated(m) => ("not authenticated", m),
            CliError::Denied(m) => ("permission denied", m),
            CliError::NotFound(m) => ("not found", m),
            CliError::Invalid(m) => ("invalid argument", m),
            CliError::Conflict(m) => ("conflict", m),
            CliError::Other(m) => ("error", m),
        };
        write!(f, "{what}: {m}")
    }
}

pub type R<T> = Result<T, CliError>;

/// What a transport must do; both return the same `types`.
pub trait Client {
    fn status(&self) -> R<StatusOut>;
    fn repo_list(&self) -> R<Vec<RepoRow>>;
    fn repo_show(&self, name: &str) -> R<RepoDetail>;
    fn repo_delete(&self, name: &str) -> R<()>;
    fn tag_delete(&self, name: &str, tag: &str) -> R<()>;
    fn policy_list(&self) -> R<Vec<Rule>>;
    fn policy_get(&self, id: i64) -> R<Rule>;
    fn policy_create(&self, r: &Rule) -> R<Rule>;
    fn policy_update(&self, id: i64, r: &Rule) -> R<Rule>;
    fn policy_delete(&self, id: i64) -> R<()>;
    fn policy_set_enabled(&self, id: i64, on: bool) -> R<Rule>;
    fn policy_test(&self, q: &PolicyTest) -> R<DecisionOut>;
    fn audit_query(&self, f: &AuditFilter) -> R<Vec<AuditOut>>;
    fn audit_verify(&self) -> R<VerifyOut>;
    fn gc_trigger(&self) -> R<u64>;
    fn gc_status(&self) -> R<GcOut>;
    fn reconcile(&self) -> R<ReconcileOut>;
    fn snapshot(&self) -> R<SnapshotOut>;
}

/// Where the token comes from: the flag, `MCR_TOKEN`, or the file `login` saved.
pub fn token_file() -> std::path::PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    base.join("mcrctl").join("token")
}

pub use crate::outbound::tls13_provider;
