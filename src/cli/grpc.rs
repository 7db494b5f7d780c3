//! The gRPC transport: the generated clients, with the token in the
//! `authorization` metadata; TLS 1.3 (ALPN h2) when a CA is given.

use super::types::*;
use super::{CliError, Client, R};
use crate::grpc::mcr as pb;
use crate::grpc::mcr_grpc as rpc;
use crate::policy::{Effect, Rule};
use grpcio::{CallOption, ChannelBuilder, Environment, MetadataBuilder, RpcStatusCode};
use std::sync::Arc;
use std::time::Duration;

pub struct Grpc {
    admin: rpc::AdminServiceClient,
    registry: rpc::RegistryServiceClient,
    policy: rpc::PolicyServiceClient,
    audit: rpc::AuditServiceClient,
    token: Option<String>,
}

fn map(e: grpcio::Error) -> CliError {
    match e {
        grpcio::Error::RpcFailure(s) => {
            let m = s.message().to_string();
            match s.code() {
                RpcStatusCode::UNAUTHENTICATED => CliError::Unauthenticated(m),
                RpcStatusCode::PERMISSION_DENIED => CliError::Denied(m),
                RpcStatusCode::NOT_FOUND => CliError::NotFound(m),
                RpcStatusCode::INVALID_ARGUMENT | RpcStatusCode::OUT_OF_RANGE => CliError::Invalid(m),
                RpcStatusCode::ABORTED => CliError::Conflict(m),
                RpcStatusCode::UNAVAILABLE
                    if m.to_lowercase().contains("ssl") || m.to_lowercase().contains("handshake") =>
                {
                    CliError::Tls(m)
                }
                RpcStatusCode::UNAVAILABLE | RpcStatusCode::DEADLINE_EXCEEDED => CliError::Unreachable(m),
                _ => CliError::Other(m),
            }
        }
        other => CliError::Other(other.to_string()),
    }
}

impl Grpc {
    pub fn new(addr: &str, token: Option<String>, ca_pem: Option<Vec<u8>>) -> R<Grpc> {
        let env = Arc::new(Environment::new(1));
        let builder = ChannelBuilder::new(env);
        let ch = match ca_pem {
            Some(ca) => {
                let creds = grpcio::ChannelCredentialsBuilder::new().root_cert(ca).build();
                builder.set_credentials(creds).connect(addr)
            }
            None => builder.connect(addr),
        };
        Ok(Grpc {
            admin: rpc::AdminServiceClient::new(ch.clone()),
            registry: rpc::RegistryServiceClient::new(ch.clone()),
            policy: rpc::PolicyServiceClient::new(ch.clone()),
            audit: rpc::AuditServiceClient::new(ch),
            token,
        })
    }

    fn opt(&self) -> R<CallOption> {
        let t = self.token.as_ref().ok_or_else(|| {
            CliError::Unauthenticated("no token: use --token, MCR_TOKEN or `mcrctl login`".into())
        })?;
        let mut md = MetadataBuilder::new();
        md.add_str("authorization", &format!("Bearer {t}")).map_err(|e| CliError::Invalid(e.to_string()))?;
        Ok(CallOption::default().headers(md.build()).timeout(Duration::from_secs(60)))
    }
}

fn rule_to_pb(r: &Rule) -> pb::Rule {
    let enum_str = |v: serde_json::Value| v.as_str().unwrap_or("").to_string();
    let mut m = pb::Rule::new();
    m.set_id(r.id);
    m.set_priority(r.priority);
    m.set_description(r.description.clone());
    m.set_effect(if r.effect == Effect::Allow { "allow".into() } else { "deny".into() });
    m.set_actions(r.actions.iter().map(|a| enum_str(serde_json::to_value(a).unwrap_or_default())).collect());
    m.set_repositories(r.repositories.clone().into());
    m.set_subjects(r.subjects.clone().into());
    m.set_usernames(r.usernames.clone().into());
    m.set_roles(r.roles.clone().into());
    m.set_account_types(r.account_types.iter().map(|a| a.as_str().to_string()).collect());
    m.set_enabled(r.enabled);
    m
}

