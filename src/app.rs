//! The application root: configuration, metadata database, blob store and
//! clock, plus the per-request context handed to the service layer.

use crate::audit::{AuditQueue, Event};
use crate::auth::{local::LocalProvider, mcias::McIasProvider, Auth, IdentityProvider};
use crate::config::Config;
use crate::db::Db;
use crate::error::{Context, Error, Result};
use crate::gc::GcState;
use crate::model::Actor;
use crate::service::access::PolicyEngine;
use crate::service::uploads::UploadStates;
use crate::storage::{BlobLocks, BlobStore, FsStore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock seconds, injectable so tests control expiry and grace periods.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

pub struct App {
    pub config: Config,
    pub db: Db,
    pub store: Box<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    pub auth: Auth,
    pub policy: PolicyEngine,
    pub audit: AuditQueue,
    pub blob_locks: BlobLocks,
    pub gc: GcState,
    pub(crate) uploads: UploadStates,
}

impl App {
    /// Opens the data directory: creates it, migrates the database, opens
    /// the blob store.
    pub fn open(config: Config) -> Result<App> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    pub fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<App> {
        let dir = &config.storage.data_dir;
        std::fs::create_dir_all(dir).context("create data directory")?;
        let db = Db::open(&dir.join("mcr.db"))?;
        let store = Box::new(FsStore::open(dir)?);
        let provider: Box<dyn IdentityProvider> = match config.auth.provider.as_str() {
            "mcias" => {
                let ca = match config.auth.mcias_ca.as_str() {
                    "" => None,
                    path => Some(std::fs::read(path).context("read auth.mcias_ca")?),
                };
                Box::new(McIasProvider::new(&config.auth.mcias_url, ca.as_deref()).map_err(Error::Internal)?)
            }
            _ => Box::new(LocalProvider::new(db.clone(), clock.clone(), config.token_ttl_secs())),
        };
        let auth = Auth::new(provider, clock.clone());
        let policy = PolicyEngine::load(&db)?;
        let audit = AuditQueue::start(db.clone()).context("start audit writer")?;
        Ok(App {
            config,
            db,
            store,
            clock,
            auth,
            policy,
            audit,
            blob_locks: BlobLocks::default(),
            gc: GcState::default(),
            uploads: UploadStates::default(),
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// Who is asking, from where, under which request id.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub actor: Actor,
    pub req_id: &'a str,
    pub peer: Option<SocketAddr>,
}

impl Ctx<'_> {
    /// An audit event carrying this request's actor and peer.
    pub fn event(&self, event_type: &'static str, outcome: &'static str) -> Event {
        Event {
            actor: match &self.actor {
                Actor::Anonymous => None,
                Actor::User(p) => Some(p.username.clone()),
            },
            peer: self.peer.map(|p| p.to_string()),
            ..Event::new(event_type, outcome)
        }
    }

    /// Queues an event of a read or a refusal (never blocks).
    pub fn audit_async(&self, ev: Event) {
        self.app.audit.send(ev, self.app.now());
    }
}
