//! The application root: configuration, metadata database, blob store and
//! clock, plus the per-request context handed to the service layer.

use crate::audit::{AuditQueue, Event};
use crate::auth::{local::LocalProvider, mcias::McIasProvider, Auth, IdentityProvider};
use crate::config::Config;
use crate::db::Db;
use crate::error::{Context, Error, Result};
use crate::gc::Gc;
use crate::model::Actor;
pub use crate::model::{Clock, SystemClock};
use crate::policy::PolicyEngine;
use crate::storage::{BlobLocks, BlobStore, UploadStates};
use std::net::SocketAddr;
use std::sync::Arc;

pub struct App {
    pub config: Config,
    pub db: Db,
    pub store: Arc<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    pub auth: Auth,
    pub policy: PolicyEngine,
    pub audit: AuditQueue,
    pub blob_locks: Arc<BlobLocks>,
    pub gc: Arc<Gc>,
    pub uploads: UploadStates,
    /// The key of the web UI's CSRF tokens (`<data>/ui-csrf.key`, 0600).
    pub ui_key: [u8; 32],
    /// Replicas: what this process shares of its login throttle.
    logins: SharedLogins,
}

/// A replica's part in the login throttle all replicas share: its name in
/// `login_events`, the last event of the others it replayed, and when it
/// last pruned the table.
struct SharedLogins {
    replica: String,
    replayed: std::sync::atomic::AtomicI64,
    pruned: std::sync::atomic::AtomicI64,
}

/// Login events kept (and replayed by a replica that starts): as far back
/// as the throttle's longest back-off looks.
const LOGIN_EVENTS_KEPT_SECS: i64 = 3600;

impl App {
    /// Opens the registry on `store`: creates the data directory, migrates
    /// the database, starts the audit writer.  The caller chooses the blob
    /// store (`storage::open` reads it from the configuration).
    pub fn open(config: Config, store: Arc<dyn BlobStore>) -> Result<App> {
        Self::open_with_clock(config, store, Arc::new(SystemClock))
    }

