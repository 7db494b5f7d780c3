//! Configuration: embedded defaults, then a TOML file, then `MCR_<SECTION>_<KEY>`
//! environment variables, then command-line flags; validated once into
//! `Config`.
//!
//! Invariant: every key of the file has an environment override, derived
//! from the defaults table, so a new key cannot forget its override.

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub storage: Storage,
    pub database: Database,
    pub limits: Limits,
    pub auth: Auth,
    pub audit: Audit,
    pub gc: Gc,
    pub uploads: Uploads,
    pub ui: Ui,
    pub log: Log,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Ui {
    /// A web UI session unused for this long ends.
    pub session_idle: String,
    /// A web UI session ends this long after its login, used or not.
    pub session_max: String,
}

impl Default for Ui {
    fn default() -> Self {
        Ui { session_idle: "30m".into(), session_max: "12h".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Gc {
    /// Time between scheduled collections; "0s" turns the schedule off.
    pub interval: String,
    /// Grace period: blobs and manifests younger than this are never collected.
    pub min_age: String,
    /// Also collect untagged manifests that nothing references.
    pub delete_untagged: bool,
}

impl Default for Gc {
    fn default() -> Self {
        Gc { interval: "0s".into(), min_age: "1h".into(), delete_untagged: false }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Uploads {
    /// Upload sessions untouched for this long are purged by reconcile.
    pub ttl: String,
}

impl Default for Uploads {
    fn default() -> Self {
        Uploads { ttl: "24h".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Audit {
    /// Record an event for every manifest pull.
    pub pulls: bool,
    /// The key of the audit chain's HMAC; empty: `<data>/audit.key`. Made
    /// (0600) on first start; never part of a database snapshot.
    pub key_file: String,
}

impl Default for Audit {
    fn default() -> Self {
        Audit { pulls: true, key_file: String::new() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// Identity provider: "local" (users in the metadata database) or
    /// "mcias" (the external MCIAS service at `mcias_url`).
    pub provider: String,
    /// Base URL of MCIAS (https only).
    pub mcias_url: String,
    /// PEM CA bundle to trust for MCIAS; empty for the WebPKI roots.
    pub mcias_ca: String,
    /// Lifetime of tokens issued by the local provider, e.g. "1h", "90m".
    pub token_ttl: String,
    /// The `service` named in Bearer challenges and token requests.
    pub service: String,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            provider: "local".into(),
            mcias_url: String::new(),
            mcias_ca: String::new(),
            token_ttl: "1h".into(),
            service: "mcr".into(),
        }
    }
}

/// Parses durations like "90s", "15m", "1h", "2d" (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("duration {s:?} must start with a number"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => bail!("duration {s:?} has unknown unit {other:?} (use s, m, h or d)"),
    };
    n.checked_mul(mult).with_context(|| format!("duration {s:?} is too large"))
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address of the HTTP listener (`/v2`); port 0 picks a free port.
    pub listen: String,
    /// Address of the gRPC listener; port 0 picks a free port.
    pub grpc_listen: String,
    /// The URL clients reach this registry at (e.g. behind a proxy); it
    /// names the token realm.  Empty: the address the client connected to.
    pub external_url: String,
    /// Worker threads serving requests; an upload holds one for its duration.
    /// Default: 8 per CPU core, 16 to 64 (`default_workers`).
    pub workers: usize,
    /// PEM certificate chain for HTTPS (TLS 1.3 only); empty for plain HTTP.
    pub tls_cert: String,
    /// PEM private key matching `tls_cert`.
    pub tls_key: String,
    /// A request head must arrive whole within this of its first byte.
    pub header_timeout: String,
    /// Silence allowed between requests and inside a request body.
    pub idle_timeout: String,
    /// A request body may start slowly for this long ...
    pub body_grace: String,
    /// ... and must then average at least this many bytes per second.
    pub min_body_rate: u64,
    /// Most open connections, and most from one client address.
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    /// Most requests from one client address served at once (the rest
    /// wait their turn); 0 means a quarter of the workers.
    pub max_workers_per_peer: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// Keys, the SQLite database, snapshots, and (with the filesystem
    /// backend) the blobs.
    pub data_dir: PathBuf,
    /// Where blobs live: "filesystem" (under data_dir) or "s3".
    pub backend: String,
    /// The S3 endpoint, e.g. https://s3.example.net (path-style addressing).
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_bucket: String,
    /// Prepended to every object key, so buckets can be shared ("" or "a/b/").
    pub s3_prefix: String,
    pub s3_access_key_id: String,
    /// A file holding the secret access key (never the key itself in the
    /// configuration, which `mcr config` prints).
    pub s3_secret_key_file: String,
    /// A PEM bundle trusted for an https endpoint instead of the web PKI.
    pub s3_ca_file: String,
    /// Bytes per multipart part (at least 5 MiB, S3's minimum); one part is
    /// buffered per upload request in progress.
    pub s3_part_size: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// Empty: SQLite in the data directory.  `postgres://user@host:port/db`:
    /// PostgreSQL, shared by every replica (put no password here: `mcr
    /// config show` prints this).
    pub url: String,
    /// A file holding the PostgreSQL password.
    pub password_file: String,
    /// A PEM bundle: connect with TLS 1.3 (required), trusting only these
    /// CAs.  Empty: no TLS (a database on loopback or a private network).
    pub ca_file: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest manifest accepted, in bytes (the spec's floor is 4 MiB).
    pub manifest_max_bytes: u64,
    /// Largest `n` accepted by the tags list and the catalog.
    pub page_max: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// env_logger filter used when `RUST_LOG` is not set.
    pub level: String,
}

/// Eight workers per CPU core, 16 to 64: requests are short and CPU-bound
/// or wait on the disk, and each worker that has served keeps its stack
/// pages and its malloc caches.  On two cores, 32 held ~2–3 MiB more than
/// 16 under load and served manifest GETs more slowly (BENCHMARKS.md); an
/// object store's round trips on a large machine get more.
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (8 * cores).clamp(16, 64)
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:5000".into(),
            grpc_listen: "127.0.0.1:5001".into(),
            external_url: String::new(),
            workers: default_workers(),
            tls_cert: String::new(),
            tls_key: String::new(),
            header_timeout: "30s".into(),
            idle_timeout: "120s".into(),
            body_grace: "10s".into(),
            min_body_rate: 1024,
            max_connections: 4096,
            max_connections_per_peer: 1024,
            max_workers_per_peer: 0,
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            data_dir: PathBuf::from("./mcr-data"),
            backend: "filesystem".into(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_bucket: String::new(),
            s3_prefix: String::new(),
            s3_access_key_id: String::new(),
            s3_secret_key_file: String::new(),
            s3_ca_file: String::new(),
            s3_part_size: 8 << 20,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { manifest_max_bytes: 4 << 20, page_max: 1000 }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log { level: "info".into() }
    }
}

/// Flags that override file and environment.
#[derive(Default, Debug, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub grpc_listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

impl Config {
    /// Defaults ← file ← environment ← flags, then validation.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Config> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("config file {} is not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let mut config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("invalid configuration: {}", e.message()))?;
        if let Some(l) = &flags.listen {
            config.server.listen = l.clone();
        }
        if let Some(g) = &flags.grpc_listen {
            config.server.grpc_listen = g.clone();
        }
        if let Some(d) = &flags.data_dir {
            config.storage.data_dir = d.clone();
        }
        if let Some(c) = &flags.tls_cert {
            config.server.tls_cert = c.clone();
        }
        if let Some(k) = &flags.tls_key {
            config.server.tls_key = k.clone();
        }
        config.validate()?;
        Ok(config)
    }

    fn validate_storage(&self) -> Result<()> {
        let st = &self.storage;
        match st.backend.as_str() {
            "filesystem" => return Ok(()),
            "s3" => {}
            other => bail!("storage.backend {other:?} is not supported (use \"filesystem\" or \"s3\")"),
        }
        let e = &st.s3_endpoint;
        if !(e.starts_with("https://") || e.starts_with("http://")) {
            bail!("storage.s3_endpoint must be an https:// URL (or http:// on loopback)");
        }
        if e.contains(['@', '?', '#']) || e.contains(char::is_whitespace) {
            bail!("storage.s3_endpoint {e:?} must be a plain URL (no user, query or fragment)");
        }
        if let Some(rest) = e.strip_prefix("http://") {
            let authority = rest.split('/').next().unwrap_or("");
            let host = if authority.starts_with("[::1]") {
                "[::1]"
            } else {
                authority.split(':').next().unwrap_or("")
            };
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                bail!(
                    "storage.s3_endpoint {e:?}: plain http is allowed on loopback only (TLS 1.3 otherwise)"
                );
            }
        }
        if st.s3_bucket.is_empty() || st.s3_access_key_id.is_empty() || st.s3_secret_key_file.is_empty() {
            bail!("storage.backend \"s3\" needs s3_bucket, s3_access_key_id and s3_secret_key_file");
        }
        let p = &st.s3_prefix;
        if !p.is_empty()
            && (!p.ends_with('/')
                || p.starts_with('/')
                || p.split('/').any(|seg| seg == "." || seg == "..")
                || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b)))
        {
            bail!("storage.s3_prefix must be empty or like \"a/b/\": letters, digits, '.', '_', '-', ending in '/'");
        }
        if st.s3_part_size < 5 << 20 || st.s3_part_size > 1 << 30 {
            bail!("storage.s3_part_size must be between 5 MiB and 1 GiB");
        }
        Ok(())
    }

    pub fn grpc_addr(&self) -> Result<SocketAddr> {
        self.server.grpc_listen.parse().with_context(|| {
            format!("server.grpc_listen {:?} is not an address like 127.0.0.1:5001", self.server.grpc_listen)
        })
    }

    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.server.listen.parse().with_context(|| {
            format!("server.listen {:?} is not an address like 127.0.0.1:5000", self.server.listen)
        })
    }

    fn validate(&self) -> Result<()> {
        let addr = self.listen_addr()?;
        if self.server.tls_cert.is_empty() != self.server.tls_key.is_empty() {
            bail!("server.tls_cert and server.tls_key must be set together");
        }
        let grpc = self.grpc_addr()?;
        if !self.tls_enabled() && !grpc.ip().is_loopback() {
            bail!(
                "refusing to serve plain gRPC on non-loopback address {grpc}: \
                 configure TLS (--tls-cert/--tls-key); plain gRPC is allowed on loopback only"
            );
        }
        if !self.tls_enabled() && !addr.ip().is_loopback() {
            bail!(
                "refusing to serve plain HTTP on non-loopback address {addr}: \
                 configure TLS (--tls-cert/--tls-key); plain HTTP is allowed on loopback only"
            );
        }
        let url = &self.server.external_url;
        if !url.is_empty()
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || url.len() > 512
                || url.contains(|c: char| {
                    c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '?' | '#')
                }))
        {
            bail!("server.external_url {url:?} must be an http:// or https:// URL without spaces, quotes, query or fragment");
        }
        if self.server.workers == 0 || self.server.workers > 4096 {
            bail!("server.workers must be between 1 and 4096");
        }
        if self.server.max_connections == 0 || self.server.max_connections_per_peer == 0 {
            bail!("server.max_connections and server.max_connections_per_peer must be at least 1");
        }
        if self.limits.page_max == 0 {
            bail!("limits.page_max must be at least 1");
        }
        if self.limits.manifest_max_bytes < 4 << 20 {
            bail!("limits.manifest_max_bytes must be at least 4 MiB (the OCI minimum)");
        }
        self.validate_storage()?;
        let url = &self.database.url;
        if !(url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bail!("database.url must be empty (SQLite) or a postgres:// URL");
        }
        let authority = url.split("://").nth(1).unwrap_or("").split(['/', '?']).next().unwrap_or("");
        if authority.split('@').count() > 1 && authority.split('@').next().is_some_and(|u| u.contains(':')) {
            bail!("database.url must not carry the password (`mcr config show` prints it): use database.password_file");
        }
        match self.auth.provider.as_str() {
            "local" => {}
            "mcias" if self.auth.mcias_url.starts_with("https://") => {}
            "mcias" => bail!("auth.mcias_url must be an https:// URL when auth.provider is \"mcias\""),
            other => bail!("auth.provider {other:?} is not supported (use \"local\" or \"mcias\")"),
        }
        for (v, name) in [
            (&self.server.header_timeout, "server.header_timeout"),
            (&self.server.idle_timeout, "server.idle_timeout"),
            (&self.server.body_grace, "server.body_grace"),
        ] {
            let secs = parse_duration(v).context(name)?;
            if secs == 0 {
                bail!("{name} must be at least 1s");
            }
        }
        parse_duration(&self.gc.interval).context("gc.interval")?;
        parse_duration(&self.gc.min_age).context("gc.min_age")?;
        parse_duration(&self.uploads.ttl).context("uploads.ttl")?;
        let idle = parse_duration(&self.ui.session_idle).context("ui.session_idle")?;
        let max = parse_duration(&self.ui.session_max).context("ui.session_max")?;
        if idle < 60 || max < idle || max > 30 * 86400 {
            bail!("ui.session_idle must be at least 1m and ui.session_max between it and 30d");
        }
        let ttl = parse_duration(&self.auth.token_ttl).context("auth.token_ttl")?;
        if !(60..=30 * 86400).contains(&ttl) {
            bail!("auth.token_ttl must be between 1m and 30d");
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            bail!("storage.data_dir must not be empty");
        }
        Ok(())
    }

    pub fn gc_interval_secs(&self) -> u64 {
        parse_duration(&self.gc.interval).unwrap_or(0)
    }

    pub fn gc_min_age_secs(&self) -> i64 {
        parse_duration(&self.gc.min_age).unwrap_or(3600) as i64
    }

    /// (idle, absolute) lifetimes of a web UI session, in seconds.
    pub fn ui_session_secs(&self) -> (i64, i64) {
        (
            parse_duration(&self.ui.session_idle).unwrap_or(1800) as i64,
            parse_duration(&self.ui.session_max).unwrap_or(43200) as i64,
        )
    }

    pub fn uploads_ttl_secs(&self) -> i64 {
        parse_duration(&self.uploads.ttl).unwrap_or(86400) as i64
    }

    pub fn token_ttl_secs(&self) -> i64 {
        parse_duration(&self.auth.token_ttl).unwrap_or(3600) as i64
    }

    pub fn tls_enabled(&self) -> bool {
        !self.server.tls_cert.is_empty()
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serializes")
    }
}

