//! Reading the audit log (admin only): queries and chain verification.

use crate::app::Ctx;
use crate::audit::{self, Verification};
use crate::db;
pub use crate::db::audit::AuditRow;
pub use crate::db::audit::Filter;
use crate::error::{Error, Result};

pub const MAX_LIMIT: usize = 1000;

pub fn query(ctx: &Ctx, filter: &Filter) -> Result<Vec<AuditRow>> {
    super::policy::require_admin(ctx)?;
    if filter.limit == 0 || filter.limit > MAX_LIMIT {
        return Err(Error::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    ctx.app.audit.flush();
    ctx.app.db.read(|c| db::audit::query(c, filter))
}

pub fn verify(ctx: &Ctx) -> Result<Verification> {
    super::policy::require_admin(ctx)?;
    ctx.app.audit.flush();
    audit::verify(&ctx.app.db)
}

/// The id of the newest event (0 for none), after flushing the queue.
pub fn head_id(ctx: &Ctx) -> Result<i64> {
    super::policy::require_admin(ctx)?;
    ctx.app.audit.flush();
    Ok(ctx.app.db.read(db::audit::head)?.map_or(0, |(id, _)| id))
}