    pub fn open_with_clock(config: Config, store: Arc<dyn BlobStore>, clock: Arc<dyn Clock>) -> Result<App> {
        let dir = &config.storage.data_dir;
        std::fs::create_dir_all(dir).context("create data directory")?;
        owner_only(dir)?;
        let db = match config.database.url.as_str() {
            "" => Db::open(&dir.join("mcr.db"))?,
            url => {
                let password = match config.database.password_file.as_str() {
                    "" => None,
                    path => Some(std::fs::read_to_string(path).context("read database.password_file")?),
                };
                let ca = match config.database.ca_file.as_str() {
                    "" => None,
                    path => Some(std::fs::read(path).context("read database.ca_file")?),
                };
                Db::open_postgres(url, password.as_deref().map(str::trim), ca.as_deref(), dir)?
            }
        };
        let mut fresh = [0u8; 16];
        getrandom::fill(&mut fresh)
            .map_err(|e| Error::Internal(anyhow::anyhow!("random registry id: {e}")))?;
        let registry_id = db.write(|tx| crate::db::admin::registry_id(tx, &crate::model::to_hex(&fresh)))?;
        store.claim(&registry_id)?;
        let key_path = audit_key_path(&config);
        let keyed_before = db.version_at_open() >= 4
            && (crate::audit::has_keyed_rows(&db)? || db.read(crate::db::audit::head)?.is_some());
        let checkpoint_exists = std::fs::symlink_metadata(dir.join("audit.checkpoint")).is_ok();
        if std::fs::symlink_metadata(&key_path).is_err() && (keyed_before || checkpoint_exists) {
            // A new key would make every keyed row look forged, and hide
            // which were: refuse instead.
            return Err(Error::Internal(anyhow::anyhow!(
                "the audit log was written under the key {} and that file is gone; restore it (from a backup of \
                 the data directory) before starting mcr",
                key_path.display()
            )));
        }
        let (audit_key, key_is_new) = key_file(&key_path)?;
        let ui_key = if db.is_shared() {
            // Replicas share the database, hence the audit key; a UI form
            // made by one replica must pass the CSRF check of another.
            let check = derive(&audit_key, b"mcr audit key check");
            let recorded =
                db.write(|tx| crate::db::admin::audit_key_check(tx, &crate::model::to_hex(&check)))?;
            if recorded != crate::model::to_hex(&check) {
                return Err(Error::Internal(anyhow::anyhow!(
                    "the audit key {} is not the key the shared database's audit chain is written with: give every \
                     replica the same key (audit.key_file)",
                    key_path.display()
                )));
            }
            derive(&audit_key, b"mcr ui csrf key")
        } else {
            key_file(&dir.join("ui-csrf.key"))?.0
        };
        crate::audit::install_key(db.path(), audit_key);
        // A replica's first start on a shared chain that others already
        // write: its checkpoint begins at the head (the other replicas'
        // checkpoints guard what came before), before anything looks for
        // it; a marker keeps a later loss of the file visible.
        let marker = dir.join("replica-joined");
        let joining = db.is_shared() && !checkpoint_exists && std::fs::symlink_metadata(&marker).is_err();
        if joining && db.read(crate::db::audit::keyed_from)?.is_some() {
            crate::audit::reanchor_checkpoint(&db)?;
            log::info!("audit checkpoint of this replica started at the shared chain's head");
        }
        crate::audit::anchor(&db, clock.now(), db.version_at_open(), key_is_new)?;
        if joining {
            std::fs::write(&marker, b"").context("write replica marker")?;
        }
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
        if db.is_shared() {
            auth.share_logins();
        }
        let mut name = [0u8; 8];
        getrandom::fill(&mut name)
            .map_err(|e| Error::Internal(anyhow::anyhow!("random replica name: {e}")))?;
        let logins = SharedLogins {
            replica: crate::model::to_hex(&name),
            replayed: std::sync::atomic::AtomicI64::new(0),
            pruned: std::sync::atomic::AtomicI64::new(0),
        };
        let policy = PolicyEngine::new(db.read(crate::db::policy::rules)?);
        let audit = AuditQueue::start(db.clone()).context("start audit writer")?;
        let blob_locks = Arc::new(BlobLocks::default());
        let gc = Arc::new(Gc::new(crate::gc::Parts {
            db: db.clone(),
            store: store.clone(),
            locks: blob_locks.clone(),
            clock: clock.clone(),
            min_age_secs: config.gc_min_age_secs(),
            delete_untagged: config.gc.delete_untagged,
            uploads_ttl_secs: config.uploads_ttl_secs(),
        }));
        Ok(App {
            config,
            db,
            store,
            clock,
            auth,
            policy,
            audit,
            blob_locks,
            gc,
            uploads: UploadStates::default(),
            ui_key,
            logins,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// The exclusive hold of one process on a data directory (`mcr.lock`,
/// an flock released when the process ends, however it ends): `mcr serve`
/// and the offline `mcr gc`, `reconcile` and `restore` each take it, so none
/// of them runs beside another; `mcr user` and `mcr audit` do not need it.
pub struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    pub fn acquire(data_dir: &std::path::Path, what: &str) -> Result<DirLock> {
        std::fs::create_dir_all(data_dir).context("create data directory")?;
        let path = data_dir.join("mcr.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .context("open data directory lock")?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy(format!(
                "{} is in use by another mcr process (mcr serve, or an offline gc, reconcile or restore); \
                 {what}",
                data_dir.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(e).context("lock data directory"),
        }
    }
}

/// Makes everything under the data directory its owner's alone (files 0600,
/// directories 0700), saying what it changed: an installation from before
/// mcr did so at its first start.
fn owner_only(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let (mut files, mut dirs) = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let meta = std::fs::symlink_metadata(&d).context("stat data directory")?;
        if meta.permissions().mode() & 0o777 != 0o700 {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
                .context("restrict directory")?;
            dirs += 1;
        }
        for e in std::fs::read_dir(&d).context("read data directory")? {
            let e = e.context("read data directory")?;
            // A running server renames and removes files as this scans
            // (`mcr user` works beside it): one gone is nothing to fix.
            let meta = match e.metadata() {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                m => m.context("stat data directory entry")?,
            };
            let t = meta.file_type();
            let owner = std::os::unix::fs::MetadataExt::uid(&meta);
            if owner != rustix::process::getuid().as_raw() || t.is_symlink() {
                return Err(Error::Internal(anyhow::anyhow!(
                    "{} is {} in the data directory; mcr refuses a directory others could have written to \
                     (move it away, or fix ownership, then start again)",
                    e.path().display(),
                    if t.is_symlink() { "a symlink" } else { "owned by another user" }
                )));
            }
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() && meta.permissions().mode() & 0o777 != 0o600 {
                match std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o600)) {
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    r => {
                        r.context("restrict data file")?;
                        files += 1;
                    }
                }
            }
        }
    }
    if files + dirs > 0 {
        log::warn!(
            "data directory made owner-only dir={} files_changed={files} directories_changed={dirs} (files 0600, directories 0700)",
            dir.display()
        );
    }
    Ok(())
}

/// Where the audit key of this configuration lives.
pub fn audit_key_path(config: &Config) -> std::path::PathBuf {
    match config.audit.key_file.as_str() {
        "" => config.storage.data_dir.join("audit.key"),
        path => std::path::PathBuf::from(path),
    }
}

/// The audit key, if it exists (never made here: for checking snapshots).
pub fn existing_audit_key(config: &Config) -> Result<Option<[u8; 32]>> {
    let path = audit_key_path(config);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    key_file(&path).map(|(k, _)| Some(k))
}

