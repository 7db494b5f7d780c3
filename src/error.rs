//! The one service error every frontend maps to its own wire format.
//!
//! Invariant: each frontend has one exhaustive `match` over `Error` (no `_`
//! arm), so a new variant forces every frontend to decide how to show it.
//! IO errors enter as `Internal` with a context saying what failed; there
//! is deliberately no `From<io::Error>`.

use std::fmt;

/// What was not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Repository,
    Blob,
    Manifest,
    Upload,
    Route,
    Rule,
    User,
}

#[derive(Debug)]
pub enum Error {
    NotFound(What),
    InvalidName(String),
    InvalidDigest(String),
    InvalidManifest(String),
    ManifestTooLarge {
        limit: u64,
    },
    /// A request body (other than a manifest or blob) over its route's limit.
    BodyTooLarge {
        limit: u64,
    },
    /// A manifest references a blob or child manifest the repository lacks.
    ManifestBlobUnknown(String),
    InvalidUpload(String),
    InvalidPagination(String),
    InvalidSize(String),
    /// Any other malformed request parameter.
    BadRequest(String),
    DigestMismatch {
        expected: String,
        actual: String,
    },
    /// A chunk that does not start at the upload's current offset.
    UploadOutOfOrder {
        offset: u64,
    },
    /// A `Range` that the blob cannot satisfy.
    RangeNotSatisfiable {
        size: u64,
    },
    /// The request body ended before its declared length.
    BodyIncomplete(String),
    Unsupported(String),
    MethodNotAllowed,
    Unauthenticated,
    /// A scoped token used beyond its scope; `needed` is the scope to ask for.
    InsufficientScope {
        needed: Option<String>,
    },
    Denied(String),
    /// The request is valid but conflicts with work in progress (a busy upload).
    Busy(String),
    /// Too many failed logins from this peer or for this user.
    RateLimited {
        retry_after: i64,
    },
    /// A service mcr depends on (the identity service) cannot be reached.
    Unavailable(String),
    Internal(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(w) => write!(f, "{} not found", what_name(*w)),
            Error::InvalidName(m)
            | Error::InvalidDigest(m)
            | Error::InvalidManifest(m)
            | Error::InvalidUpload(m)
            | Error::InvalidPagination(m)
            | Error::InvalidSize(m)
            | Error::BadRequest(m)
            | Error::BodyIncomplete(m)
            | Error::Unsupported(m)
            | Error::Denied(m)
            | Error::Busy(m)
            | Error::Unavailable(m) => f.write_str(m),
            Error::ManifestTooLarge { limit } => {
                write!(f, "manifest is larger than the limit of {limit} bytes")
            }
            Error::BodyTooLarge { limit } => {
                write!(f, "request body is larger than the limit of {limit} bytes")
            }
            Error::ManifestBlobUnknown(d) => write!(f, "manifest references unknown blob {d}"),
            Error::DigestMismatch { expected, actual } => {
                write!(f, "digest mismatch: expected {expected}, content is {actual}")
            }
            Error::UploadOutOfOrder { offset } => {
                write!(f, "chunk does not start at the upload's current offset {offset}")
            }
            Error::RangeNotSatisfiable { size } => {
                write!(f, "requested range not satisfiable for a blob of {size} bytes")
            }
            Error::MethodNotAllowed => f.write_str("method not allowed on this resource"),
            Error::RateLimited { retry_after } => {
                write!(f, "too many failed logins; retry in {retry_after} s")
            }
            Error::Unauthenticated => f.write_str("authentication required"),
            Error::InsufficientScope { needed: Some(s) } => write!(f, "the token's scope does not cover {s}"),
            Error::InsufficientScope { needed: None } => {
                f.write_str("the token's scope does not cover this request")
            }
            Error::Internal(_) => f.write_str("internal error"),
        }
    }
}

pub fn what_name(w: What) -> &'static str {
    match w {
        What::Repository => "repository",
        What::Blob => "blob",
        What::Manifest => "manifest",
        What::Upload => "upload",
        What::Route => "route",
        What::Rule => "policy rule",
        What::User => "user",
    }
}

/// Wraps any error as `Internal` with a note on what was being done.
pub trait Context<T> {
    fn context(self, what: &'static str) -> Result<T>;
}

impl<T, E: Into<anyhow::Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: &'static str) -> Result<T> {
        self.map_err(|e| Error::Internal(e.into().context(what)))
    }
}
impl std::error::Error for Error {}
