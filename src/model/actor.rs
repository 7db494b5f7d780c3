//! Who acts: an authenticated principal, nobody yet, or mcr itself.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    Human,
    System,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Human => "human",
            AccountType::System => "system",
        }
    }
}

/// Who is asking.
#[derive(Clone, Debug)]
pub struct Principal {
    pub subject: String,
    pub username: String,
    pub roles: Vec<String>,
    pub account_type: AccountType,
    /// What the token it came with was granted; `None` for the user's full
    /// authority (passwords, tokens requested without a scope).
    pub scope: Option<std::sync::Arc<super::Scope>>,
}

/// Who a request acts as: nobody yet, an authenticated principal, or mcr
/// itself acting without a caller (offline `mcr` commands on the host,
/// start-up, the GC schedule). The gate in `service::access` is the one
/// place that decides what an actor may do.
#[derive(Clone, Debug)]
pub enum Actor {
    Anonymous,
    User(Principal),
    /// mcr itself; the name starts with `system:` (a username cannot hold
    /// a colon) and is what the audit log records.
    System(&'static str),
}

impl Actor {
    pub fn name(&self) -> &str {
        match self {
            Actor::Anonymous => "-",
            Actor::User(p) => &p.username,
            Actor::System(name) => name,
        }
    }
}
