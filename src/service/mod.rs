//! The business logic every frontend calls: synchronous, transport-free.
//!
//! Invariant: every public function starts with `access::authorize` for the
//! action it performs, so no frontend can skip authentication or policy.
//! Bodies arrive as `&mut dyn Read`; nothing here knows HTTP or gRPC.

pub mod access;
pub mod admin;
pub mod audit;
pub mod blobs;
pub mod browse;
pub mod listing;
pub mod manifests;
pub mod policy;
pub mod session;
pub mod uploads;
pub mod users;

use crate::error::{Error, Result};
use crate::model::{Digest, RepoName};

/// One page of a lexically ordered listing; `next` is the `last` value for
/// the following page when there is one.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<String>,
    pub next: Option<String>,
}

pub fn parse_repo(s: &str) -> Result<RepoName> {
    RepoName::parse(s).map_err(Error::InvalidName)
}

pub fn parse_digest(s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(Error::InvalidDigest)
}
