//! All SQL: per-thread connections to SQLite (the embedded default) or
//! PostgreSQL (replicas), migrations, and one module per table group.
//!
//! Invariant: no SQL outside `db`; functions return `Option` for "absent"
//! and the service decides what that means.  Every multi-row change runs in
//! one transaction that holds the database's write lock (`Db::write`:
//! SQLite's `IMMEDIATE`, PostgreSQL's transaction-scoped advisory lock), so
//! writers are serialized the same way on both engines, across replicas
//! too.  The modules write the SQL both engines accept (`?N` parameters,
//! `ON CONFLICT`, `RETURNING`); `pg` translates the parameters.

pub mod admin;
pub mod audit;
pub mod blobs;
pub mod gc;
pub mod logins;
pub mod manifests;
mod migrate;
mod pg;
pub mod policy;
pub mod repos;
pub mod snapshot;
pub mod tags;
pub mod ui;
pub mod uploads;
pub mod users;

use crate::error::{Context, Result};
use parking_lot::Mutex;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A connection lent to a `Db::read` closure: the functions of `db` take it;
/// nothing outside `db` can reach the engine's connection inside.
pub struct Conn<'a> {
    raw: Raw<'a>,
}

#[derive(Clone, Copy)]
enum Raw<'a> {
    Lite(&'a Connection),
    Pg(&'a RefCell<pg::PgConn>, &'a str),
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

/// A value bound to a statement's parameter; `args!` makes a list of them.
enum Arg<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// A Rust value that binds as a parameter (integers as 64-bit, booleans as
/// 0/1, text, bytes, and `None` as NULL).
trait ToArg {
    fn arg(&self) -> Arg<'_>;
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn arg(&self) -> Arg<'_> {
                Arg::Int(*self as i64)
            }
        }
    )*};
}
int_arg!(i64, i32, u32, u64, usize);

impl ToArg for bool {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(*self as i64)
    }
}
impl ToArg for str {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}
impl ToArg for String {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}
impl ToArg for [u8] {
    fn arg(&self) -> Arg<'_> {
        Arg::Bytes(self)
    }
}
impl ToArg for Vec<u8> {
    fn arg(&self) -> Arg<'_> {
        Arg::Bytes(self)
    }
}
impl<T: ToArg + ?Sized> ToArg for &T {
    fn arg(&self) -> Arg<'_> {
        (**self).arg()
    }
}
impl<T: ToArg> ToArg for Option<T> {
    fn arg(&self) -> Arg<'_> {
        self.as_ref().map_or(Arg::Null, ToArg::arg)
    }
}

/// The parameters of one statement, bound in order to `?1`, `?2`, ….
macro_rules! args {
    ($($x:expr),* $(,)?) => {
        &[$(&$x as &dyn $crate::db::ToArg),*][..]
    };
}
use args;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Arg::Null => ValueRef::Null,
            Arg::Int(v) => ValueRef::Integer(*v),
            Arg::Text(t) => ValueRef::Text(t.as_bytes()),
            Arg::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

/// One result row, read by column index with `get`.
enum Row<'r> {
    Lite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

/// A column type `Row::get` reads.
trait Column: Sized {
    fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self>;
    fn pg(r: &postgres::Row, i: usize) -> Result<Self>;
}

macro_rules! column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self> {
                r.get(i)
            }
            fn pg(r: &postgres::Row, i: usize) -> Result<Self> {
                r.try_get(i).context("read column")
            }
        }
    )*};
}
column!(String, Vec<u8>, Option<String>);

