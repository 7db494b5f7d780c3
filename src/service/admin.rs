//! Operations of the admin API: garbage collection and reconciliation
//! (admin only).

use crate::app::Ctx;
use crate::error::Result;
use crate::gc::{self, GcStatus, ReconcileReport};

pub fn gc_trigger(ctx: &Ctx) -> Result<u64> {
    let who = super::policy::require_admin(ctx)?;
    gc::trigger(ctx.app, &who.username)
}

pub fn gc_status(ctx: &Ctx) -> Result<GcStatus> {
    super::policy::require_admin(ctx)?;
    Ok(ctx.app.gc.status())
}

pub fn reconcile(ctx: &Ctx) -> Result<ReconcileReport> {
    let who = super::policy::require_admin(ctx)?;
    gc::reconcile(ctx.app, &who.username, false)
}
