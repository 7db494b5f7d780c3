//! The PostgreSQL engine: per-thread clients of the `postgres` crate (its
//! blocking API), prepared statements cached per connection, the
//! migrations in PostgreSQL's dialect, and the locks that make replicas
//! behave like one SQLite writer.
//!
//! Invariants: the modules' `?N` parameters become `$N` (outside string
//! literals) and nothing else of their SQL changes; every write
//! transaction first takes `WRITE_LOCK` (transaction-scoped), so writers
//! are serialized across replicas exactly as SQLite serializes them; the
//! schema history has the same versions as SQLite's, one script per engine.

use super::{Arg, Result};
use crate::error::{Context, Error};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type};
use std::collections::HashMap;
use std::time::Duration;

/// Advisory lock keys ("mcr" in ASCII, then a number).
pub(super) const WRITE_LOCK: i64 = 0x6d63_7200_0001;
pub(super) const GC_LOCK: i64 = 0x6d63_7200_0002;
const MIGRATE_LOCK: i64 = 0x6d63_7200_0003;

/// Index i holds the SQL that takes the database from version i to i + 1;
/// the same versions as SQLite's migrations.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/pg/1-schema.sql"),
    include_str!("migrations/pg/2-auth.sql"),
    include_str!("migrations/pg/3-ui.sql"),
    include_str!("migrations/pg/4-audit-key.sql"),
    include_str!("migrations/pg/5-registry.sql"),
    include_str!("migrations/pg/6-logins.sql"),
];

/// Where the database is, how to reach it (TLS 1.3 when a CA is given),
/// and a name for it without the password.
pub(super) struct Target {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    name: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({}, tls={})", self.name, self.tls.is_some())
    }
}

/// A TLS 1.3-only client trusting exactly the CAs of `ca_pem`.
fn tls_connector(ca_pem: &[u8]) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let bad = |e: String| Error::Internal(anyhow::anyhow!("database.ca_file: {e}"));
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::outbound::tls13_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Target {
    pub(super) fn parse(url: &str, password: Option<&str>, ca_pem: Option<&[u8]>) -> Result<Target> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| Error::Internal(anyhow::anyhow!("database.url is not a PostgreSQL URL: {e}")))?;
        let tls = match ca_pem {
            Some(pem) => {
                // With a CA, TLS is required, never merely preferred.
                config.ssl_mode(postgres::config::SslMode::Require);
                Some(tls_connector(pem)?)
            }
            None if config.get_ssl_mode() == postgres::config::SslMode::Require => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "database.url asks for sslmode=require: set database.ca_file to the CA of the server's certificate"
                )))
            }
            None => {
                config.ssl_mode(postgres::config::SslMode::Disable);
                None
            }
        };
        if let Some(p) = password {
            config.password(p);
        }
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("mcr");
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(s) => s.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let name = format!("postgres://{}:{port}/{}", hosts.join(","), config.get_dbname().unwrap_or(""));
        Ok(Target { config, tls, name })
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

/// A thread that ends closes its PostgreSQL client from its thread-local
/// destructor, where the client's runtime context is already gone: tokio
/// panics, `db::Conns` contains it, and this hook keeps that one known
/// message out of the log (every other panic is reported as before).
fn quiet_teardown_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if msg.contains("Tokio context thread-local variable has been destroyed") {
                return;
            }
            previous(info);
        }));
    });
}

/// A database that cannot be reached, or is shutting down or out of
/// resources, is a 503 for the client (retry), not a 500.
fn unavailable(what: &str, e: postgres::Error) -> Error {
    let transient = match e.as_db_error() {
        None => true,
        // SQLSTATE classes: 08 connection exception, 53 insufficient
        // resources, 57 operator intervention (shutdown), 58 system error.
        Some(db) => matches!(&db.code().code()[..2], "08" | "53" | "57" | "58"),
    };
    if transient || e.is_closed() {
        Error::Unavailable(format!("database: {what}: {e}"))
    } else {
        Error::Internal(anyhow::Error::new(e).context(what.to_string()))
    }
}

