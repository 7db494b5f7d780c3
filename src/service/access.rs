//! The single gate for authentication and policy.
//!
//! Invariant: every service entry point calls `authorize` first.  No identity
//! provider exists yet, so every caller is `Actor::Anonymous` and is allowed;
//! the identity and policy work plugs its decision in here and nowhere else.

use crate::app::Ctx;
use crate::error::Result;
use crate::model::{Action, Actor, RepoName};

pub fn authorize(ctx: &Ctx, action: Action, repo: Option<&RepoName>) -> Result<()> {
    match ctx.actor {
        Actor::Anonymous => {
            log::debug!(
                "access allowed req={} actor=- action={} repo={} reason=no-identity-provider",
                ctx.req_id,
                action.as_str(),
                repo.map(|r| r.as_str()).unwrap_or("-")
            );
            Ok(())
        }
    }
}