/// A 32-byte secret kept in `path` (0600), made on first use: only when
/// the file does not exist. Any other failure to read it is an error (a
/// new key would silently void what the old one signed), and so is a key
/// that is a symlink or not its owner's alone (someone else may know it).
/// Returns the key, and whether it was made now.
/// How soon a replica sees what other replicas changed that it keeps in
/// memory (the policy rules), and shares its login outcomes with them.
pub const SHARED_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

impl App {
    /// Reloads what other replicas may have changed in the shared database
    /// and this process keeps in memory: the policy rules, and the login
    /// throttle (this replica's outcomes out, the others' in).
    pub fn refresh_shared_state(&self) -> Result<()> {
        let rules = self.db.read(crate::db::policy::rules)?;
        self.policy.replace(rules);
        self.share_logins()
    }

    fn share_logins(&self) -> Result<()> {
        use crate::db::logins;
        use std::sync::atomic::Ordering;
        let l = &self.logins;
        let now = self.now();
        let out = self.auth.take_shared();
        let prune = now - l.pruned.load(Ordering::Relaxed) >= 60;
        if !out.is_empty() || prune {
            self.db.write(|tx| {
                for e in &out {
                    logins::insert(tx, &l.replica, e)?;
                }
                if prune {
                    logins::prune(tx, now - LOGIN_EVENTS_KEPT_SECS)?;
                }
                Ok(())
            })?;
            if prune {
                l.pruned.store(now, Ordering::Relaxed);
            }
        }
        const PAGE: usize = 1000;
        loop {
            let after = l.replayed.load(Ordering::Relaxed);
            let page = self.db.read(|c| logins::others_since(c, &l.replica, after, PAGE))?;
            for (id, e) in &page {
                self.auth.replay(e);
                l.replayed.store(*id, Ordering::Relaxed);
            }
            if page.len() < PAGE {
                return Ok(());
            }
        }
    }
}

/// A key of its own for `purpose`, derived from `key` (HMAC-SHA256).
fn derive(key: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    m.update(purpose);
    m.finalize().into_bytes().into()
}

fn key_file(path: &std::path::Path) -> Result<([u8; 32], bool)> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.file_type().is_file() || meta.uid() != rustix::process::getuid().as_raw() {
                return Err(Error::Internal(anyhow::anyhow!(
                    "{} is not a regular file owned by this user; a key someone else placed cannot be trusted",
                    path.display()
                )));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                log::warn!("key file readable by others, restricted path={}", path.display());
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .context("restrict key file")?;
            }
            let bytes = std::fs::read(path).map_err(|e| {
                Error::Internal(anyhow::anyhow!("cannot read key file {}: {e}", path.display()))
            })?;
            let key = bytes
                .try_into()
                .map_err(|_| Error::Internal(anyhow::anyhow!("{} is not a 32-byte key", path.display())))?;
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| Error::Internal(anyhow::anyhow!("random key: {e}")))?;
            let tmp = path.with_extension("partial");
            let _ = std::fs::remove_file(&tmp);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            use std::io::Write as _;
            opts.open(&tmp)
                .and_then(|mut f| f.write_all(&key).and_then(|_| f.sync_all()))
                .context("write key file")?;
            std::fs::rename(&tmp, path).context("put key file in place")?;
            Ok((key, true))
        }
        Err(e) => Err(Error::Internal(anyhow::anyhow!("cannot stat key file {}: {e}", path.display()))),
    }
}

/// Who is asking, from where, under which request id.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub actor: Actor,
    pub req_id: &'a str,
    pub peer: Option<SocketAddr>,
}

impl<'a> Ctx<'a> {
    /// mcr itself acting, with no caller: `name` starts with `system:` and
    /// is what the audit log records (`system:cli` for `mcr user`,
    /// `system:startup`, `system:gc-schedule`).
    pub fn system(app: &'a App, name: &'static str) -> Ctx<'a> {
        debug_assert!(name.starts_with("system:"));
        Ctx { app, actor: Actor::System(name), req_id: "-", peer: None }
    }

    /// An audit event carrying this request's actor and peer.
    pub fn event(&self, event_type: &'static str, outcome: &'static str) -> Event {
        Event {
            actor: match &self.actor {
                Actor::Anonymous => None,
                Actor::User(p) => Some(p.username.clone()),
                Actor::System(name) => Some(name.to_string()),
            },
            peer: self.peer.map(|p| p.to_string()),
            ..Event::new(event_type, outcome)
        }
    }

    /// Queues the event of a read that succeeded: `Unavailable` (503)
    /// when the audit log cannot take it, so no read goes unrecorded.
    pub fn audit_async(&self, ev: Event) -> crate::error::Result<()> {
        self.app.audit.send(ev, self.app.now())
    }

    /// Queues the event of something that stands whether or not the event
    /// is taken (a refusal, a logout); a full queue is logged by the queue.
    pub fn audit_anyway(&self, ev: Event) {
        let _ = self.app.audit.send(ev, self.app.now());
    }
}