impl Column for i64 {
    fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self> {
        pg::int(r, i)?.ok_or_else(|| crate::error::Error::Internal(anyhow::anyhow!("read column: NULL")))
    }
}
impl Column for Option<i64> {
    fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self> {
        pg::int(r, i)
    }
}
impl Column for bool {
    fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self> {
        Ok(r.get::<_, i64>(i)? != 0)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self> {
        Ok(i64::pg(r, i)? != 0)
    }
}
impl Column for u64 {
    fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self> {
        Ok(r.get::<_, i64>(i)?.max(0) as u64)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self> {
        Ok(i64::pg(r, i)?.max(0) as u64)
    }
}

impl Row<'_> {
    fn get<T: Column>(&self, i: usize) -> Result<T> {
        match self {
            Row::Lite(r) => T::lite(r, i).context("read column"),
            Row::Pg(r) => T::pg(r, i),
        }
    }
}

/// The statements `db`'s modules run, private to `db`: every one names
/// what it does (for the error) and binds `args!`.
impl Conn<'_> {
    /// Runs a statement that returns no rows; returns the rows changed.
    fn exec(&self, what: &'static str, sql: &str, args: &[&dyn ToArg]) -> Result<usize> {
        let bound: Vec<Arg> = args.iter().map(|a| a.arg()).collect();
        match self.raw {
            Raw::Lite(c) => c
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(rusqlite::params_from_iter(bound.iter())))
                .lite(what),
            Raw::Pg(c, _) => c.borrow_mut().exec(what, sql, &bound),
        }
    }

    /// The first row's `f`, or `None` when there is no row.
    fn one<T>(
        &self,
        what: &'static str,
        sql: &str,
        args: &[&dyn ToArg],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut f = Some(f);
        let mut out = None;
        self.each(what, sql, args, |r| {
            out = Some((f.take().expect("called once"))(r)?);
            Ok(false)
        })?;
        Ok(out)
    }

    /// `f` of every row, collected.
    fn all<T>(
        &self,
        what: &'static str,
        sql: &str,
        args: &[&dyn ToArg],
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each(what, sql, args, |r| {
            out.push(f(r)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `f` on every row without holding them all; stops when `f`
    /// returns false.
    fn each(
        &self,
        what: &'static str,
        sql: &str,
        args: &[&dyn ToArg],
        mut f: impl FnMut(&Row) -> Result<bool>,
    ) -> Result<()> {
        let bound: Vec<Arg> = args.iter().map(|a| a.arg()).collect();
        match self.raw {
            Raw::Lite(c) => {
                let mut s = c.prepare_cached(sql).lite(what)?;
                let mut rows = s.query(rusqlite::params_from_iter(bound.iter())).lite(what)?;
                while let Some(r) = rows.next().lite(what)? {
                    if !f(&Row::Lite(r))? {
                        break;
                    }
                }
                Ok(())
            }
            Raw::Pg(c, _) => c.borrow_mut().each(what, sql, &bound, &mut |r| f(&Row::Pg(r))),
        }
    }

    /// The SQLite connection, for what only SQLite has (its schema table,
    /// its backup API); `None` on PostgreSQL.
    fn lite(&self) -> Option<&Connection> {
        match self.raw {
            Raw::Lite(c) => Some(c),
            Raw::Pg(..) => None,
        }
    }

    /// Triggers and rules on PostgreSQL (none of them mcr's); nothing on
    /// SQLite, whose schema `audit::foreign_schema` compares itself.
    fn pg_foreign_objects(&self) -> Result<Vec<String>> {
        match self.raw {
            Raw::Pg(c, _) => pg::foreign_objects(&mut c.borrow_mut()),
            Raw::Lite(_) => Ok(Vec::new()),
        }
    }

    /// The database's name: the SQLite file, or PostgreSQL's address and
    /// database (no password).
    fn path(&self) -> Option<&str> {
        match self.raw {
            Raw::Lite(c) => c.path(),
            Raw::Pg(_, name) => Some(name),
        }
    }
}

/// A handle on the metadata database; cheap to clone, connections are opened
/// lazily: SQLite's are shared by every thread through a small pool of idle
/// ones, PostgreSQL's stay with the thread that opened them (a session
/// advisory lock lives on its connection, see `lock_digest`).
#[derive(Clone, Debug)]
pub struct Db {
    engine: Arc<Engine>,
    /// Distinguishes two `Db`s opened on the same path (a restore replaces
    /// the file), so a thread never reuses a connection to an old file.
    instance: u64,
    /// The schema version the database had when this handle opened it (0: new).
    version_at_open: i64,
}

#[derive(Debug)]
enum Engine {
    /// The file, and its idle connections (at most `IDLE_LITE`).
    Lite(PathBuf, Mutex<Vec<Connection>>),
    /// The database, and this replica's data directory (its keys and the
    /// audit checkpoint stay local).
    Pg(Box<pg::Target>, PathBuf),
}

static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// SQLite's errors: a lock not granted within the busy timeout is
/// `Unavailable` (a 503 the client retries, and a batch the audit writer
/// writes again), never a 500.
trait Lite<T> {
    fn lite(self, what: &'static str) -> Result<T>;
}

impl<T> Lite<T> for rusqlite::Result<T> {
    fn lite(self, what: &'static str) -> Result<T> {
        self.map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                crate::error::Error::Unavailable(format!("database busy: {what}"))
            }
            _ => crate::error::Error::Internal(anyhow::Error::from(e).context(what)),
        })
    }
}

/// SQLite connections kept open while idle.  A connection costs ~270 KiB
/// (page cache, lookaside, parsed schema, cached statements); with one per
/// worker thread, 32 of them were 8.5 MiB, most of the server's heap.  A
/// call holds its connection for tens of microseconds, so a handful
/// serves every worker; a burst beyond them opens more and closes the
/// extra ones as they come back.  Four idle: on a busy two-core machine
/// (64 clients) more than four were rarely in use at once.
const IDLE_LITE: usize = 4;

/// A connection taken for one call.
enum Cached {
    Lite(Connection),
    Pg(Box<pg::PgConn>),
}

/// A thread's PostgreSQL connections.  A client closes through its own
/// small runtime, whose thread-locals may already be gone when the
/// thread's are destroyed: that panic is contained here (the socket closes
/// as the client unwinds), since a panic out of a thread-local destructor
/// aborts the process.
struct Conns(Vec<(u64, pg::PgConn)>);

impl Drop for Conns {
    fn drop(&mut self) {
        for (_, pg) in self.0.drain(..) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(pg)));
        }
    }
}

