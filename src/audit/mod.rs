//! The tamper-evident audit log (R-AUD-1..4).
//!
//! Each row stores the previous row's hash and its own: HMAC-SHA256, under
//! a key kept outside the database (`<data>/audit.key`, 0600, never in a
//! snapshot), over the previous hash and the row's canonical content (id
//! included). Editing, deleting or reordering a row breaks the chain from
//! there on, and without the key nobody can compute a chain that verifies.
//! The head (last id and hash) is checkpointed outside the database
//! (`<data>/audit.checkpoint`, written atomically within a second of each
//! write, logged, and exported as a metric), so cutting rows off the end
//! shows too. Rows written before the chain was keyed (mcr before schema
//! version 4) keep plain SHA-256; an `audit_rekeyed` event anchors them.
//!
//! What it does not protect against: someone with the key and the
//! checkpoint can rewrite history; shipping the checkpoint (the log line or
//! the metric) off the machine closes that.
//!
//! Invariant: a mutation's event is written by `record` inside the
//! mutation's own transaction (no change without its record); events of
//! reads and refusals go through `AuditQueue`, a single writer thread fed by
//! a channel, which batches inserts and drains on shutdown, so request
//! threads never wait on them.  No secret is ever part of an event.

use crate::db::{self, audit::AuditRow, Db};
use crate::error::{Context, Error, Result};
use crate::model::to_hex;
use crossbeam::channel::{self, Receiver, Sender};
use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event before it is written.
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub event_type: &'static str,
    pub actor: Option<String>,
    pub peer: Option<String>,
    pub repository: Option<String>,
    pub reference: Option<String>,
    pub outcome: &'static str,
    pub detail: serde_json::Value,
}

impl Event {
    pub fn new(event_type: &'static str, outcome: &'static str) -> Event {
        Event { event_type, outcome, detail: serde_json::json!({}), ..Default::default() }
    }
}

fn canonical(r: &AuditRow) -> String {
    #[derive(Serialize)]
    struct Canonical<'a>(
        i64,
        i64,
        &'a str,
        &'a Option<String>,
        &'a Option<String>,
        &'a Option<String>,
        &'a Option<String>,
        &'a str,
        &'a str,
    );
    let c = Canonical(
        r.id,
        r.time,
        &r.event_type,
        &r.actor,
        &r.peer,
        &r.repository,
        &r.reference,
        &r.outcome,
        &r.detail,
    );
    serde_json::to_string(&c).expect("canonical row serializes")
}

/// The hash of a row of the unkeyed chain (before schema version 4).
pub fn row_hash(r: &AuditRow) -> String {
    let mut h = Sha256::new();
    h.update(r.prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical(r).as_bytes());
    to_hex(&h.finalize())
}

type HmacSha256 = hmac::Hmac<Sha256>;

/// The hash of a row of the keyed chain.
pub fn keyed_hash(key: &[u8; 32], r: &AuditRow) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(r.prev_hash.as_bytes());
    m.update(b"\n");
    m.update(canonical(r).as_bytes());
    to_hex(&m.finalize().into_bytes())
}

/// Audit keys by database file, installed when the registry opens.
static KEYS: Mutex<Vec<(std::path::PathBuf, [u8; 32])>> = Mutex::new(Vec::new());

/// Makes `key` the audit key of the database at `db_path`.
pub fn install_key(db_path: &std::path::Path, key: [u8; 32]) {
    let path = std::fs::canonicalize(db_path).unwrap_or_else(|_| db_path.to_path_buf());
    let mut keys = KEYS.lock();
    keys.retain(|(p, _)| *p != path);
    keys.push((path, key));
}

fn key_of(path: Option<std::path::PathBuf>) -> Result<[u8; 32]> {
    let path = path.ok_or_else(|| Error::Internal(anyhow::anyhow!("audit: database has no file")))?;
    let keys = KEYS.lock();
    if let Some((_, k)) = keys.iter().find(|(p, _)| *p == path) {
        return Ok(*k);
    }
    let canonical = std::fs::canonicalize(&path).unwrap_or(path);
    keys.iter()
        .find(|(p, _)| *p == canonical)
        .map(|(_, k)| *k)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("audit key of {} not loaded", canonical.display())))
}

