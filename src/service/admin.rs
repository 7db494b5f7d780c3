//! Operations of the admin API: garbage collection and reconciliation
//! (admin only).

use super::access::{public, require_admin, require_user};
use crate::app::Ctx;
use crate::error::Result;
use crate::gc;
pub use crate::gc::{GcReport, GcStatus, ReconcileReport};

/// Starts a collection: on the GC thread when it runs (returns at once),
/// else on this thread.
pub fn gc_trigger(ctx: &Ctx) -> Result<u64> {
    require_admin(ctx)?;
    gc::trigger(&ctx.app.gc, ctx.actor.name())
}

/// Runs a collection now, on this thread (`mcr gc`).
pub fn gc_run(ctx: &Ctx) -> Result<GcReport> {
    require_admin(ctx)?;
    gc::run(&ctx.app.gc, ctx.actor.name(), ctx.app.gc.next_run_id())
}

pub fn gc_status(ctx: &Ctx) -> Result<GcStatus> {
    require_admin(ctx)?;
    Ok(ctx.app.gc.status())
}

pub fn reconcile(ctx: &Ctx) -> Result<ReconcileReport> {
    require_admin(ctx)?;
    gc::reconcile(&ctx.app.gc, ctx.actor.name(), &ctx.app.uploads)
}

use crate::db;
pub use crate::db::admin::{Counts, RepoSummary, TagInfo};
use crate::error::{Context, Error, What};
use crate::model::{media, Digest, Reference, RepoName};
use serde::Serialize;

/// When this process started (Unix seconds), for the uptime.
static STARTED: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

pub fn mark_started(now: i64) {
    let _ = STARTED.set(now);
}

#[derive(Serialize)]
pub struct Status {
    pub version: &'static str,
    pub uptime_secs: i64,
    pub counts: Counts,
    pub gc: GcStatus,
}

/// Any authenticated caller may read the status.
pub fn status(ctx: &Ctx) -> Result<Status> {
    require_user(ctx)?;
    let now = ctx.app.now();
    Ok(Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: now - *STARTED.get().unwrap_or(&now),
        counts: ctx.app.db.read(db::admin::counts)?,
        gc: ctx.app.gc.status(),
    })
}

#[derive(Serialize)]
pub struct RepoPage {
    pub repositories: Vec<RepoSummary>,
    pub next: Option<String>,
}

pub fn list_repositories(ctx: &Ctx, n: usize, last: Option<&str>) -> Result<RepoPage> {
    require_admin(ctx)?;
    let max = ctx.app.config.limits.page_max;
    if n == 0 || n > max {
        return Err(Error::BadRequest(format!("n must be between 1 and {max}")));
    }
    let mut rows = ctx.app.db.read(|c| db::admin::list(c, last.unwrap_or(""), n + 1))?;
    let next = if rows.len() > n {
        rows.truncate(n);
        rows.last().map(|r| r.name.clone())
    } else {
        None
    };
    Ok(RepoPage { repositories: rows, next })
}

#[derive(Serialize)]
pub struct RepoDetail {
    #[serde(flatten)]
    pub summary: RepoSummary,
    pub tag_list: Vec<TagInfo>,
}

pub fn repository(ctx: &Ctx, name: &RepoName) -> Result<RepoDetail> {
    require_admin(ctx)?;
    ctx.app
        .db
        .read(|c| {
            let Some(summary) = db::admin::get(c, name.as_str())? else { return Ok(None) };
            let id = db::repos::id(c, name.as_str())?.unwrap_or_default();
            Ok(Some(RepoDetail { summary, tag_list: db::admin::tags(c, id)? }))
        })?
        .ok_or(Error::NotFound(What::Repository))
}

/// Deletes a repository with its manifests, tags and blob links; blobs no
/// longer referenced anywhere go at the next garbage collection.
pub fn delete_repository(ctx: &Ctx, name: &RepoName) -> Result<()> {
    require_admin(ctx)?;
    let now = ctx.app.now();
    let found = ctx.app.db.write(|tx| {
        let Some(id) = db::repos::id(tx, name.as_str())? else { return Ok(false) };
        db::admin::delete_repository(tx, id)?;
        let mut ev = ctx.event("delete", "ok");
        ev.repository = Some(name.to_string());
        ev.detail = serde_json::json!({ "kind": "repository" });
        crate::audit::record(tx, &ev, now)?;
        Ok(true)
    })?;
    if found {
        Ok(())
    } else {
        Err(Error::NotFound(What::Repository))
    }
}