thread_local! {
    static CONNS: RefCell<Conns> = const { RefCell::new(Conns(Vec::new())) };
}

impl Db {
    /// Opens (creating if needed) and migrates the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Db> {
        let mut db = Db {
            engine: Arc::new(Engine::Lite(path.to_path_buf(), Mutex::new(Vec::new()))),
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            version_at_open: 0,
        };
        let mut conn = db.connect_lite(path)?;
        conn.pragma_update(None, "journal_mode", "WAL").context("enable WAL")?;
        db.version_at_open = migrate::run(&mut conn)?;
        db.put_back(Cached::Lite(conn));
        Ok(db)
    }

    /// Connects to PostgreSQL at `url` (`password`, when given, instead of
    /// one in the URL; TLS 1.3 with `ca_pem` as the only trusted CAs, when
    /// given) and migrates it; replicas sharing the database take turns
    /// migrating.
    pub fn open_postgres(
        url: &str,
        password: Option<&str>,
        ca_pem: Option<&[u8]>,
        data_dir: &Path,
    ) -> Result<Db> {
        let target = pg::Target::parse(url, password, ca_pem)?;
        let mut conn = pg::PgConn::connect(&target)?;
        let version_at_open = pg::migrate(&mut conn)?;
        let db = Db {
            engine: Arc::new(Engine::Pg(Box::new(target), data_dir.to_path_buf())),
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            version_at_open,
        };
        db.put_back(Cached::Pg(Box::new(conn)));
        Ok(db)
    }

    /// The schema version the database had before this handle migrated it
    /// (0: a new database).
    pub fn version_at_open(&self) -> i64 {
        self.version_at_open
    }

    /// The SQLite file, or a name for the PostgreSQL database (its address,
    /// no password): what the audit key is installed under.
    pub fn path(&self) -> &Path {
        match &*self.engine {
            Engine::Lite(p, _) => p,
            Engine::Pg(t, _) => Path::new(t.name()),
        }
    }

    /// The directory of this process's own files beside the database (the
    /// audit checkpoint): the SQLite file's, or the data directory.
    pub fn local_dir(&self) -> &Path {
        match &*self.engine {
            Engine::Lite(p, _) => p.parent().unwrap_or(Path::new(".")),
            Engine::Pg(_, dir) => dir,
        }
    }

    /// True on PostgreSQL (shared by replicas), false on SQLite.
    pub fn is_shared(&self) -> bool {
        matches!(&*self.engine, Engine::Pg(..))
    }

    fn connect_lite(&self, path: &Path) -> Result<Connection> {
        let conn = Connection::open(path).context("open database")?;
        conn.busy_timeout(Duration::from_secs(10)).context("set busy timeout")?;
        // Without the query planner stability guarantee, SQLite marks a
        // statement to be prepared again whenever a parameter it planned
        // around is bound anew: every `LIMIT ?` and every id that is 0 or 1
        // (the first repository).  rusqlite clears a cached statement's
        // bindings when it returns, so each such query was parsed and
        // planned again on every call (a tag list's rate: +3% without
        // that).  Our queries have no plan that depends on a value.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).context("enable QPSG")?;
        conn.execute_batch(
            // A small page cache (64 KiB) per connection: the OS page cache
            // already holds the file, and any write by another connection
            // (an audit event per pull) empties it at this connection's
            // next read anyway.  Set first: the first statement that reads
            // the schema allocates the cache's initial pages at its size.
            "PRAGMA cache_size = -64; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
             PRAGMA temp_store = MEMORY;",
        )
        .context("set connection pragmas")?;
        Ok(conn)
    }

    /// Takes an idle connection (SQLite: any thread's; PostgreSQL: this
    /// thread's) or opens one, so that a nested call simply opens a second
    /// connection instead of panicking.
    fn take(&self) -> Result<Cached> {
        match &*self.engine {
            Engine::Lite(path, idle) => {
                let conn = idle.lock().pop();
                Ok(Cached::Lite(match conn {
                    Some(c) => c,
                    None => self.connect_lite(path)?,
                }))
            }
            Engine::Pg(t, _) => {
                let cached = CONNS.with(|c| {
                    let v = &mut c.borrow_mut().0;
                    v.iter().position(|(i, _)| *i == self.instance).map(|pos| v.swap_remove(pos).1)
                });
                Ok(Cached::Pg(Box::new(match cached {
                    Some(c) => c.fresh(t)?,
                    None => pg::PgConn::connect(t)?,
                })))
            }
        }
    }

    fn put_back(&self, conn: Cached) {
        match (conn, &*self.engine) {
            (Cached::Lite(c), Engine::Lite(_, idle)) => {
                // One left inside a transaction (or a statement) is closed.
                let mut idle = idle.lock();
                if idle.len() < IDLE_LITE && c.is_autocommit() && !c.is_busy() {
                    idle.push(c);
                }
            }
            // A PostgreSQL connection the server closed (a restart) is
            // dropped: the next call reconnects.
            (Cached::Pg(c), Engine::Pg(..)) if !c.is_closed() => CONNS.with(|cs| {
                let v = &mut cs.borrow_mut().0;
                if !v.iter().any(|(i, _)| *i == self.instance) {
                    v.push((self.instance, *c));
                }
            }),
            _ => {}
        }
    }

    /// Runs `f` on this thread's connection (reads, single statements).
    pub fn read<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        match self.take()? {
            Cached::Lite(conn) => {
                let r = f(&Conn { raw: Raw::Lite(&conn) });
                self.put_back(Cached::Lite(conn));
                r
            }
            Cached::Pg(conn) => {
                let cell = RefCell::new(*conn);
                let name = self.path().to_string_lossy().into_owned();
                let r = f(&Conn { raw: Raw::Pg(&cell, &name) });
                self.put_back(Cached::Pg(Box::new(cell.into_inner())));
                r
            }
        }
    }

    /// Runs `f` in one transaction holding the write lock; commits when it
    /// returns Ok.
    pub fn write<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        match self.take()? {
            Cached::Lite(mut conn) => {
                let r = (|| {
                    let tx = conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .lite("begin transaction")?;
                    let v = f(&Tx { conn: Conn { raw: Raw::Lite(&tx) } })?;
                    tx.commit().lite("commit transaction")?;
                    Ok(v)
                })();
                self.put_back(Cached::Lite(conn));
                r
            }
            Cached::Pg(conn) => {
                let cell = RefCell::new(*conn);
                let name = self.path().to_string_lossy().into_owned();
                let r = (|| {
                    cell.borrow_mut().begin_write()?;
                    let v = f(&Tx { conn: Conn { raw: Raw::Pg(&cell, &name) } });
                    match v {
                        Ok(v) => {
                            cell.borrow_mut().commit()?;
                            Ok(v)
                        }
                        Err(e) => {
                            cell.borrow_mut().rollback();
                            Err(e)
                        }
                    }
                })();
                self.put_back(Cached::Pg(Box::new(cell.into_inner())));
                r
            }
        }
    }

    /// Closes this thread's cached PostgreSQL connection (tests and
    /// shutdown; SQLite's idle connections belong to no thread).
    pub fn close_thread_connection(&self) {
        CONNS.with(|c| c.borrow_mut().0.retain(|(i, _)| *i != self.instance));
    }

    /// A registry-wide lease for one garbage collection: on PostgreSQL a
    /// session advisory lock on a connection of its own (one GC across all
    /// replicas; released when the guard drops or the process dies); on
    /// SQLite the data directory's lock already makes mcr the only process.
    /// `None` when another replica holds it.
    pub fn gc_lease(&self) -> Result<Option<GcLease>> {
        match &*self.engine {
            Engine::Lite(..) => Ok(Some(GcLease { _pg: None })),
            Engine::Pg(t, _) => Ok(pg::PgConn::lease(t, pg::GC_LOCK)?.map(|c| GcLease { _pg: Some(c) })),
        }
    }
}

