//! Service types ↔ protobuf messages.

use super::mcr as pb;
use crate::error::Error;
use crate::policy::{AccountType, Decision, Effect, Rule};
use crate::service::admin::{
    GcReport, GcStatus, ManifestDetail, ReconcileReport, RepoSummary, Snapshot, Status, TagInfo,
};
use crate::service::audit::AuditRow;
use protobuf::RepeatedField;

fn rf<T>(v: Vec<T>) -> RepeatedField<T> {
    RepeatedField::from_vec(v)
}

pub fn gc_report(r: &GcReport) -> pb::GcReport {
    let mut m = pb::GcReport::new();
    m.set_run_id(r.run_id);
    m.set_started_at(r.started_at);
    m.set_finished_at(r.finished_at);
    m.set_manifests_removed(r.manifests_removed);
    m.set_blobs_removed(r.blobs_removed);
    m.set_bytes_freed(r.bytes_freed);
    m.set_errors(rf(r.errors.clone()));
    m
}

pub fn gc_status(s: &GcStatus) -> pb::GcStatus {
    let mut m = pb::GcStatus::new();
    m.set_running(s.running);
    m.set_current_run(s.current_run.unwrap_or(0));
    if let Some(l) = &s.last {
        m.set_last(gc_report(l));
    }
    m
}

pub fn status(s: &Status) -> pb::StatusReply {
    let mut c = pb::Counts::new();
    c.set_repositories(s.counts.repositories);
    c.set_manifests(s.counts.manifests);
    c.set_tags(s.counts.tags);
    c.set_blobs(s.counts.blobs);
    c.set_storage_bytes(s.counts.storage_bytes);
    let mut m = pb::StatusReply::new();
    m.set_version(s.version.to_string());
    m.set_uptime_secs(s.uptime_secs);
    m.set_counts(c);
    m.set_gc(gc_status(&s.gc));
    m
}

pub fn reconcile(r: &ReconcileReport) -> pb::ReconcileReply {
    let mut m = pb::ReconcileReply::new();
    m.set_orphan_files_removed(r.orphan_files_removed);
    m.set_orphan_bytes_freed(r.orphan_bytes_freed);
    m.set_missing_files(rf(r.missing_files.clone()));
    m.set_uploads_purged(r.uploads_purged);
    m.set_staging_files_removed(r.staging_files_removed);
    m.set_unknown_files(rf(r.unknown_files.clone()));
    m
}

pub fn snapshot(s: &Snapshot) -> pb::SnapshotReply {
    let mut m = pb::SnapshotReply::new();
    m.set_path(s.path.clone());
    m.set_sha256(s.sha256.clone());
    m.set_size(s.size);
    m.set_created_at(s.created_at);
    m
}

pub fn repo_summary(r: &RepoSummary) -> pb::RepoSummary {
    let mut m = pb::RepoSummary::new();
    m.set_name(r.name.clone());
    m.set_tags(r.tags);
    m.set_manifests(r.manifests);
    m.set_size_bytes(r.size_bytes);
    m.set_created_at(r.created_at);
    m
}

pub fn tag_info(t: &TagInfo) -> pb::TagInfo {
    let mut m = pb::TagInfo::new();
    m.set_name(t.name.clone());
    m.set_digest(t.digest.clone());
    m.set_media_type(t.media_type.clone());
    m.set_updated_at(t.updated_at);
    m
}

fn descriptor(v: &serde_json::Value) -> pb::Descriptor {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let mut m = pb::Descriptor::new();
    m.set_media_type(s("mediaType"));
    m.set_digest(s("digest"));
    m.set_size(v.get("size").and_then(|x| x.as_i64()).unwrap_or(0));
    m.set_artifact_type(s("artifactType"));
    m.set_json(v.to_string());
    m
}

