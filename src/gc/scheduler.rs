//! The GC thread: runs collections on a crossbeam ticker (`gc.interval`)
//! and on demand, one at a time.
//!
//! Invariant: the thread is owned by `Scheduler` and joined by `stop`.

use crate::app::App;
use crossbeam::channel::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub(crate) enum Msg {
    Run { id: u64, actor: String },
    Stop,
}

pub struct Scheduler {
    tx: Sender<Msg>,
    handle: Option<JoinHandle<()>>,
}

impl Scheduler {
    pub fn start(app: Arc<App>) -> std::io::Result<Scheduler> {
        let (tx, rx) = channel::unbounded();
        let _ = app.gc.inbox.set(tx.clone());
        let interval = app.config.gc_interval_secs();
        let handle =
            std::thread::Builder::new().name("gc".into()).spawn(move || thread(&app, &rx, interval))?;
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

fn thread(app: &App, rx: &Receiver<Msg>, interval: u64) {
    let ticker = if interval > 0 { channel::tick(Duration::from_secs(interval)) } else { channel::never() };
    loop {
        channel::select! {
            recv(rx) -> msg => match msg {
                Ok(Msg::Run { id, actor }) => {
                    let _ = crate::gc::run(app, &actor, id);
                }
                Ok(Msg::Stop) | Err(_) => break,
            },
            recv(ticker) -> _ => {
                let id = app.gc.next_run_id();
                let _ = crate::gc::run(app, "scheduler", id);
            }
        }
    }
    app.db.close_thread_connection();
}
