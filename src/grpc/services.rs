//! The four gRPC services: each method converts its request, names what it
//! needs, and hands the service call to the interceptor chain.

use super::convert;
use super::mcr as pb;
use super::mcr_grpc;
use super::{Chain, Need};
use crate::error::Error;
use crate::model::{Reference, Tag};
use crate::service::{self, audit::Filter, parse_repo};
use futures_util::SinkExt as _;
use grpcio::{RpcContext, ServerStreamingSink, UnarySink, WriteFlags};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often an open audit tail checks its caller again.
const RECHECK: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Admin(pub Chain);
#[derive(Clone)]
pub struct Registry(pub Chain);
#[derive(Clone)]
pub struct Policy(pub Chain);
#[derive(Clone)]
pub struct Audit(pub Chain, pub Tails);

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl mcr_grpc::AdminService for Admin {
    fn health(&mut self, ctx: RpcContext, _: pb::Empty, sink: UnarySink<pb::HealthReply>) {
        self.0.unary(&ctx, "AdminService/Health", Need::Nobody, sink, |_| {
            let mut m = pb::HealthReply::new();
            m.set_status("ok".into());
            Ok(m)
        });
    }
    fn status(&mut self, ctx: RpcContext, _: pb::Empty, sink: UnarySink<pb::StatusReply>) {
        self.0.unary(&ctx, "AdminService/Status", Need::User, sink, |c| {
            service::admin::status(c).map(|s| convert::status(&s))
        });
    }
    fn trigger_gc(&mut self, ctx: RpcContext, _: pb::Empty, sink: UnarySink<pb::GcTriggerReply>) {
        self.0.unary(&ctx, "AdminService/TriggerGc", Need::Admin, sink, |c| {
            let id = service::admin::gc_trigger(c)?;
            let mut m = pb::GcTriggerReply::new();
            m.set_run_id(id);
            Ok(m)
        });
    }
    fn get_gc_status(&mut self, ctx: RpcContext, _: pb::Empty, sink: UnarySink<pb::GcStatus>) {
        self.0.unary(&ctx, "AdminService/GetGcStatus", Need::Admin, sink, |c| {
            service::admin::gc_status(c).map(|s| convert::gc_status(&s))
        });
    }
    fn reconcile(&mut self, ctx: RpcContext, _: pb::Empty, sink: UnarySink<pb::ReconcileReply>) {
        self.0.unary(&ctx, "AdminService/Reconcile", Need::Admin, sink, |c| {
            service::admin::reconcile(c).map(|r| convert::reconcile(&r))
        });
    }
    fn snapshot(&mut self, ctx: RpcContext, _: pb::Empty, sink: UnarySink<pb::SnapshotReply>) {
        self.0.unary(&ctx, "AdminService/Snapshot", Need::Admin, sink, |c| {
            service::admin::snapshot(c).map(|s| convert::snapshot(&s))
        });
    }
}

impl mcr_grpc::RegistryService for Registry {
    fn list_repositories(
        &mut self,
        ctx: RpcContext,
        req: pb::ListRepositoriesRequest,
        sink: UnarySink<pb::ListRepositoriesReply>,
    ) {
        self.0.unary(&ctx, "RegistryService/ListRepositories", Need::Admin, sink, move |c| {
            let n = if req.get_n() == 0 { 100 } else { req.get_n() as usize };
            let page = service::admin::list_repositories(c, n, opt(req.get_last()).as_deref())?;
            let mut m = pb::ListRepositoriesReply::new();
            m.set_repositories(page.repositories.iter().map(convert::repo_summary).collect());
            m.set_next(page.next.unwrap_or_default());
            Ok(m)
        });
    }
    fn get_repository(
        &mut self,
        ctx: RpcContext,
        req: pb::RepositoryRequest,
        sink: UnarySink<pb::RepositoryReply>,
    ) {
        self.0.unary(&ctx, "RegistryService/GetRepository", Need::Admin, sink, move |c| {
            let d = service::admin::repository(c, &parse_repo(req.get_name())?)?;
            let mut m = pb::RepositoryReply::new();
            m.set_summary(convert::repo_summary(&d.summary));
            m.set_tags(d.tag_list.iter().map(convert::tag_info).collect());
            Ok(m)
        });
    }
    fn delete_repository(&mut self, ctx: RpcContext, req: pb::RepositoryRequest, sink: UnarySink<pb::Empty>) {
        self.0.unary(&ctx, "RegistryService/DeleteRepository", Need::Admin, sink, move |c| {
            service::admin::delete_repository(c, &parse_repo(req.get_name())?).map(|_| pb::Empty::new())
        });
    }
    fn delete_tag(&mut self, ctx: RpcContext, req: pb::DeleteTagRequest, sink: UnarySink<pb::Empty>) {
        self.0.unary(&ctx, "RegistryService/DeleteTag", Need::Admin, sink, move |c| {
            let tag = Tag::parse(req.get_tag()).map_err(Error::BadRequest)?;
            service::admin::delete_tag(c, &parse_repo(req.get_name())?, tag.as_str())
                .map(|_| pb::Empty::new())
        });
    }
    fn get_manifest(
        &mut self,
        ctx: RpcContext,
        req: pb::ManifestRequest,
        sink: UnarySink<pb::ManifestReply>,
    ) {
        self.0.unary(&ctx, "RegistryService/GetManifest", Need::Admin, sink, move |c| {
            let reference = Reference::parse(req.get_reference()).map_err(Error::BadRequest)?;
            service::admin::manifest(c, &parse_repo(req.get_name())?, &reference)
                .map(|d| convert::manifest(&d))
        });
    }
}