pub(super) struct PgConn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    /// When this connection last answered (see `fresh`).
    used: std::time::Instant,
}

impl PgConn {
    pub(super) fn connect(t: &Target) -> Result<PgConn> {
        quiet_teardown_panics();
        let client = match &t.tls {
            Some(tls) => t.config.connect(tls.clone()),
            None => t.config.connect(postgres::NoTls),
        }
        .map_err(|e| unavailable("connect", e))?;
        Ok(PgConn { client, statements: HashMap::new(), used: std::time::Instant::now() })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// This connection if it still works, else a new one: a connection idle
    /// for a while is checked first (the server may have restarted since),
    /// so a request fails only when the database is really down.
    pub(super) fn fresh(mut self, t: &Target) -> Result<PgConn> {
        if self.used.elapsed() > Duration::from_secs(1)
            && self.client.is_valid(Duration::from_secs(2)).is_err()
        {
            return PgConn::connect(t);
        }
        self.used = std::time::Instant::now();
        Ok(self)
    }

    fn statement(&mut self, what: &str, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&translate(sql)).map_err(|e| unavailable(what, e))?;
        if self.statements.len() >= 512 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(super) fn exec(&mut self, what: &'static str, sql: &str, args: &[Arg]) -> Result<usize> {
        let st = self.statement(what, sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let n = self.client.execute(&st, &params).map_err(|e| unavailable(what, e))?;
        Ok(n as usize)
    }

    pub(super) fn each(
        &mut self,
        what: &'static str,
        sql: &str,
        args: &[Arg],
        f: &mut dyn FnMut(&postgres::Row) -> Result<bool>,
    ) -> Result<()> {
        let st = self.statement(what, sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let mut rows = self.client.query_raw(&st, params).map_err(|e| unavailable(what, e))?;
        while let Some(r) = rows.next().map_err(|e| unavailable(what, e))? {
            if !f(&r)? {
                break;
            }
        }
        Ok(())
    }

    pub(super) fn begin_write(&mut self) -> Result<()> {
        self.client
            .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK});"))
            .map_err(|e| unavailable("begin transaction", e))
    }

    pub(super) fn commit(&mut self) -> Result<()> {
        self.client.batch_execute("COMMIT").map_err(|e| unavailable("commit transaction", e))
    }

    pub(super) fn rollback(&mut self) {
        if let Err(e) = self.client.batch_execute("ROLLBACK") {
            log::warn!("rollback failed err={e}");
        }
    }

    /// A connection of its own holding the session lock `key`; `None` when
    /// another session holds it.
    pub(super) fn lease(t: &Target, key: i64) -> Result<Option<PgConn>> {
        let mut c = PgConn::connect(t)?;
        let row = c
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .map_err(|e| unavailable("take lease", e))?;
        Ok(row.get::<_, bool>(0).then_some(c))
    }
}

/// Migrates to the latest version under a session lock (replicas starting
/// together take turns); returns the version the database had.
pub(super) fn migrate(c: &mut PgConn) -> Result<i64> {
    let cl = &mut c.client;
    let what = "migrate database";
    cl.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATE_LOCK})"))
        .map_err(|e| unavailable(what, e))?;
    let r = (|| {
        let exists: bool = cl
            .query_one("SELECT to_regclass('mcr_schema') IS NOT NULL", &[])
            .map_err(|e| unavailable(what, e))?
            .get(0);
        if !exists {
            cl.batch_execute("CREATE TABLE mcr_schema (version BIGINT NOT NULL)")
                .map_err(|e| unavailable(what, e))?;
        }
        let version: i64 =
            match cl.query_opt("SELECT version FROM mcr_schema", &[]).map_err(|e| unavailable(what, e))? {
                Some(row) => row.get(0),
                None => {
                    cl.execute("INSERT INTO mcr_schema(version) VALUES (0)", &[])
                        .map_err(|e| unavailable(what, e))?;
                    0
                }
            };
        let latest = MIGRATIONS.len() as i64;
        if version > latest {
            return Err(Error::Internal(anyhow::anyhow!(
                "database schema version {version} is newer than this mcr ({latest}); refusing to touch it"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let mut tx = cl.transaction().map_err(|e| unavailable(what, e))?;
            tx.batch_execute(sql).map_err(|e| unavailable(what, e))?;
            tx.execute("UPDATE mcr_schema SET version = $1", &[&((i + 1) as i64)])
                .map_err(|e| unavailable(what, e))?;
            tx.commit().map_err(|e| unavailable(what, e))?;
            log::info!("schema migrated engine=postgresql version={}", i + 1);
        }
        Ok(version)
    })();
    let unlock = cl.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATE_LOCK})"));
    let version = r?;
    unlock.map_err(|e| unavailable(what, e))?;
    Ok(version)
}