pub fn delete_tag(ctx: &Ctx, name: &RepoName, tag: &str) -> Result<()> {
    require_admin(ctx)?;
    let now = ctx.app.now();
    let found = ctx.app.db.write(|tx| {
        let Some(id) = db::repos::id(tx, name.as_str())? else { return Ok(false) };
        let Some(digest) = db::admin::delete_tag(tx, id, tag)? else { return Ok(false) };
        let mut ev = ctx.event("tag_delete", "ok");
        ev.repository = Some(name.to_string());
        ev.reference = Some(tag.to_string());
        ev.detail = serde_json::json!({ "digest": digest });
        crate::audit::record(tx, &ev, now)?;
        Ok(true)
    })?;
    if found {
        Ok(())
    } else {
        Err(Error::NotFound(What::Manifest))
    }
}

#[derive(Serialize)]
pub struct ManifestDetail {
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub size: usize,
    pub tags: Vec<String>,
    pub artifact_type: Option<String>,
    pub config: Option<serde_json::Value>,
    pub layers: Vec<serde_json::Value>,
    /// For an index: its children with their platforms.
    pub manifests: Vec<serde_json::Value>,
    pub subject: Option<serde_json::Value>,
    pub annotations: Option<serde_json::Value>,
    pub referrers: Vec<serde_json::Value>,
}

pub fn manifest(ctx: &Ctx, name: &RepoName, reference: &Reference) -> Result<ManifestDetail> {
    require_admin(ctx)?;
    manifest_detail(ctx, name, reference)
}

/// A manifest's detail; the caller has authorized.
pub(super) fn manifest_detail(ctx: &Ctx, name: &RepoName, reference: &Reference) -> Result<ManifestDetail> {
    let (row, tags) = ctx
        .app
        .db
        .read(|c| {
            let Some(repo_id) = db::repos::id(c, name.as_str())? else { return Ok(None) };
            let m = match reference {
                Reference::Tag(t) => db::manifests::by_tag(c, repo_id, t.as_str())?,
                Reference::Digest(d) => db::manifests::by_digest(c, repo_id, &d.to_string())?,
            };
            match m {
                Some(m) => {
                    let tags = db::admin::tags_of(c, m.id)?;
                    Ok(Some((m, tags)))
                }
                None => Ok(None),
            }
        })?
        .ok_or(Error::NotFound(What::Manifest))?;
    let v: serde_json::Value = serde_json::from_slice(&row.body).context("stored manifest is JSON")?;
    let list = |k: &str| v.get(k).and_then(|x| x.as_array()).cloned().unwrap_or_default();
    let digest = Digest::parse(&row.digest).map_err(|e| Error::Internal(anyhow::anyhow!(e)))?;
    let referrers_index = super::manifests::referrers(ctx, name, &digest, None)?;
    let referrers: serde_json::Value = serde_json::from_slice(&referrers_index).context("referrers index")?;
    let artifact_type = v.get("artifactType").and_then(|a| a.as_str()).map(str::to_string).or_else(|| {
        (row.media_type == media::OCI_MANIFEST)
            .then(|| v.pointer("/config/mediaType").and_then(|a| a.as_str()).map(str::to_string))
            .flatten()
    });
    Ok(ManifestDetail {
        repository: name.to_string(),
        digest: row.digest,
        media_type: row.media_type,
        size: row.body.len(),
        tags,
        artifact_type,
        config: v.get("config").cloned(),
        layers: list("layers"),
        manifests: list("manifests"),
        subject: v.get("subject").cloned(),
        annotations: v.get("annotations").cloned(),
        referrers: referrers["manifests"].as_array().cloned().unwrap_or_default(),
    })
}

#[derive(Serialize, Debug)]
pub struct Snapshot {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub created_at: i64,
}

/// A consistent copy of the metadata database, taken online with SQLite's
/// backup API, written under `<data>/snapshots/` with its SHA-256.
pub fn snapshot(ctx: &Ctx) -> Result<Snapshot> {
    require_admin(ctx)?;
    let snap = take_snapshot(ctx.app)?;
    let mut ev = ctx.event("snapshot", "ok");
    ev.detail = serde_json::json!({ "path": snap.path, "sha256": snap.sha256, "size": snap.size });
    ctx.app.db.write(|tx| crate::audit::record(tx, &ev, snap.created_at))?;
    Ok(snap)
}