/// The checkpoint of the chain's head, kept outside the database, with a
/// MAC under the audit key: without the key it cannot be rewritten to fit a
/// shortened or re-anchored chain.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub last_id: i64,
    pub last_hash: String,
    pub keyed_from: i64,
    pub time: i64,
    #[serde(default)]
    pub mac: String,
}

impl Checkpoint {
    fn compute_mac(&self, key: &[u8; 32]) -> String {
        use hmac::{KeyInit as _, Mac as _};
        let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        m.update(
            format!(
                "mcr-audit-checkpoint\0{}\0{}\0{}\0{}",
                self.last_id, self.last_hash, self.keyed_from, self.time
            )
            .as_bytes(),
        );
        to_hex(&m.finalize().into_bytes())
    }
}

/// The MAC of a snapshot's SHA-256 under the audit key of `db`.
pub fn snapshot_mac(db: &Db, sha256: &str) -> Result<String> {
    Ok(snapshot_mac_with(&db_key(db)?, sha256))
}

/// The MAC of a snapshot's SHA-256 under `key`.
pub fn snapshot_mac_with(key: &[u8; 32], sha256: &str) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"mcr-snapshot\0");
    m.update(sha256.as_bytes());
    to_hex(&m.finalize().into_bytes())
}

/// The id of the newest checkpointed row, for `/metrics`.
pub static CHECKPOINT_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

pub fn checkpoint_path(db: &Db) -> std::path::PathBuf {
    db.local_dir().join("audit.checkpoint")
}

fn db_key(db: &Db) -> Result<[u8; 32]> {
    key_of(Some(std::fs::canonicalize(db.path()).unwrap_or_else(|_| db.path().to_path_buf())))
}

/// What the checkpoint file holds.
enum Held {
    Missing,
    /// Present, but its MAC does not hold (or it does not parse).
    Forged(String),
    Valid(Checkpoint),
}

