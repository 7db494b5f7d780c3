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
struct Row<'r> {
    lite: &'r rusqlite::Row<'r>,
}

/// A column type `Row::get` reads.
trait Column: Sized {
    fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self>;
}

macro_rules! lite_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self> {
                r.get(i)
            }
        }
    )*};
}
lite_column!(i64, String, Vec<u8>, Option<i64>, Option<String>);

impl Column for bool {
    fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self> {
        Ok(r.get::<_, i64>(i)? != 0)
    }
}
impl Column for u64 {
    fn lite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self> {
        Ok(r.get::<_, i64>(i)?.max(0) as u64)
    }
}

impl Row<'_> {
    fn get<T: Column>(&self, i: usize) -> Result<T> {
        T::lite(self.lite, i).context("read column")
    }
}

/// The statements `db`'s modules run, private to `db`: every one names
/// what it does (for the error) and binds `args!`.
impl Conn<'_> {
    /// Runs a statement that returns no rows; returns the rows changed.
    fn exec(&self, what: &'static str, sql: &str, args: &[&dyn ToArg]) -> Result<usize> {
        let bound: Vec<Arg> = args.iter().map(|a| a.arg()).collect();
        self.raw
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(bound.iter())))
            .context(what)
    }

    /// The first row's `f`, or `None` when there is no row.
    fn one<T>(
        &self,
        what: &'static str,
        sql: &str,
        args: &[&dyn ToArg],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let bound: Vec<Arg> = args.iter().map(|a| a.arg()).collect();
        let mut s = self.raw.prepare_cached(sql).context(what)?;
        let mut rows = s.query(rusqlite::params_from_iter(bound.iter())).context(what)?;
        match rows.next().context(what)? {
            Some(r) => f(&Row { lite: r }).map(Some),
            None => Ok(None),
        }
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
        let mut s = self.raw.prepare_cached(sql).context(what)?;
        let mut rows = s.query(rusqlite::params_from_iter(bound.iter())).context(what)?;
        while let Some(r) = rows.next().context(what)? {
            if !f(&Row { lite: r })? {
                break;
            }
        }
        Ok(())
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
