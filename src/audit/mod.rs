//! The tamper-evident audit log (R-AUD-1..4).
//!
//! Each row stores the previous row's hash and its own: SHA-256 over the
//! previous hash and the row's canonical content (id included), so editing,
//! deleting or reordering any row breaks the chain from there on.
//!
//! Invariant: a mutation's event is written by `record` inside the
//! mutation's own transaction (no change without its record); events of
//! reads and refusals go through `AuditQueue`, a single writer thread fed by
//! a channel, which batches inserts and drains on shutdown, so request
//! threads never wait on them.  No secret is ever part of an event.

use crate::db::{self, audit::AuditRow, Db};
use crate::error::Result;
use crate::model::to_hex;
use crossbeam::channel::{self, Receiver, Sender};
use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::thread::JoinHandle;

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

/// The hash of a row given its predecessor's hash.
pub fn row_hash(r: &AuditRow) -> String {
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
    let json = serde_json::to_string(&c).expect("canonical row serializes");
    let mut h = Sha256::new();
    h.update(r.prev_hash.as_bytes());
    h.update(b"\n");
    h.update(json.as_bytes());
    to_hex(&h.finalize())
}

/// Appends `ev` at `time` inside the caller's transaction.
pub fn record(tx: &db::Tx, ev: &Event, time: i64) -> Result<()> {
    record_all(tx, std::iter::once((ev, time)))
}

/// Appends events in order inside the caller's transaction, reading the
/// chain's head once (the transaction holds the write lock, so it cannot move).
pub fn record_all<'e>(tx: &db::Tx, events: impl IntoIterator<Item = (&'e Event, i64)>) -> Result<()> {
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
        row.hash = row_hash(&row);
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

/// Walks the chain in id order, streaming.
pub fn verify(db: &Db) -> Result<Verification> {
    let mut v = Verification { rows: 0, first_broken: None, reason: None };
    let mut prev = GENESIS.to_string();
    let mut expected_id = 1;
    db.read(|c| {
        db::audit::each(c, |r| {
            v.rows += 1;
            let problem = if r.id != expected_id {
                Some(format!("row id {} follows {}: a row is missing", r.id, expected_id - 1))
            } else if r.prev_hash != prev {
                Some("prev_hash does not match the previous row".to_string())
            } else if row_hash(&r) != r.hash {
                Some("content does not match its hash".to_string())
            } else {
                None
            };
            if let Some(p) = problem {
                v.first_broken = Some(r.id);
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

enum Msg {
    Event(Event, i64),
    Flush(Sender<()>),
}

/// The single writer for events of reads and refusals.
pub struct AuditQueue {
    tx: Mutex<Option<Sender<Msg>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

const BATCH: usize = 1024;

impl AuditQueue {
    pub fn start(db: Db) -> std::io::Result<AuditQueue> {
        let (tx, rx) = channel::unbounded();
        let handle = std::thread::Builder::new().name("audit-writer".into()).spawn(move || writer(db, rx))?;
        Ok(AuditQueue { tx: Mutex::new(Some(tx)), handle: Mutex::new(Some(handle)) })
    }

    /// Queues an event; never blocks the caller.
    pub fn send(&self, ev: Event, time: i64) {
        if let Some(tx) = self.tx.lock().as_ref() {
            let _ = tx.send(Msg::Event(ev, time));
        } else {
            log::warn!("audit event after shutdown dropped type={}", ev.event_type);
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

fn writer(db: Db, rx: Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut events = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next {
            match m {
                Msg::Event(e, t) => events.push((e, t)),
                Msg::Flush(done) => flushes.push(done),
            }
            next = if events.len() < BATCH { rx.try_recv().ok() } else { None };
        }
        if !events.is_empty() {
            let r = db.write(|tx| record_all(tx, events.iter().map(|(e, t)| (e, *t))));
            if let Err(e) = r {
                log::error!("audit batch lost events={} err={e:#}", events.len());
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
    db.close_thread_connection();
}
