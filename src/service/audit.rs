//! Reading the audit log (admin only): queries and chain verification.

use super::access::require_admin;
use crate::app::Ctx;
use crate::audit::{self, Verification};
use crate::db;
pub use crate::db::audit::AuditRow;
pub use crate::db::audit::Filter;
use crate::error::{Error, Result};

pub const MAX_LIMIT: usize = 1000;

pub fn query(ctx: &Ctx, filter: &Filter) -> Result<Vec<AuditRow>> {
    require_admin(ctx)?;
    // The host's own `mcr audit list` may read more at once than a client.
    let max = match ctx.actor {
        crate::model::Actor::System(_) => 100_000,
        _ => MAX_LIMIT,
    };
    if filter.limit == 0 || filter.limit > max {
        return Err(Error::BadRequest(format!("limit must be between 1 and {max}")));
    }
    ctx.app.audit.flush();
    ctx.app.db.read(|c| db::audit::query(c, filter))
}

pub fn verify(ctx: &Ctx) -> Result<Verification> {
    require_admin(ctx)?;
    ctx.app.audit.flush();
    audit::verify(&ctx.app.db)
}

/// The id of the newest event (0 for none), after flushing the queue.
pub fn head_id(ctx: &Ctx) -> Result<i64> {
    require_admin(ctx)?;
    ctx.app.audit.flush();
    Ok(ctx.app.db.read(db::audit::head)?.map_or(0, |(id, _)| id))
}

/// Whether the chain holds row `id` with `hash` (a checkpoint shipped off
/// the machine): `None` when it does, else why not.
pub fn holds(ctx: &Ctx, id: i64, hash: &str) -> Result<Option<String>> {
    require_admin(ctx)?;
    ctx.app.audit.flush();
    let found = ctx.app.db.read(|c| db::audit::hash_of(c, id))?;
    Ok(match found {
        Some(h) if h == hash => None,
        Some(_) => Some(format!("row {id} differs from the shipped checkpoint")),
        None => Some(format!("row {id} of the shipped checkpoint is missing: the log was cut")),
    })
}