/// Applies `MCR_<SECTION>_<KEY>` for every key the defaults have, parsed as
/// the default's TOML type.
fn apply_env(table: &mut toml::Table, env: impl Iterator<Item = (String, String)>) -> Result<()> {
    let env: Vec<(String, String)> = env.filter(|(k, _)| k.starts_with("MCR_")).collect();
    let defaults = toml::Table::try_from(Config::default()).expect("defaults serialize");
    for (section, keys) in &defaults {
        let Some(keys) = keys.as_table() else {
            continue;
        };
        for (key, default) in keys {
            let var = format!("MCR_{}_{}", section.to_uppercase(), key.to_uppercase());
            let Some((_, raw)) = env.iter().find(|(k, _)| *k == var) else {
                continue;
            };
            let value = match default {
                toml::Value::String(_) => toml::Value::String(raw.clone()),
                toml::Value::Integer(_) => toml::Value::Integer(
                    raw.trim().parse().with_context(|| format!("{var} must be an integer"))?,
                ),
                toml::Value::Boolean(_) => toml::Value::Boolean(
                    raw.trim().parse().with_context(|| format!("{var} must be true or false"))?,
                ),
                other => bail!("{var}: unsupported type {}", other.type_str()),
            };
            let entry =
                table.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(t) = entry.as_table_mut() else {
                bail!("config section [{section}] must be a table");
            };
            t.insert(key.clone(), value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn defaults_run_alone() {
        let c = Config::load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.listen, "127.0.0.1:5000");
        assert_eq!(c.storage.data_dir, PathBuf::from("./mcr-data"));
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mcr.toml");
        std::fs::write(&f, "[server]\nlisten = \"127.0.0.1:6000\"\nworkers = 8\n[limits]\npage_max = 50\n")
            .unwrap();
        let c = Config::load(Some(&f), env(&[("MCR_LIMITS_PAGE_MAX", "7")]), &Overrides::default()).unwrap();
        assert_eq!((c.server.listen.as_str(), c.server.workers, c.limits.page_max), ("127.0.0.1:6000", 8, 7));
        let flags = Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some("/tmp/x".into()),
            ..Overrides::default()
        };
        let c = Config::load(Some(&f), env(&[("MCR_SERVER_LISTEN", "127.0.0.1:1")]), &flags).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:0");
        assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("2d").unwrap(), 172800);
        assert_eq!(parse_duration("42").unwrap(), 42);
        for bad in ["", "h", "1w", "-1s", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            ("[server]\nlisten = \"0.0.0.0:5000\"\n", "non-loopback"),
            ("[server]\nlisten = \"nope\"\n", "not an address"),
            ("[server]\nworkerz = 1\n", "unknown field"),
            ("[limits]\nmanifest_max_bytes = 10\n", "4 MiB"),
            ("[server]\nexternal_url = \"registry.example.com\"\n", "external_url"),
            ("[server]\nexternal_url = \"https://x/\\\",evil\"\n", "external_url"),
            ("[server]\nmax_connections = 0\n", "max_connections"),
            ("[server]\nbody_grace = \"0s\"\n", "body_grace"),
            ("not toml [", "not valid TOML"),
            ("[storage]\nbackend = \"nfs\"\n", "storage.backend"),
            ("[storage]\nbackend = \"s3\"\ns3_endpoint = \"http://s3.example.net\"\n", "loopback only"),
            ("[storage]\nbackend = \"s3\"\ns3_endpoint = \"http://[::1]@s3.example.net/\"\n", "plain URL"),
            ("[storage]\nbackend = \"s3\"\ns3_endpoint = \"https://s3.example.net\"\n", "needs s3_bucket"),
            (
                "[storage]\nbackend = \"s3\"\ns3_endpoint = \"https://s\"\ns3_bucket = \"b\"\n\
                 s3_access_key_id = \"k\"\ns3_secret_key_file = \"/f\"\ns3_prefix = \"a/../\"\n",
                "s3_prefix",
            ),
            (
                "[storage]\nbackend = \"s3\"\ns3_endpoint = \"https://s\"\ns3_bucket = \"b\"\n\
                 s3_access_key_id = \"k\"\ns3_secret_key_file = \"/f\"\ns3_part_size = 1000\n",
                "5 MiB",
            ),
            ("[database]\nurl = \"mysql://x\"\n", "database.url"),
            ("[database]\nurl = \"postgres://mcr:secret@db/mcr\"\n", "password_file"),
        ] {
            let f = dir.path().join("c.toml");
            std::fs::write(&f, text).unwrap();
            let err = format!("{:#}", Config::load(Some(&f), env(&[]), &Overrides::default()).unwrap_err());
            assert!(err.contains(needle), "{text:?} gave {err}");
        }
        let err =
            Config::load(None, env(&[("MCR_SERVER_WORKERS", "many")]), &Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("MCR_SERVER_WORKERS"));
    }
}
