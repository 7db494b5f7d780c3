//! The GC thread: runs collections on a crossbeam ticker (`gc.interval`)
//! and on demand, one at a time.
//!
//! Invariant: the thread is owned by `Scheduler` and joined by `stop`.

use super::Gc;
use crossbeam::channel::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The actor the audit log records for scheduled runs.
pub const SCHEDULE_ACTOR: &str = "system:gc-schedule";

pub(crate) enum Msg {
    Run { id: u64, actor: String },
    Stop,
}

pub struct Scheduler {
    tx: Sender<Msg>,
    handle: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts the thread; `interval` seconds between scheduled runs (0: on
    /// demand only).
    pub fn start(gc: Arc<Gc>, interval: u64) -> std::io::Result<Scheduler> {
        let (tx, rx) = channel::unbounded();
        let _ = gc.inbox.set(tx.clone());
        let handle =
            std::thread::Builder::new().name("gc".into()).spawn(move || thread(&gc, &rx, interval))?;
        Ok(Scheduler { tx, handle: Some(handle) })
    }

    pub fn stop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

fn thread(gc: &Gc, rx: &Receiver<Msg>, interval: u64) {
    let ticker = if interval > 0 { channel::tick(Duration::from_secs(interval)) } else { channel::never() };
    loop {
        channel::select! {
            recv(rx) -> msg => match msg {
                Ok(Msg::Run { id, actor }) => {
                    let _ = super::run(gc, &actor, id);
                }
                Ok(Msg::Stop) | Err(_) => break,
            },
            recv(ticker) -> _ => {
                let id = gc.next_run_id();
                let _ = super::run(gc, SCHEDULE_ACTOR, id);
            }
        }
    }
    gc.db().close_thread_connection();
}