fn rule_from_pb(m: &pb::Rule) -> R<Rule> {
    let v = serde_json::json!({
        "id": m.get_id(), "priority": m.get_priority(), "description": m.get_description(),
        "effect": m.get_effect(), "actions": m.get_actions(), "repositories": m.get_repositories(),
        "subjects": m.get_subjects(), "usernames": m.get_usernames(), "roles": m.get_roles(),
        "account_types": m.get_account_types(), "enabled": m.get_enabled(),
    });
    serde_json::from_value(v).map_err(|e| CliError::Other(format!("unexpected rule: {e}")))
}

fn repo_row(r: &pb::RepoSummary) -> RepoRow {
    RepoRow {
        name: r.get_name().to_string(),
        tags: r.get_tags(),
        manifests: r.get_manifests(),
        size_bytes: r.get_size_bytes(),
        created_at: r.get_created_at(),
    }
}

impl Client for Grpc {
    fn status(&self) -> R<StatusOut> {
        let s = self.admin.status_opt(&pb::Empty::new(), self.opt()?).map_err(map)?;
        let c = s.get_counts();
        Ok(StatusOut {
            version: s.get_version().to_string(),
            uptime_secs: s.get_uptime_secs(),
            repositories: c.get_repositories(),
            manifests: c.get_manifests(),
            tags: c.get_tags(),
            blobs: c.get_blobs(),
            storage_bytes: c.get_storage_bytes(),
            gc_running: s.get_gc().get_running(),
        })
    }

    fn repo_list(&self) -> R<Vec<RepoRow>> {
        let mut out = Vec::new();
        let mut req = pb::ListRepositoriesRequest::new();
        req.set_n(1000);
        loop {
            let r = self.registry.list_repositories_opt(&req, self.opt()?).map_err(map)?;
            out.extend(r.get_repositories().iter().map(repo_row));
            if r.get_next().is_empty() {
                return Ok(out);
            }
            req.set_last(r.get_next().to_string());
        }
    }

    fn repo_show(&self, name: &str) -> R<RepoDetail> {
        let mut req = pb::RepositoryRequest::new();
        req.set_name(name.to_string());
        let r = self.registry.get_repository_opt(&req, self.opt()?).map_err(map)?;
        Ok(RepoDetail {
            repository: repo_row(r.get_summary()),
            tags: r
                .get_tags()
                .iter()
                .map(|t| TagRow {
                    name: t.get_name().to_string(),
                    digest: t.get_digest().to_string(),
                    media_type: t.get_media_type().to_string(),
                    updated_at: t.get_updated_at(),
                })
                .collect(),
        })
    }

    fn repo_delete(&self, name: &str) -> R<()> {
        let mut req = pb::RepositoryRequest::new();
        req.set_name(name.to_string());
        self.registry.delete_repository_opt(&req, self.opt()?).map_err(map).map(|_| ())
    }

    fn tag_delete(&self, name: &str, tag: &str) -> R<()> {
        let mut req = pb::DeleteTagRequest::new();
        req.set_name(name.to_string());
        req.set_tag(tag.to_string());
        self.registry.delete_tag_opt(&req, self.opt()?).map_err(map).map(|_| ())
    }

    fn policy_list(&self) -> R<Vec<Rule>> {
        let r = self.policy.list_opt(&pb::Empty::new(), self.opt()?).map_err(map)?;
        r.get_rules().iter().map(rule_from_pb).collect()
    }

    fn policy_get(&self, id: i64) -> R<Rule> {
        let mut req = pb::RuleId::new();
        req.set_id(id);
        rule_from_pb(&self.policy.get_opt(&req, self.opt()?).map_err(map)?)
    }

    fn policy_create(&self, r: &Rule) -> R<Rule> {
        rule_from_pb(&self.policy.create_opt(&rule_to_pb(r), self.opt()?).map_err(map)?)
    }

    fn policy_update(&self, id: i64, r: &Rule) -> R<Rule> {
        let mut req = pb::UpdateRuleRequest::new();
        req.set_id(id);
        req.set_rule(rule_to_pb(r));
        rule_from_pb(&self.policy.update_opt(&req, self.opt()?).map_err(map)?)
    }

    fn policy_delete(&self, id: i64) -> R<()> {
        let mut req = pb::RuleId::new();
        req.set_id(id);
        self.policy.delete_opt(&req, self.opt()?).map_err(map).map(|_| ())
    }

