//! All SQL: per-thread SQLite connections, migrations, and one module per
//! table group.
//!
//! Invariant: no SQL outside `db`; functions return `Option` for "absent"
//! and the service decides what that means.  Every multi-row change runs in
//! one `IMMEDIATE` transaction (`Db::write`).

pub mod admin;
pub mod audit;
pub mod blobs;
pub mod gc;
pub mod manifests;
mod migrate;
pub mod policy;
pub mod repos;
pub mod snapshot;
pub mod tags;
pub mod ui;
pub mod uploads;
pub mod users;

use crate::error::{Context, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A connection lent to a `Db::read` closure: the functions of `db` take it;
/// nothing outside `db` can reach the SQLite connection inside.
pub struct Conn<'a> {
    raw: &'a Connection,
}

/// The open `IMMEDIATE` transaction of a `Db::write` closure. It reads like a
/// `Conn` (it derefs to one); the functions that change rows take a `Tx`,
/// so a change cannot run outside a transaction.
pub struct Tx<'a> {
    conn: Conn<'a>,
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = Conn<'a>;
    fn deref(&self) -> &Conn<'a> {
        &self.conn
    }
}

/// The few rusqlite calls `db`'s modules make, private to `db`.
impl Conn<'_> {
    fn prepare_cached(&self, sql: &str) -> rusqlite::Result<rusqlite::CachedStatement<'_>> {
        self.raw.prepare_cached(sql)
    }
    fn prepare(&self, sql: &str) -> rusqlite::Result<rusqlite::Statement<'_>> {
        self.raw.prepare(sql)
    }
    fn execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.raw.execute(sql, params)
    }
    fn query_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.raw.query_row(sql, params, f)
    }
    fn last_insert_rowid(&self) -> i64 {
        self.raw.last_insert_rowid()
    }
    fn path(&self) -> Option<&str> {
        self.raw.path()
    }
}

/// A handle on the metadata database; cheap to clone, connections are opened
/// lazily, one per thread.
#[derive(Clone, Debug)]
pub struct Db {
    path: PathBuf,
    /// Distinguishes two `Db`s opened on the same path (a restore replaces
    /// the file), so a thread never reuses a connection to an old file.
    instance: u64,
    /// The schema version the file had when this handle opened it (0: new).
    version_at_open: i64,
}

static INSTANCES: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CONNS: RefCell<Vec<(u64, Connection)>> = const { RefCell::new(Vec::new()) };
}

impl Db {
    /// Opens (creating if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<Db> {
        let mut db = Db {
            path: path.to_path_buf(),
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            version_at_open: 0,
        };
        let mut conn = db.connect()?;
        conn.pragma_update(None, "journal_mode", "WAL").context("enable WAL")?;
        db.version_at_open = migrate::run(&mut conn)?;
        db.put_back(conn);
        Ok(db)
    }

    /// The schema version the file had before this handle migrated it (0:
    /// a new database).
    pub fn version_at_open(&self) -> i64 {
        self.version_at_open
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path).context("open database")?;
        conn.busy_timeout(Duration::from_secs(10)).context("set busy timeout")?;
        conn.execute_batch(
            // A small page cache (128 KiB) per connection: there is one per
            // worker thread, and the OS page cache already holds the file.
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; \
             PRAGMA cache_size = -128;",
        )
        .context("set connection pragmas")?;
        Ok(conn)
    }

    /// Takes this thread's connection out of the cache (or opens one), so that
    /// a nested call simply opens a second connection instead of panicking.
    fn take(&self) -> Result<Connection> {
        let cached = CONNS.with(|c| {
            let mut v = c.borrow_mut();
            v.iter().position(|(i, _)| *i == self.instance).map(|pos| v.swap_remove(pos).1)
        });
        match cached {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    fn put_back(&self, conn: Connection) {
        CONNS.with(|c| {
            let mut v = c.borrow_mut();
            if !v.iter().any(|(i, _)| *i == self.instance) {
                v.push((self.instance, conn));
            }
        });
    }

    /// Runs `f` on this thread's connection (reads, single statements).
    pub fn read<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        let conn = self.take()?;
        let r = f(&Conn { raw: &conn });
        self.put_back(conn);
        r
    }

    /// Runs `f` in one IMMEDIATE transaction; commits when it returns Ok.
    pub fn write<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let mut conn = self.take()?;
        let r = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .context("begin transaction")?;
            let v = f(&Tx { conn: Conn { raw: &tx } })?;
            tx.commit().context("commit transaction")?;
            Ok(v)
        })();
        self.put_back(conn);
        r
    }

    /// Closes this thread's cached connection (tests and shutdown).
    pub fn close_thread_connection(&self) {
        CONNS.with(|c| c.borrow_mut().retain(|(i, _)| *i != self.instance));
    }
}

/// Maps rusqlite errors into `Internal` with a note on the statement.
trait Sql<T> {
    fn sql(self, what: &'static str) -> Result<T>;
}

impl<T> Sql<T> for rusqlite::Result<T> {
    fn sql(self, what: &'static str) -> Result<T> {
        self.context(what)
    }
}

/// `Ok(None)` for "no row", other errors as `Internal`.
fn optional<T>(r: rusqlite::Result<T>, what: &'static str) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e).context(what),
    }
}