pub fn manifest(d: &ManifestDetail) -> pb::ManifestReply {
    let mut m = pb::ManifestReply::new();
    m.set_repository(d.repository.clone());
    m.set_digest(d.digest.clone());
    m.set_media_type(d.media_type.clone());
    m.set_size(d.size as u64);
    m.set_tags(rf(d.tags.clone()));
    m.set_artifact_type(d.artifact_type.clone().unwrap_or_default());
    if let Some(c) = &d.config {
        m.set_config(descriptor(c));
    }
    m.set_layers(rf(d.layers.iter().map(descriptor).collect()));
    m.set_manifests(rf(d.manifests.iter().map(descriptor).collect()));
    if let Some(s) = &d.subject {
        m.set_subject(descriptor(s));
    }
    m.set_referrers(rf(d.referrers.iter().map(descriptor).collect()));
    m
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|x| x.as_str().map(str::to_string)).unwrap_or_default()
}

fn parse_enum<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, Error> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| Error::BadRequest(format!("{what} {s:?} is not valid")))
}

pub fn rule_to_pb(r: &Rule) -> pb::Rule {
    let mut m = pb::Rule::new();
    m.set_id(r.id);
    m.set_priority(r.priority);
    m.set_description(r.description.clone());
    m.set_effect(enum_str(&r.effect));
    m.set_actions(rf(r.actions.iter().map(enum_str).collect()));
    m.set_repositories(rf(r.repositories.clone()));
    m.set_subjects(rf(r.subjects.clone()));
    m.set_usernames(rf(r.usernames.clone()));
    m.set_roles(rf(r.roles.clone()));
    m.set_account_types(rf(r.account_types.iter().map(enum_str).collect()));
    m.set_enabled(r.enabled);
    m
}

pub fn rule_from_pb(m: &pb::Rule) -> Result<Rule, Error> {
    Ok(Rule {
        id: m.get_id(),
        priority: m.get_priority(),
        description: m.get_description().to_string(),
        effect: parse_enum::<Effect>("effect", m.get_effect())?,
        actions: m.get_actions().iter().map(|a| parse_enum("action", a)).collect::<Result<_, _>>()?,
        repositories: m.get_repositories().to_vec(),
        subjects: m.get_subjects().to_vec(),
        usernames: m.get_usernames().to_vec(),
        roles: m.get_roles().to_vec(),
        account_types: m
            .get_account_types()
            .iter()
            .map(|a| parse_enum::<AccountType>("account type", a))
            .collect::<Result<_, _>>()?,
        enabled: m.get_enabled(),
    })
}

pub fn account_type(s: &str) -> Result<AccountType, Error> {
    if s.is_empty() {
        return Ok(AccountType::Human);
    }
    parse_enum("account type", s)
}

pub fn action(s: &str) -> Result<crate::model::Action, Error> {
    parse_enum("action", s)
}

pub fn decision(d: &Decision) -> pb::Decision {
    let mut m = pb::Decision::new();
    m.set_allowed(d.allowed);
    m.set_reason(d.reason.clone());
    m.set_rules(rf(d
        .rules
        .iter()
        .map(|r| {
            let mut x = pb::Decider::new();
            x.set_id(r.id);
            x.set_priority(r.priority);
            x.set_effect(enum_str(&r.effect));
            x.set_description(r.description.clone());
            x.set_builtin(r.builtin);
            x
        })
        .collect()));
    m
}

pub fn audit_event(r: &AuditRow) -> pb::AuditEvent {
    let mut m = pb::AuditEvent::new();
    m.set_id(r.id);
    m.set_time(r.time);
    m.set_event_type(r.event_type.clone());
    m.set_actor(r.actor.clone().unwrap_or_default());
    m.set_peer(r.peer.clone().unwrap_or_default());
    m.set_repository(r.repository.clone().unwrap_or_default());
    m.set_reference(r.reference.clone().unwrap_or_default());
    m.set_outcome(r.outcome.clone());
    m.set_detail(r.detail.clone());
    m.set_prev_hash(r.prev_hash.clone());
    m.set_hash(r.hash.clone());
    m
}
