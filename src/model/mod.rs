//! Parsed-once newtypes for what crosses the service boundary: repository
//! names, digests, references and media types.
//!
//! Invariant: a value of these types has been validated; code that holds a
//! `Digest` or a `RepoName` never checks it again and may use it in a path.

mod actor;
mod digest;
mod name;
mod scope;
mod secret;
mod time;
mod units;

pub use actor::{AccountType, Actor, Principal};
pub use digest::{from_hex, to_hex, Algorithm, Digest, Hasher};
pub use name::{Reference, RepoName, Tag};
pub use scope::{Grant, Scope};
pub use secret::{Credentials, Password, Token};
pub use time::{rfc3339, Clock, SystemClock};
pub use units::human_bytes;

/// Media types the registry treats specially.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

    /// Layers that clients never upload (Windows base layers and friends).
    pub fn is_non_distributable(media_type: &str) -> bool {
        media_type.contains(".nondistributable.") || media_type.contains(".foreign.")
    }

    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_LIST
    }

    pub fn is_known_manifest(media_type: &str) -> bool {
        matches!(media_type, OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST)
    }
}

/// What a request wants to do, in the policy's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    VersionCheck,
    Pull,
    Push,
    Delete,
    Catalog,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::VersionCheck => "version_check",
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Catalog => "catalog",
        }
    }
}
