//! Online garbage collection and reconciliation (R-GC-1..4).
//!
//! `run`: phase 1, in one transaction, deletes untagged manifests that
//! nothing references (when configured) and blob rows that no manifest
//! references and that are older than the grace period; phase 2 unlinks
//! their files.  `reconcile`: removes files with no row, reports rows with
//! no file, purges upload sessions past their TTL.
//!
//! Invariant: a file is unlinked only under its digest's storage lock and
//! only when no row names it, and uploads commit (rename + row) under the
//! same lock, so a blob re-uploaded during collection is never lost.  One
//! run at a time: a registry-wide mutex, a second trigger is "already
//! running".

pub mod scheduler;

use crate::audit::{record, Event};
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::model::{Clock, Digest};
use crate::storage::{BlobLocks, BlobStore};
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GcReport {
    pub run_id: u64,
    pub started_at: i64,
    pub finished_at: i64,
    pub manifests_removed: u64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GcStatus {
    pub running: bool,
    pub current_run: Option<u64>,
    pub last: Option<GcReport>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ReconcileReport {
    pub orphan_files_removed: u64,
    pub orphan_bytes_freed: u64,
    /// Rows whose blob file is missing (reported, not changed).
    pub missing_files: Vec<String>,
    pub uploads_purged: u64,
    pub staging_files_removed: u64,
    pub unknown_files: Vec<String>,
}

/// What a collection works on, handed in by whoever builds the registry.
pub struct Parts {
    pub db: Db,
    pub store: Arc<dyn BlobStore>,
    pub locks: Arc<BlobLocks>,
    pub clock: Arc<dyn Clock>,
    /// Blobs and manifests younger than this (seconds) are kept.
    pub min_age_secs: i64,
    /// Collect manifests that no tag, index or subject refers to.
    pub delete_untagged: bool,
    /// Upload sessions idle this long (seconds) are purged by reconcile.
    pub uploads_ttl_secs: i64,
}

/// The collector: its parts, the run lock, the status, and the GC thread's
/// inbox once the scheduler runs.
pub struct Gc {
    parts: Parts,
    run_lock: Mutex<()>,
    /// One reconcile at a time (the one at start-up runs beside requests).
    reconcile_lock: Mutex<()>,
    status: Mutex<GcStatus>,
    next_id: AtomicU64,
    pub(crate) inbox: std::sync::OnceLock<crossbeam::channel::Sender<scheduler::Msg>>,
}

impl Gc {
    pub fn new(parts: Parts) -> Gc {
        Gc {
            parts,
            run_lock: Mutex::new(()),
            reconcile_lock: Mutex::new(()),
            status: Mutex::new(GcStatus::default()),
            next_id: AtomicU64::new(0),
            inbox: std::sync::OnceLock::new(),
        }
    }

    pub fn status(&self) -> GcStatus {
        self.status.lock().clone()
    }

    pub fn next_run_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn now(&self) -> i64 {
        self.parts.clock.now()
    }

    pub(crate) fn db(&self) -> &Db {
        &self.parts.db
    }
}

/// Starts a run: on the GC thread when the scheduler runs (returns at once),
/// else on this thread.  A run in progress is "already running".
pub fn trigger(gc: &Gc, actor: &str) -> Result<u64> {
    if gc.status.lock().running {
        return Err(Error::Busy("garbage collection is already running".into()));
    }
    // Replicas: a collection another replica runs is "already running" here
    // too (the run itself takes the lease again, for the race in between).
    if gc.parts.db.is_shared() && gc.parts.db.gc_lease()?.is_none() {
        return Err(Error::Busy("garbage collection is already running on another replica".into()));
    }
    let id = gc.next_run_id();
    match gc.inbox.get() {
        Some(tx) => {
            // Mark it running now, so a second trigger sees it at once.
            {
                let mut st = gc.status.lock();
                st.running = true;
                st.current_run = Some(id);
            }
            let _ = tx.send(scheduler::Msg::Run { id, actor: actor.to_string() });
            Ok(id)
        }
        None => run(gc, actor, id).map(|r| r.run_id),
    }
}

/// A test-only pause inside a phase (`MCR_TEST_GC_PAUSE=phase1:MS` or
/// `phase2:MS`), so crash tests can kill the server at a known point.
fn test_pause(phase: &str) {
    if let Ok(v) = std::env::var("MCR_TEST_GC_PAUSE") {
        if let Some((p, ms)) = v.split_once(':') {
            if p == phase {
                log::warn!("gc test pause phase={phase} ms={ms}");
                std::thread::sleep(std::time::Duration::from_millis(ms.parse().unwrap_or(0)));
            }
        }
    }
}

fn event(event_type: &'static str, actor: &str, detail: serde_json::Value) -> Event {
    Event { actor: Some(actor.to_string()), detail, ..Event::new(event_type, "ok") }
}

/// One collection, now, on this thread.  `actor` is recorded in the audit log.
pub fn run(gc: &Gc, actor: &str, run_id: u64) -> Result<GcReport> {
    let Some(_guard) = gc.run_lock.try_lock() else {
        log::warn!("gc not started: already running run={run_id}");
        return Err(Error::Busy("garbage collection is already running".into()));
    };
    let started_at = gc.now();
    {
        let mut st = gc.status.lock();
        st.running = true;
        st.current_run = Some(run_id);
    }
    log::info!("gc started run={run_id} actor={actor}");
    let r = collect(gc, actor, run_id, started_at);
    let mut st = gc.status.lock();
    st.running = false;
    st.current_run = None;
    match r {
        Ok(report) => {
            log::info!(
                "gc completed run={run_id} manifests={} blobs={} bytes={} errors={}",
                report.manifests_removed,
                report.blobs_removed,
                report.bytes_freed,
                report.errors.len()
            );
            st.last = Some(report.clone());
            Ok(report)
        }
        Err(e) => {
            log::error!("gc failed run={run_id} err={e:#}");
            st.last = Some(GcReport {
                run_id,
                started_at,
                finished_at: gc.now(),
                errors: vec![e.to_string()],
                ..Default::default()
            });
            Err(e)
        }
    }
}

fn collect(gc: &Gc, actor: &str, run_id: u64, started_at: i64) -> Result<GcReport> {
    let p = &gc.parts;
    // One collection across every replica sharing the database.
    let Some(_lease) = p.db.gc_lease()? else {
        return Err(Error::Busy("garbage collection is already running on another replica".into()));
    };
    let cutoff = started_at - p.min_age_secs;
    let delete_untagged = p.delete_untagged;
    // Phase 1: rows, in one transaction.
    let (manifests_removed, doomed) = p.db.write(|tx| {
        record(tx, &event("gc_started", actor, serde_json::json!({ "run": run_id })), started_at)?;
        let mut manifests = 0;
        if delete_untagged {
            // Removing an index can orphan its children: repeat to a fixpoint.
            for _ in 0..16 {
                let n = db::gc::delete_untagged_manifests(tx, cutoff)?;
                manifests += n;
                if n == 0 {
                    break;
                }
            }
        }
        let mut doomed = Vec::new();
        db::gc::delete_unreferenced_blobs(tx, cutoff, |d, size| doomed.push((d, size)))?;
        test_pause("phase1");
        Ok((manifests, doomed))
    })?;
    // Phase 2: files, each under its storage lock, only if still row-less.
    let mut report = GcReport { run_id, started_at, manifests_removed, ..Default::default() };
    for (d, size) in doomed {
        let Ok(digest) = Digest::parse(&d) else {
            report.errors.push(format!("unparsable digest in blobs table: {d}"));
            continue;
        };
        let _lock = p.locks.lock(&digest);
        let _shared = match p.db.lock_digest(digest.hex()) {
            Ok(l) => l,
            Err(e) => {
                report.errors.push(format!("{d}: {e}"));
                continue;
            }
        };
        match p.db.read(|c| db::gc::blob_exists(c, &d)) {
            Ok(true) => continue, // re-uploaded since phase 1: keep
            Ok(false) => {}
            Err(e) => {
                report.errors.push(format!("{d}: {e}"));
                continue;
            }
        }
        match p.store.delete_blob(&digest) {
            Ok(existed) => {
                report.blobs_removed += 1;
                if existed {
                    report.bytes_freed += size;
                }
            }
            Err(e) => report.errors.push(format!("{d}: {e}")),
        }
        test_pause("phase2");
    }
    report.finished_at = gc.now();
    let detail = serde_json::to_value(&report).unwrap_or_default();
    p.db.write(|tx| record(tx, &event("gc_completed", actor, detail), report.finished_at))?;
    Ok(report)
}

/// Reconcile's hold on upload sessions, which requests also use.
pub trait UploadSessions {
    /// Runs `f` under the session's lock if no request holds it now (and
    /// drops what is cached for the session); `None` when it is busy.
    fn if_idle(&self, id: &str, f: &mut dyn FnMut() -> Result<()>) -> Option<Result<()>>;
}

impl UploadSessions for crate::storage::UploadStates {
    fn if_idle(&self, id: &str, f: &mut dyn FnMut() -> Result<()>) -> Option<Result<()>> {
        self.if_idle(id, f)
    }
}

/// Files with no row are removed, rows with no file reported, upload
/// sessions idle past their TTL purged, and staged uploads that no session
/// row names aborted.  The database is the record of uploads (a row is
/// written before its staged upload is begun and removed after it is
/// committed or aborted), so this holds online too: a listed upload whose
/// row is gone was committed or abandoned, and aborting it is harmless.  A
/// session a request is using is never purged, however long it streams.
pub fn reconcile(gc: &Gc, actor: &str, sessions: &dyn UploadSessions) -> Result<ReconcileReport> {
    let _one = gc.reconcile_lock.lock();
    let p = &gc.parts;
    let now = gc.now();
    let mut rep = ReconcileReport::default();
    // Stale sessions, each under its lock: the row first, then the bytes.
    let cutoff = now - p.uploads_ttl_secs;
    for id in p.db.read(|c| db::gc::stale_uploads(c, cutoff))? {
        let purged = sessions.if_idle(&id, &mut || {
            // Checked again under the lock: a request may have used it since.
            if p.db.write(|tx| db::gc::delete_stale_upload(tx, &id, cutoff))? {
                p.store.abort_upload(&id)?;
                rep.uploads_purged += 1;
            }
            Ok(())
        });
        if let Some(r) = purged {
            r?;
        }
    }
    // Staged uploads with no session.
    let mut staged = Vec::new();
    p.store.each_upload(&mut |id| staged.push(id.to_string()))?;
    for id in staged {
        if !p.db.read(|c| db::gc::upload_exists(c, &id))? {
            p.store.abort_upload(&id)?;
            rep.staging_files_removed += 1;
        }
    }
    // Blob files with no row, handled as the directory walk goes (a large
    // registry is never held in memory).
    let mut failure = None;
    p.store.each_blob(&mut |d, path| {
        let Some(digest) = d else {
            rep.unknown_files.push(path.to_string());
            return;
        };
        let _lock = p.locks.lock(&digest);
        let r = p.db.lock_digest(digest.hex()).and_then(|_shared| {
            let exists = p.db.read(|c| db::gc::blob_exists(c, &digest.to_string()))?;
            if !exists {
                let size = p.store.stat(&digest)?.unwrap_or(0);
                if p.store.delete_blob(&digest)? {
                    rep.orphan_files_removed += 1;
                    rep.orphan_bytes_freed += size;
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            failure.get_or_insert(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    // Rows with no file, streamed.
    let mut failure = None;
    p.db.read(|c| {
        db::gc::each_blob(c, |d| {
            if let Ok(digest) = Digest::parse(&d) {
                match p.store.stat(&digest) {
                    Ok(Some(_)) => {}
                    Ok(None) => rep.missing_files.push(d),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
        })
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    // A collection may have removed a row and then its file since the scan
    // read the row: only a row that is still there, under the digest's
    // lock, with no file, is missing.
    let candidates = std::mem::take(&mut rep.missing_files);
    for d in candidates {
        let Ok(digest) = Digest::parse(&d) else { continue };
        let _lock = p.locks.lock(&digest);
        let _shared = p.db.lock_digest(digest.hex())?;
        if p.db.read(|c| db::gc::blob_exists(c, &d))? && p.store.stat(&digest)?.is_none() {
            rep.missing_files.push(d);
        }
    }
    if !rep.missing_files.is_empty() {
        log::error!("reconcile found rows without files count={}", rep.missing_files.len());
    }
    let detail = serde_json::to_value(&rep).unwrap_or_default();
    p.db.write(|tx| record(tx, &event("reconcile_completed", actor, detail), gc.now()))?;
    log::info!(
        "reconcile completed orphans={} bytes={} missing={} uploads_purged={} staging_removed={}",
        rep.orphan_files_removed,
        rep.orphan_bytes_freed,
        rep.missing_files.len(),
        rep.uploads_purged,
        rep.staging_files_removed
    );
    Ok(rep)
}