    fn policy_set_enabled(&self, id: i64, on: bool) -> R<Rule> {
        let mut req = pb::SetEnabledRequest::new();
        req.set_id(id);
        req.set_enabled(on);
        rule_from_pb(&self.policy.set_enabled_opt(&req, self.opt()?).map_err(map)?)
    }

    fn policy_test(&self, q: &PolicyTest) -> R<DecisionOut> {
        let mut req = pb::EvaluateRequest::new();
        req.set_username(q.username.clone());
        req.set_roles(q.roles.clone().into());
        req.set_account_type(q.account_type.clone());
        req.set_action(q.action.clone());
        req.set_repository(q.repository.clone().unwrap_or_default());
        let d = self.policy.evaluate_opt(&req, self.opt()?).map_err(map)?;
        Ok(DecisionOut {
            allowed: d.get_allowed(),
            reason: d.get_reason().to_string(),
            rules: d
                .get_rules()
                .iter()
                .map(|r| DeciderOut {
                    id: r.get_id(),
                    priority: r.get_priority(),
                    effect: r.get_effect().to_string(),
                    description: r.get_description().to_string(),
                    builtin: r.get_builtin(),
                })
                .collect(),
        })
    }

    fn audit_query(&self, f: &AuditFilter) -> R<Vec<AuditOut>> {
        let mut q = pb::AuditQuery::new();
        q.set_event_type(f.event_type.clone().unwrap_or_default());
        q.set_actor(f.actor.clone().unwrap_or_default());
        q.set_repository(f.repository.clone().unwrap_or_default());
        q.set_since(f.since.unwrap_or(0));
        q.set_after_id(f.after_id.unwrap_or(0));
        q.set_limit(f.limit.max(1) as u32);
        let r = self.audit.query_opt(&q, self.opt()?).map_err(map)?;
        Ok(r.get_events()
            .iter()
            .map(|e| AuditOut {
                id: e.get_id(),
                time: e.get_time(),
                event_type: e.get_event_type().to_string(),
                actor: e.get_actor().to_string(),
                repository: e.get_repository().to_string(),
                reference: e.get_reference().to_string(),
                outcome: e.get_outcome().to_string(),
            })
            .collect())
    }

    fn audit_verify(&self) -> R<VerifyOut> {
        let v = self.audit.verify_opt(&pb::Empty::new(), self.opt()?).map_err(map)?;
        Ok(VerifyOut {
            rows: v.get_rows(),
            first_broken: (v.get_first_broken() != 0).then_some(v.get_first_broken()),
            reason: (!v.get_reason().is_empty()).then(|| v.get_reason().to_string()),
        })
    }

    fn gc_trigger(&self) -> R<u64> {
        Ok(self.admin.trigger_gc_opt(&pb::Empty::new(), self.opt()?).map_err(map)?.get_run_id())
    }

    fn gc_status(&self) -> R<GcOut> {
        let s = self.admin.get_gc_status_opt(&pb::Empty::new(), self.opt()?).map_err(map)?;
        let has = s.has_last();
        let l = s.get_last();
        Ok(GcOut {
            running: s.get_running(),
            last_run_id: has.then(|| l.get_run_id()),
            last_started_at: has.then(|| l.get_started_at()),
            last_finished_at: has.then(|| l.get_finished_at()),
            blobs_removed: l.get_blobs_removed(),
            bytes_freed: l.get_bytes_freed(),
            manifests_removed: l.get_manifests_removed(),
            errors: l.get_errors().to_vec(),
        })
    }

    fn reconcile(&self) -> R<ReconcileOut> {
        let r = self.admin.reconcile_opt(&pb::Empty::new(), self.opt()?).map_err(map)?;
        Ok(ReconcileOut {
            orphan_files_removed: r.get_orphan_files_removed(),
            orphan_bytes_freed: r.get_orphan_bytes_freed(),
            missing_files: r.get_missing_files().to_vec(),
            uploads_purged: r.get_uploads_purged(),
            staging_files_removed: r.get_staging_files_removed(),
        })
    }

    fn snapshot(&self) -> R<SnapshotOut> {
        let r = self.admin.snapshot_opt(&pb::Empty::new(), self.opt()?).map_err(map)?;
        Ok(SnapshotOut {
            path: r.get_path().to_string(),
            sha256: r.get_sha256().to_string(),
            size: r.get_size(),
        })
    }
}