/// Records a restore in the (restored) audit log: which snapshot, its
/// SHA-256, and whether it was verified against its checksum file.
pub fn record_restore(ctx: &Ctx, path: &str, sha256: &str, verified: bool) -> Result<()> {
    super::access::require_system(ctx)?;
    let mut ev = ctx.event("restore", if verified { "ok" } else { "unverified" });
    ev.detail = serde_json::json!({ "path": path, "sha256": sha256, "verified": verified });
    let now = ctx.app.now();
    ctx.app.db.write(|tx| crate::audit::record(tx, &ev, now))
}

/// After a restore, the restored audit chain is the one the checkpoint
/// holds (the restore is recorded in it first).
pub fn reanchor_audit(ctx: &Ctx) -> Result<()> {
    super::access::require_system(ctx)?;
    ctx.app.audit.flush();
    crate::audit::reanchor_checkpoint(&ctx.app.db)
}

static SNAPSHOT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn take_snapshot(app: &crate::app::App) -> Result<Snapshot> {
    let dir = app.config.storage.data_dir.join("snapshots");
    std::fs::create_dir_all(&dir).context("create snapshots directory")?;
    let now = app.now();
    let seq = SNAPSHOT_SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("mcr-{}-{seq}.db", crate::model::rfc3339(now).replace(':', ""));
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.partial"));
    db::snapshot::backup_to(&app.db, &tmp)?;
    // The snapshot holds password hashes: readable by the owner only.
    #[cfg(unix)]
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .context("restrict snapshot")?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).context("fsync snapshot")?;
    std::fs::rename(&tmp, &path).context("rename snapshot into place")?;
    let bytes = std::fs::read(&path).context("read snapshot")?;
    let sha = crate::model::Digest::of(crate::model::Algorithm::Sha256, &bytes).hex().to_string();
    // The checksum, and its MAC under the audit key: a snapshot edited and
    // re-summed without the key is not restored.
    let mac = crate::audit::snapshot_mac(&app.db, &sha)?;
    std::fs::write(dir.join(format!("{name}.sha256")), format!("{sha}  {name}\nhmac-sha256:{mac}\n"))
        .context("write snapshot checksum")?;
    Ok(Snapshot { path: path.display().to_string(), sha256: sha, size: bytes.len() as u64, created_at: now })
}

/// Registry gauges for `/metrics` (Prometheus text format), unauthenticated:
/// counts only.
pub fn metrics(ctx: &Ctx) -> Result<String> {
    public(ctx)?;
    use std::fmt::Write as _;
    let app = ctx.app;
    let c = app.db.read(db::admin::counts)?;
    let gc = app.gc.status();
    let now = app.now();
    let mut out = String::new();
    for (name, help, v) in [
        ("mcr_repositories", "Repositories.", c.repositories),
        ("mcr_manifests", "Manifests.", c.manifests),
        ("mcr_tags", "Tags.", c.tags),
        ("mcr_blobs", "Blobs.", c.blobs),
        ("mcr_storage_bytes", "Bytes of blobs stored.", c.storage_bytes),
        ("mcr_uptime_seconds", "Seconds since start.", now - *STARTED.get().unwrap_or(&now)),
        ("mcr_gc_running", "1 while a garbage collection runs.", i64::from(gc.running)),
        (
            "mcr_gc_last_bytes_freed",
            "Bytes freed by the last collection.",
            gc.last.as_ref().map_or(0, |l| l.bytes_freed as i64),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    let _ = writeln!(
        out,
        "# HELP mcr_audit_checkpoint_id The newest audit row held by the checkpoint outside the database.\n\
         # TYPE mcr_audit_checkpoint_id gauge\nmcr_audit_checkpoint_id {}",
        crate::audit::CHECKPOINT_ID.load(std::sync::atomic::Ordering::Relaxed)
    );
    let checks = crate::auth::PASSWORD_CHECKS.load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP mcr_auth_password_checks_total Password checks (memory-hard hashes) run.\n\
         # TYPE mcr_auth_password_checks_total counter\nmcr_auth_password_checks_total {checks}"
    );
    Ok(out)
}