impl mcr_grpc::PolicyService for Policy {
    fn list(&mut self, ctx: RpcContext, _: pb::Empty, sink: UnarySink<pb::RuleList>) {
        self.0.unary(&ctx, "PolicyService/List", Need::Admin, sink, |c| {
            let mut m = pb::RuleList::new();
            m.set_rules(service::policy::list(c)?.iter().map(convert::rule_to_pb).collect());
            Ok(m)
        });
    }
    fn get(&mut self, ctx: RpcContext, req: pb::RuleId, sink: UnarySink<pb::Rule>) {
        self.0.unary(&ctx, "PolicyService/Get", Need::Admin, sink, move |c| {
            service::policy::get(c, req.get_id()).map(|r| convert::rule_to_pb(&r))
        });
    }
    fn create(&mut self, ctx: RpcContext, req: pb::Rule, sink: UnarySink<pb::Rule>) {
        self.0.unary(&ctx, "PolicyService/Create", Need::Admin, sink, move |c| {
            service::policy::create(c, &convert::rule_from_pb(&req)?).map(|r| convert::rule_to_pb(&r))
        });
    }
    fn update(&mut self, ctx: RpcContext, req: pb::UpdateRuleRequest, sink: UnarySink<pb::Rule>) {
        self.0.unary(&ctx, "PolicyService/Update", Need::Admin, sink, move |c| {
            let rule = convert::rule_from_pb(req.get_rule())?;
            service::policy::update(c, req.get_id(), &rule).map(|r| convert::rule_to_pb(&r))
        });
    }
    fn delete(&mut self, ctx: RpcContext, req: pb::RuleId, sink: UnarySink<pb::Empty>) {
        self.0.unary(&ctx, "PolicyService/Delete", Need::Admin, sink, move |c| {
            service::policy::delete(c, req.get_id()).map(|_| pb::Empty::new())
        });
    }
    fn set_enabled(&mut self, ctx: RpcContext, req: pb::SetEnabledRequest, sink: UnarySink<pb::Rule>) {
        self.0.unary(&ctx, "PolicyService/SetEnabled", Need::Admin, sink, move |c| {
            service::policy::set_enabled(c, req.get_id(), req.get_enabled()).map(|r| convert::rule_to_pb(&r))
        });
    }
    fn evaluate(&mut self, ctx: RpcContext, req: pb::EvaluateRequest, sink: UnarySink<pb::Decision>) {
        self.0.unary(&ctx, "PolicyService/Evaluate", Need::Admin, sink, move |c| {
            let repo = opt(req.get_repository()).map(|r| parse_repo(&r)).transpose()?;
            let who = crate::policy::Principal {
                subject: opt(req.get_subject()).unwrap_or_else(|| req.get_username().to_string()),
                username: req.get_username().to_string(),
                roles: req.get_roles().to_vec(),
                account_type: convert::account_type(req.get_account_type())?,
                scope: None,
            };
            let action = convert::action(req.get_action())?;
            service::policy::explain(c, &who, action, repo.as_ref()).map(|d| convert::decision(&d))
        });
    }
}

/// Open audit tails, so shutdown can end them.
#[derive(Clone, Default)]
pub struct Tails(Arc<Mutex<Vec<Arc<AtomicBool>>>>);

impl Tails {
    pub fn stop_all(&self) {
        for f in self.0.lock().iter() {
            f.store(true, Ordering::SeqCst);
        }
    }

    /// Registers a tail's stop flag; it leaves the list when the returned
    /// entry drops, as the tail ends.
    fn enter(&self) -> TailEntry {
        let stop = Arc::new(AtomicBool::new(false));
        self.0.lock().push(stop.clone());
        TailEntry { tails: self.clone(), stop }
    }
}

struct TailEntry {
    tails: Tails,
    stop: Arc<AtomicBool>,
}

impl Drop for TailEntry {
    fn drop(&mut self) {
        self.tails.0.lock().retain(|f| !Arc::ptr_eq(f, &self.stop));
    }
}