impl Db {
    /// Locks `digest` across every process sharing the database (committing
    /// a blob and collecting it hold it, as they hold `BlobLocks` within one
    /// process): a PostgreSQL session advisory lock on this thread's
    /// connection, released when the guard drops on this thread; nothing on
    /// SQLite, where one process owns the database.
    pub fn lock_digest(&self, digest_hex: &str) -> Result<SharedLock> {
        if !self.is_shared() {
            return Ok(SharedLock { db: None, key: 0 });
        }
        let key = pg::digest_key(digest_hex);
        self.read(|c| c.exec("lock digest", "SELECT pg_advisory_lock(?1)", args![key]))?;
        Ok(SharedLock { db: Some(self.clone()), key })
    }
}

impl Db {
    /// Locks upload session `id` across every process sharing the database,
    /// as `UploadStates` does within one: two replicas never append to, or
    /// finish and cancel, the same session at once.  Nothing on SQLite.
    ///
    /// The wait is bounded (`UPLOAD_LOCK_WAIT`): a session another replica
    /// is streaming a body into is `Busy` (the client retries), never a
    /// worker parked behind a client that stopped sending.
    pub fn lock_upload(&self, id: &str) -> Result<SharedLock> {
        if !self.is_shared() {
            return Ok(SharedLock { db: None, key: 0 });
        }
        let key = pg::name_key(id);
        let deadline = std::time::Instant::now() + UPLOAD_LOCK_WAIT;
        loop {
            let got = self.read(|c| {
                c.one("lock upload", "SELECT pg_try_advisory_lock(?1)", args![key], |r| r.get::<bool>(0))
            })?;
            if got == Some(true) {
                return Ok(SharedLock { db: Some(self.clone()), key });
            }
            if std::time::Instant::now() >= deadline {
                return Err(crate::error::Error::Busy(
                    "another request on this upload session is in progress; retry".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// How long a request waits for an upload session another replica works on.
pub const UPLOAD_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Held while a blob is committed or collected (see `Db::lock_digest`), or
/// while an upload session is worked on (`Db::lock_upload`).
pub struct SharedLock {
    db: Option<Db>,
    key: i64,
}

impl Drop for SharedLock {
    fn drop(&mut self) {
        if let Some(db) = &self.db {
            let key = self.key;
            // A connection that broke since released the lock with it.
            let _ = db.read(|c| c.exec("unlock digest", "SELECT pg_advisory_unlock(?1)", args![key]));
        }
    }
}

/// Held while a garbage collection runs (see `Db::gc_lease`).
pub struct GcLease {
    _pg: Option<pg::PgConn>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_statement_is_not_prepared_again_for_new_values() {
        // `LIMIT ?` and an id of 1 made SQLite prepare these statements
        // again each time they were bound (rusqlite clears the bindings of a
        // cached statement): the query planner stability guarantee is on.
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        db.read(|c| {
            let lite = c.lite().unwrap();
            let sqls = [
                (
                    "SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2",
                    [0i64, 1, 100, 1, 7],
                ),
                ("SELECT name FROM tags WHERE repo_id = ?1 AND name = 'x'", [1, 2, 1, 0, 5]),
            ];
            for (sql, values) in sqls {
                for v in values {
                    let mut st = lite.prepare_cached(sql).unwrap();
                    let n = st.parameter_count();
                    let params: Vec<rusqlite::types::Value> = (0..n)
                        .map(|i| if n == 2 && i == 0 { "a".to_string().into() } else { v.into() })
                        .collect();
                    st.query(rusqlite::params_from_iter(params)).unwrap().next().unwrap();
                    let again = st.get_status(rusqlite::StatementStatus::RePrepare);
                    assert_eq!(again, 0, "{sql} prepared again for {v}");
                }
            }
            Ok(())
        })
        .unwrap();
    }
}