fn read_checkpoint(db: &Db) -> Result<Held> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // Never through a link, never blocking (a FIFO in its place would
    // stall the writer), a regular file of a few hundred bytes only.
    let flags = (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32;
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(flags).open(checkpoint_path(db)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Held::Missing),
        Err(e) => return Ok(Held::Forged(format!("the checkpoint cannot be opened as a file: {e}"))),
    };
    if !file.metadata().context("stat audit checkpoint")?.file_type().is_file() {
        return Ok(Held::Forged("the checkpoint is not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(4096).read_to_end(&mut bytes).context("read audit checkpoint")?;
    let cp: Checkpoint = match serde_json::from_slice(&bytes) {
        Ok(cp) => cp,
        Err(e) => return Ok(Held::Forged(format!("the checkpoint does not parse: {e}"))),
    };
    let key = db_key(db)?;
    if cp.mac.len() != 64 || cp.compute_mac(&key) != cp.mac {
        return Ok(Held::Forged(
            "the checkpoint's MAC does not hold: it was not written with the key".into(),
        ));
    }
    Ok(Held::Valid(cp))
}

fn write_checkpoint_file(db: &Db, mut cp: Checkpoint) -> Result<Checkpoint> {
    use std::io::Write as _;
    cp.mac = cp.compute_mac(&db_key(db)?);
    let path = checkpoint_path(db);
    // A name of this write's own: the server and `mcr user`/`mcr audit`
    // beside it write checkpoints too, and must not move each other's.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("checkpoint.{}-{n}.partial", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .context("write audit checkpoint")?;
    f.write_all(serde_json::to_string(&cp).unwrap_or_default().as_bytes())
        .context("write audit checkpoint")?;
    f.sync_all().context("fsync audit checkpoint")?;
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).context("put audit checkpoint in place");
    }
    CHECKPOINT_ID.store(cp.last_id, std::sync::atomic::Ordering::Relaxed);
    Ok(cp)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Moves the checkpoint to the chain's head. It never moves back, nor past
/// a chain that no longer holds the checkpointed row as it was, nor over a
/// checkpoint that is missing or forged while keyed rows exist: that is
/// evidence, kept for `verify` (and logged). `force` starts a new one
/// (a fresh chain, a restore).
fn move_checkpoint(db: &Db, force: bool) -> Result<Option<Checkpoint>> {
    let (head, db_keyed_from, foreign) =
        db.read(|c| Ok((db::audit::head(c)?, db::audit::keyed_from(c)?, db::audit::foreign_schema(c)?)))?;
    if !foreign.is_empty() {
        complain(&format!(
            "the database holds {} that mcr did not create; run mcr audit verify",
            foreign.join(", ")
        ));
        return Ok(None);
    }
    let (last_id, last_hash) = head.unwrap_or((0, GENESIS.to_string()));
    let held = if force { Held::Missing } else { read_checkpoint(db)? };
    let keyed_from = match held {
        Held::Valid(old) => {
            if old.last_id == last_id && old.last_hash == last_hash {
                return Ok(Some(old));
            }
            let still = db.read(|c| db::audit::hash_of(c, old.last_id))?;
            let holds = old.last_id == 0 || still.as_deref() == Some(old.last_hash.as_str());
            if last_id < old.last_id || !holds {
                complain(&format!(
                    "audit chain does not hold its checkpoint (checkpoint last_id={} hash={}, chain head id={last_id}): \
                     rows were removed or rewritten; run mcr audit verify",
                    old.last_id, old.last_hash
                ));
                return Ok(None);
            }
            // The checkpoint's anchor is the trusted one: keep following the
            // chain with it even if the database's was changed.
            if db_keyed_from != Some(old.keyed_from) {
                complain("the database's audit anchor differs from the checkpoint's; run mcr audit verify");
            }
            old.keyed_from
        }
        Held::Missing if !force => {
            complain(&format!(
                "audit checkpoint {} is missing: truncation of the audit log cannot be ruled out; restore it from \
                 where it was shipped (it is not recreated)",
                checkpoint_path(db).display()
            ));
            return Ok(None);
        }
        Held::Missing => match db_keyed_from {
            Some(k) => k,
            None => return Ok(None),
        },
        Held::Forged(why) => {
            complain(&format!("audit checkpoint not trusted: {why}; run mcr audit verify"));
            return Ok(None);
        }
    };
    write_checkpoint_file(
        db,
        Checkpoint { last_id, last_hash, keyed_from, time: now_secs(), mac: String::new() },
    )
    .map(Some)
}

/// Logs an audit integrity problem at most once a minute (the checkpoint
/// is tried every second).
fn complain(what: &str) {
    // Per kind of problem (the text up to its first digit), so one problem
    // logged does not silence another.
    static LAST: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());
    let kind: String = what.chars().take_while(|c| !c.is_ascii_digit()).take(80).collect();
    let now = now_secs();
    let mut last = LAST.lock();
    match last.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, t)) if now - *t < 60 => return,
        Some((_, t)) => *t = now,
        None => last.push((kind, now)),
    }
    log::error!("{what}");
}

pub fn advance_checkpoint(db: &Db) -> Result<Option<Checkpoint>> {
    move_checkpoint(db, false)
}

/// Whether the chain has rows written under a key.
pub fn has_keyed_rows(db: &Db) -> Result<bool> {
    db.read(|c| {
        Ok(match (db::audit::keyed_from(c)?, db::audit::head(c)?) {
            (Some(k), Some((last, _))) => last >= k,
            _ => false,
        })
    })
}

/// After a restore: the restored chain is the truth now, whatever the
/// checkpoint said (the restore itself is an audited event).
pub fn reanchor_checkpoint(db: &Db) -> Result<()> {
    move_checkpoint(db, true).map(drop)
}