impl mcr_grpc::AuditService for Audit {
    fn query(&mut self, ctx: RpcContext, req: pb::AuditQuery, sink: UnarySink<pb::AuditEvents>) {
        self.0.unary(&ctx, "AuditService/Query", Need::Admin, sink, move |c| {
            let filter = Filter {
                since: (req.get_since() != 0).then_some(req.get_since()),
                until: (req.get_until() != 0).then_some(req.get_until()),
                event_type: opt(req.get_event_type()),
                actor: opt(req.get_actor()),
                repository: opt(req.get_repository()),
                after_id: (req.get_after_id() != 0).then_some(req.get_after_id()),
                limit: if req.get_limit() == 0 { 100 } else { req.get_limit() as usize },
            };
            let mut m = pb::AuditEvents::new();
            m.set_events(service::audit::query(c, &filter)?.iter().map(convert::audit_event).collect());
            Ok(m)
        });
    }
    fn verify(&mut self, ctx: RpcContext, _: pb::Empty, sink: UnarySink<pb::Verification>) {
        self.0.unary(&ctx, "AuditService/Verify", Need::Admin, sink, |c| {
            let v = service::audit::verify(c)?;
            let mut m = pb::Verification::new();
            m.set_rows(v.rows);
            m.set_first_broken(v.first_broken.unwrap_or(0));
            m.set_reason(v.reason.unwrap_or_default());
            Ok(m)
        });
    }

    /// Streams events written after the call starts, on a thread of its own
    /// (a tail lives long; it must not hold a pool worker or a CQ thread).
    fn tail(&mut self, ctx: RpcContext, req: pb::TailRequest, mut sink: ServerStreamingSink<pb::AuditEvent>) {
        let creds = super::credentials(&ctx);
        let client = self.0.peer(&ctx.peer());
        let peer = client.map_or_else(|| ctx.peer(), |a| a.to_string());
        let app = self.0.app().clone();
        let entry = self.1.enter();
        let spawned = std::thread::Builder::new().name("grpc-tail".into()).spawn(move || {
            let stop = &entry.stop;
            let req_id = "tail";
            let mut c =
                crate::app::Ctx { app: &app, actor: crate::model::Actor::Anonymous, req_id, peer: client };
            match super::admit(&c, creds.as_deref(), Need::Admin) {
                Ok(a) => c.actor = a,
                Err(e) => {
                    let _ = futures_executor::block_on(sink.fail(super::status_of(&e)));
                    stop.store(true, Ordering::SeqCst);
                    return;
                }
            }
            log::info!("grpc tail started user={} peer={peer}", c.actor.name());
            let mut after = service::audit::head_id(&c).unwrap_or(0);
            let mut checked = std::time::Instant::now();
            'outer: while !stop.load(Ordering::SeqCst) {
                // The stream outlives its first check: its caller is checked
                // again, so a disabled or re-keyed admin stops receiving.
                if checked.elapsed() >= RECHECK {
                    match super::admit(&c, creds.as_deref(), Need::Admin) {
                        Ok(a) => c.actor = a,
                        // A throttled or unreachable identity check says
                        // nothing about the caller: try again next time.
                        Err(e @ (Error::RateLimited { .. } | Error::Unavailable(_) | Error::Internal(_))) => {
                            log::warn!("grpc tail could not check its caller peer={peer} err={e}");
                        }
                        Err(e) => {
                            log::info!("grpc tail ended: caller no longer admitted peer={peer} err={e}");
                            stop.store(true, Ordering::SeqCst);
                            let _ = futures_executor::block_on(sink.fail(super::status_of(&e)));
                            return;
                        }
                    }
                    checked = std::time::Instant::now();
                }
                let filter = Filter {
                    event_type: opt(req.get_event_type()),
                    actor: opt(req.get_actor()),
                    repository: opt(req.get_repository()),
                    after_id: Some(after),
                    limit: 100,
                    ..Default::default()
                };
                let rows = match service::audit::query(&c, &filter) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = futures_executor::block_on(sink.fail(super::status_of(&e)));
                        stop.store(true, Ordering::SeqCst);
                        log::info!("grpc tail ended peer={peer} err={e}");
                        return;
                    }
                };
                if rows.is_empty() {
                    // Catch up on ids the filter skipped, then wait.
                    after = service::audit::head_id(&c).unwrap_or(after).max(after);
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                for r in rows {
                    after = r.id;
                    let sent = futures_executor::block_on(
                        sink.send((convert::audit_event(&r), WriteFlags::default())),
                    );
                    if sent.is_err() {
                        break 'outer; // the client went away
                    }
                }
            }
            stop.store(true, Ordering::SeqCst);
            let _ = futures_executor::block_on(sink.close());
            log::info!("grpc tail ended peer={peer}");
        });
        if let Err(e) = spawned {
            log::error!("cannot spawn grpc tail thread err={e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    #[test]
    fn an_ended_tail_leaves_no_stop_flag_behind() {
        let tails = super::Tails::default();
        let (a, b) = (tails.enter(), tails.enter());
        assert_eq!(tails.0.lock().len(), 2);
        drop(a);
        assert_eq!(tails.0.lock().len(), 1, "the ended tail's flag is gone at once");
        tails.stop_all();
        assert!(b.stop.load(Ordering::SeqCst), "shutdown still reaches the live tail");
        drop(b);
        assert!(tails.0.lock().is_empty());
    }
}