/// Triggers and rules on mcr's tables: nothing of mcr's makes any, and one
/// could hide or rewrite audit rows (the counterpart of SQLite's schema
/// comparison).
pub(super) fn foreign_objects(c: &mut PgConn) -> Result<Vec<String>> {
    let what = "read schema";
    let rows = c
        .client
        .query(
            "SELECT 'trigger ' || tgname FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
               JOIN pg_namespace n ON n.oid = r.relnamespace
              WHERE NOT t.tgisinternal AND n.nspname = current_schema()
             UNION ALL
             SELECT 'rule ' || rulename FROM pg_rules WHERE schemaname = current_schema()",
            &[],
        )
        .map_err(|e| unavailable(what, e))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// An integer column of any width (and booleans as 0/1).
pub(super) fn int(r: &postgres::Row, i: usize) -> Result<Option<i64>> {
    let ty = r
        .columns()
        .get(i)
        .map(|c| c.type_().clone())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("read column: no column {i}")))?;
    let v = match ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i),
        Type::INT4 => r.try_get::<_, Option<i32>>(i).map(|v| v.map(i64::from)),
        Type::INT2 => r.try_get::<_, Option<i16>>(i).map(|v| v.map(i64::from)),
        Type::BOOL => r.try_get::<_, Option<bool>>(i).map(|v| v.map(i64::from)),
        other => return Err(Error::Internal(anyhow::anyhow!("read column: {other} is not an integer"))),
    };
    v.context("read column")
}

/// The advisory lock key of a digest: its first 60 bits, in a namespace of
/// their own (the top nibble), apart from the fixed keys above.
pub(super) fn digest_key(hex: &str) -> i64 {
    let head = hex.get(..15).and_then(|h| i64::from_str_radix(h, 16).ok()).unwrap_or(0);
    (0x7i64 << 60) | head
}

/// The advisory lock key of an upload session: 60 bits of the SHA-256 of
/// its id, in a namespace of its own (top nibble 5).
pub(super) fn name_key(id: &str) -> i64 {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    (0x5i64 << 60) | (i64::from_be_bytes(b) & 0x0fff_ffff_ffff_ffff)
}

/// `?N` → `$N` outside quoted strings and identifiers.
fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(ch),
            (None, '?') if chars.peek().is_some_and(|c| c.is_ascii_digit()) => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(ch);
    }
    out
}

/// Values are not printed (some are password hashes and token hashes).
impl std::fmt::Debug for Arg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arg::Null => "NULL",
            Arg::Int(_) => "<integer>",
            Arg::Text(_) => "<text>",
            Arg::Bytes(_) => "<bytes>",
        })
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(v) => match *ty {
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Arg::Text(t) => t.to_sql(ty, out),
            Arg::Bytes(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_are_renumbered_outside_quotes() {
        assert_eq!(
            super::translate("SELECT a FROM t WHERE x = ?1 AND y = ?12"),
            "SELECT a FROM t WHERE x = $1 AND y = $12"
        );
        assert_eq!(super::translate("SELECT '?1', \"?2\" WHERE z = ?3"), "SELECT '?1', \"?2\" WHERE z = $3");
        assert_eq!(super::translate("LIKE ?2 ESCAPE '\\'"), "LIKE $2 ESCAPE '\\'");
    }
}