/// Anchors the chain at start, only when the database came from before the
/// chain was keyed (`schema_before` < 4: new, or an old mcr's): a new chain
/// is keyed from its first row; an old one is verified under the old scheme,
/// then re-anchored by an `audit_rekeyed` event, the first keyed row. A
/// keyed database that lost its anchor was tampered with, and stays as found
/// for `verify`.
pub fn anchor(db: &Db, now: i64, schema_before: i64, key_is_new: bool) -> Result<()> {
    let foreign = db.read(db::audit::foreign_schema)?;
    if !foreign.is_empty() {
        return Err(Error::Internal(anyhow::anyhow!(
            "the database holds {} that mcr did not create (a trigger can hide or rewrite audit rows); remove it \
             and run mcr audit verify",
            foreign.join(", ")
        )));
    }
    if db.read(db::audit::keyed_from)?.is_none() {
        // A chain is (re-)anchored only on its way in: a database from before
        // schema 4, with a key made at this start and no checkpoint yet.
        // Anything else without an anchor was tampered with.
        let checkpoint = std::fs::symlink_metadata(checkpoint_path(db)).is_ok();
        let rows = db.read(db::audit::head)?.is_some();
        if schema_before >= 4 || checkpoint || (rows && !key_is_new) {
            log::error!("the audit chain's anchor is missing from a keyed database: run mcr audit verify");
            return Ok(());
        }
        match db.read(db::audit::head)? {
            None => db.write(|tx| db::audit::set_keyed_from(tx, 1))?,
            Some((last, _)) => {
                let legacy = verify_rows(db, None, i64::MAX)?;
                let ev = Event {
                    actor: Some("system:startup".into()),
                    detail: serde_json::json!({
                        "scheme": "hmac-sha256",
                        "legacy_rows": last,
                        "legacy_chain_ok": legacy.first_broken.is_none(),
                        "legacy_first_broken": legacy.first_broken,
                    }),
                    ..Event::new(
                        "audit_rekeyed",
                        if legacy.first_broken.is_none() { "ok" } else { "legacy_broken" },
                    )
                };
                db.write(|tx| {
                    db::audit::set_keyed_from(tx, last + 1)?;
                    record(tx, &ev, now)
                })?;
                match legacy.first_broken {
                    None => log::warn!("audit chain re-anchored under a key rows={last}"),
                    Some(id) => log::error!(
                        "audit chain re-anchored under a key, but its unkeyed part is broken at row {id}: {}",
                        legacy.reason.unwrap_or_default()
                    ),
                }
            }
        }
        move_checkpoint(db, true)?;
    }
    if let Some(cp) = advance_checkpoint(db)? {
        log::info!("audit checkpoint last_id={} hash={}", cp.last_id, cp.last_hash);
    }
    Ok(())
}

/// Appends `ev` at `time` inside the caller's transaction.
pub fn record(tx: &db::Tx, ev: &Event, time: i64) -> Result<()> {
    record_all(tx, std::iter::once((ev, time)))
}

/// Appends events in order inside the caller's transaction, reading the
/// chain's head once (the transaction holds the write lock, so it cannot move).
pub fn record_all<'e>(tx: &db::Tx, events: impl IntoIterator<Item = (&'e Event, i64)>) -> Result<()> {
    let key = key_of(db::audit::db_path(tx))?;
    let (mut id, mut prev_hash) = match db::audit::head(tx)? {
        Some((id, h)) => (id, h),
        None => (0, GENESIS.to_string()),
    };
    // Events per (day, type) in this batch, added to the daily counts once.
    let mut days: Vec<((i64, &'static str), i64)> = Vec::new();
    for (ev, time) in events {
        match days.iter_mut().find(|(k, _)| *k == (time.div_euclid(86400), ev.event_type)) {
            Some((_, n)) => *n += 1,
            None => days.push(((time.div_euclid(86400), ev.event_type), 1)),
        }
        id += 1;
        let mut row = AuditRow {
            id,
            time,
            event_type: ev.event_type.to_string(),
            actor: ev.actor.clone(),
            peer: ev.peer.clone(),
            repository: ev.repository.clone(),
            reference: ev.reference.clone(),
            outcome: ev.outcome.to_string(),
            detail: ev.detail.to_string(),
            prev_hash,
            hash: String::new(),
        };
        row.hash = keyed_hash(&key, &row);
        db::audit::insert(tx, &row)?;
        prev_hash = row.hash;
    }
    for ((day, event_type), n) in days {
        db::audit::count_day(tx, day, event_type, n)?;
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub rows: u64,
    /// The id of the first row whose link or hash does not hold.
    pub first_broken: Option<i64>,
    pub reason: Option<String>,
}

/// Walks the chain in id order, streaming, and holds it against the
/// checkpoint: names the first row whose link or hash does not hold, a
/// missing range, or rows cut off the end.
pub fn verify(db: &Db) -> Result<Verification> {
    let keyed_from = db.read(db::audit::keyed_from)?;
    let held = read_checkpoint(db)?;
    let key = db_key(db)?;
    let broken = |id: i64, reason: String, rows: u64| Verification {
        rows,
        first_broken: Some(id),
        reason: Some(reason),
    };
    let rows = db.read(db::audit::head)?.map_or(0, |(id, _)| id);
    let foreign = db.read(db::audit::foreign_schema)?;
    if !foreign.is_empty() {
        return Ok(broken(
            1,
            format!("the database holds {} that mcr did not create", foreign.join(", ")),
            0,
        ));
    }
    let checkpoint = match held {
        Held::Forged(why) => return Ok(broken(1, why, 0)),
        Held::Missing => {
            return Ok(broken(
                1,
                format!(
                    "the checkpoint {} is missing: rows cut off the end could not be seen (restore it from where it \
                     was shipped)",
                    checkpoint_path(db).display()
                ),
                0,
            ))
        }
        Held::Valid(cp) => Some(cp),
    };
    // The checkpoint's anchor (under the key) is the one to trust.
    let keyed_from = match (&checkpoint, keyed_from) {
        (Some(cp), Some(k)) if cp.keyed_from != k => {
            return Ok(broken(
                cp.keyed_from.min(k),
                format!(
                    "the database says the keyed chain starts at row {k}, the checkpoint says {}",
                    cp.keyed_from
                ),
                0,
            ))
        }
        (Some(cp), _) => cp.keyed_from,
        (None, Some(k)) => k,
        (None, None) if rows == 0 => 1,
        (None, None) => {
            return Ok(broken(1, "the chain's anchor (where the keyed rows start) is missing".into(), 0))
        }
    };
    // A keyed chain that does not start at row 1 starts with its re-anchoring.
    if keyed_from > 1 && keyed_from <= rows {
        let first = db.read(|c| db::audit::event_type_of(c, keyed_from))?;
        if first.as_deref() != Some("audit_rekeyed") {
            return Ok(broken(
                keyed_from,
                "the keyed chain does not start with its audit_rekeyed event".into(),
                0,
            ));
        }
    }
    let v = verify_rows(db, Some(&key), keyed_from)?;
    if v.first_broken.is_some() {
        return Ok(v);
    }
    let last = v.rows as i64;
    match checkpoint {
        None => Ok(v),
        Some(cp) if last < cp.last_id => Ok(broken(
            last + 1,
            format!("rows {}..{} are missing: the log ends before its checkpoint", last + 1, cp.last_id),
            v.rows,
        )),
        Some(cp) if cp.last_id == 0 => Ok(v),
        Some(cp) => match db.read(|c| db::audit::hash_of(c, cp.last_id))? {
            Some(h) if h == cp.last_hash => Ok(v),
            _ => Ok(broken(cp.last_id, "the row differs from the checkpoint".into(), v.rows)),
        },
    }
}

/// The chain's own links and hashes: rows before `keyed_from` under plain
/// SHA-256, the rest under `key` (with no key, all under SHA-256).
fn verify_rows(db: &Db, key: Option<&[u8; 32]>, keyed_from: i64) -> Result<Verification> {
    let mut v = Verification { rows: 0, first_broken: None, reason: None };
    let mut prev = GENESIS.to_string();
    let mut expected_id = 1;
    db.read(|c| {
        db::audit::each(c, |r| {
            v.rows += 1;
            let hash = match key {
                Some(k) if r.id >= keyed_from => keyed_hash(k, &r),
                _ => row_hash(&r),
            };
            let problem = if r.id > expected_id {
                Some(format!("rows {}..{} are missing", expected_id, r.id - 1))
            } else if r.id != expected_id {
                Some(format!("row id {} follows {}: rows are out of order", r.id, expected_id - 1))
            } else if r.prev_hash != prev {
                Some(
                    "prev_hash does not match the previous row (a row was moved, removed or rewritten)"
                        .to_string(),
                )
            } else if hash != r.hash {
                Some(if r.id >= keyed_from {
                    "content does not match its keyed hash (edited, or re-hashed without the key)".to_string()
                } else {
                    "content does not match its hash".to_string()
                })
            } else {
                None
            };
            if let Some(p) = problem {
                v.first_broken = Some(if r.id > expected_id { expected_id } else { r.id });
                v.reason = Some(p);
                return false;
            }
            prev = r.hash;
            expected_id = r.id + 1;
            true
        })
    })?;
    Ok(v)
}

/// An event is boxed: the queue's ring of `BACKLOG` slots is allocated
/// whole and, once it has wrapped, resident; a slot of a pointer is 16
/// bytes, one of an `Event` 176 (~700 KiB for the ring).
enum Msg {
    Event(Box<Event>, i64),
    Flush(Sender<()>),
}

/// The single writer for events of reads and refusals.
pub struct AuditQueue {
    tx: Mutex<Option<Sender<Msg>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
    /// Set by `close`: a batch the database refuses is no longer retried.
    closing: Arc<AtomicBool>,
}

const BATCH: usize = 1024;

/// Events queued at most: a writer that falls behind (a burst of pulls on
/// two cores) makes requests wait for it instead of growing the queue
/// without bound.
const BACKLOG: usize = 4 * BATCH;

/// How long a request waits for room in a full queue before it is
/// answered 503: never a hang behind a writer that cannot write (the
/// database down), never a read served without its event.
const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// A batch the database cannot take for now (PostgreSQL restarting) is
/// tried again after this, until it is written or the server stops.
const RETRY_WAIT: Duration = Duration::from_millis(500);

impl AuditQueue {
    pub fn start(db: Db) -> std::io::Result<AuditQueue> {
        let (tx, rx) = channel::bounded(BACKLOG);
        let closing = Arc::new(AtomicBool::new(false));
        let stop = closing.clone();
        let handle =
            std::thread::Builder::new().name("audit-writer".into()).spawn(move || writer(db, rx, &stop))?;
        Ok(AuditQueue { tx: Mutex::new(Some(tx)), handle: Mutex::new(Some(handle)), closing })
    }

    /// Queues an event.  With `BACKLOG` events ahead of it for `QUEUE_WAIT`
    /// (the writer cannot write), the event is not taken: `Unavailable`.
    pub fn send(&self, ev: Event, time: i64) -> Result<()> {
        // A clone of the sender: a waiting request holds no lock.
        let Some(tx) = self.tx.lock().clone() else {
            log::warn!("audit event after shutdown dropped type={}", ev.event_type);
            return Ok(());
        };
        match tx.send_timeout(Msg::Event(Box::new(ev), time), QUEUE_WAIT) {
            Ok(()) | Err(channel::SendTimeoutError::Disconnected(_)) => Ok(()),
            Err(channel::SendTimeoutError::Timeout(m)) => {
                if let Msg::Event(ev, _) = m {
                    log::error!("audit queue full, event not taken type={}", ev.event_type);
                }
                Err(Error::Unavailable("the audit log is not keeping up; retry".into()))
            }
        }
    }

    /// Waits until every event queued before this call is written.
    pub fn flush(&self) {
        let (done_tx, done_rx) = channel::bounded(1);
        let sent = self.tx.lock().as_ref().map(|tx| tx.send(Msg::Flush(done_tx)).is_ok());
        if sent == Some(true) {
            let _ = done_rx.recv();
        }
    }

    /// Drains the queue and joins the writer (graceful shutdown).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        drop(self.tx.lock().take());
        if let Some(h) = self.handle.lock().take() {
            let _ = h.join();
        }
    }
}

impl Drop for AuditQueue {
    fn drop(&mut self) {
        self.close();
    }
}

/// Writes a batch; while the database is unavailable (PostgreSQL
/// restarting), tries again until it is written or the server stops.
fn write_batch(db: &Db, events: &[(Event, i64)], closing: &AtomicBool) {
    let mut waited = false;
    loop {
        match db.write(|tx| record_all(tx, events.iter().map(|(e, t)| (e, *t)))) {
            Ok(_) => {
                if waited {
                    log::info!("audit batch written after the database came back events={}", events.len());
                }
                return;
            }
            Err(Error::Unavailable(e)) if !closing.load(Ordering::SeqCst) => {
                if !waited {
                    log::warn!("audit batch waits for the database events={} err={e}", events.len());
                }
                waited = true;
                std::thread::sleep(RETRY_WAIT);
            }
            Err(e) => {
                log::error!("audit batch lost events={} err={e:#}", events.len());
                return;
            }
        }
    }
}

fn writer(db: Db, rx: Receiver<Msg>, closing: &AtomicBool) {
    let mut last_log = 0i64;
    let mut checkpoint = |db: &Db| match advance_checkpoint(db) {
        Ok(Some(cp)) => {
            // Once a minute in the log, for shipping off the machine.
            if now_secs() - last_log >= 60 {
                log::info!("audit checkpoint last_id={} hash={}", cp.last_id, cp.last_hash);
                last_log = now_secs();
            }
        }
        Ok(None) => {}
        Err(e) => log::error!("audit checkpoint not written err={e:#}"),
    };
    let mut checkpointed = std::time::Instant::now();
    loop {
        // Within a second of any write (mutations write their own rows),
        // busy or idle.
        if checkpointed.elapsed() >= std::time::Duration::from_secs(1) {
            checkpoint(&db);
            checkpointed = std::time::Instant::now();
        }
        let first = match rx.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(m) => m,
            Err(channel::RecvTimeoutError::Timeout) => continue,
            Err(channel::RecvTimeoutError::Disconnected) => break,
        };
        let mut events = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next {
            match m {
                Msg::Event(e, t) => events.push((*e, t)),
                Msg::Flush(done) => flushes.push(done),
            }
            next = if events.len() < BATCH { rx.try_recv().ok() } else { None };
        }
        if !events.is_empty() {
            write_batch(&db, &events, closing);
        }
        if !flushes.is_empty() {
            checkpoint(&db);
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
    checkpoint(&db);
    db.close_thread_connection();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_checkpoint_writers_do_not_move_each_others_files() {
        // The server and `mcr user` beside it both write the checkpoint;
        // threads here stand in for the two processes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcr.db");
        let db = Db::open(&path).unwrap();
        install_key(&path, [7; 32]);
        std::thread::scope(|s| {
            for t in 0..8i64 {
                let db = &db;
                s.spawn(move || {
                    for i in 0..50 {
                        let cp = Checkpoint {
                            last_id: t * 1000 + i,
                            last_hash: "00".repeat(32),
                            keyed_from: 1,
                            time: 0,
                            mac: String::new(),
                        };
                        write_checkpoint_file(db, cp).unwrap();
                    }
                });
            }
        });
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        assert!(checkpoint_path(&db).exists());
    }
}
