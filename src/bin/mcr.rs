//! The mcr server binary: config → logging → App::open → HTTP workers, until
//! SIGINT/SIGTERM, then a graceful shutdown.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mcr::app::{App, Ctx, DirLock};
use mcr::auth::Password;
use mcr::config::{Config, Overrides};
use mcr::http::HttpServer;
use mcr::policy::AccountType;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "mcr", version, about = "A self-hosted OCI container registry")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// TOML configuration file (defaults are used for what it leaves out).
    #[arg(long, env = "MCR_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the HTTP listener, e.g. 127.0.0.1:5000 (port 0 picks one).
    #[arg(long)]
    listen: Option<String>,
    /// Address of the gRPC listener, e.g. 127.0.0.1:5001 (port 0 picks one).
    #[arg(long)]
    grpc_listen: Option<String>,
    /// Directory for blobs and the metadata database.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (TLS 1.3 only).
    #[arg(long)]
    tls_cert: Option<String>,
    /// PEM private key for --tls-cert.
    #[arg(long)]
    tls_key: Option<String>,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let flags = Overrides {
            listen: self.listen.clone(),
            grpc_listen: self.grpc_listen.clone(),
            data_dir: self.data_dir.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        };
        Config::load(self.config.as_deref(), std::env::vars(), &flags)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve(ConfigArgs),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage users of the local identity provider (works on the data
    /// directory; the server may be running).
    #[command(subcommand)]
    User(UserCommand),
    /// Read the audit log of a data directory.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Collect garbage in the data directory of a stopped server.
    Gc(ConfigArgs),
    /// Replace the metadata database of a stopped server with a snapshot
    /// (checked against its .sha256 and SQLite's integrity check), then reconcile.
    Restore {
        snapshot: PathBuf,
        /// Restore even without a `.sha256` beside the snapshot (loud, and
        /// recorded in the audit log).
        #[arg(long)]
        no_verify: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Remove crash leftovers and report missing files in the data
    /// directory of a stopped server.
    Reconcile(ConfigArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exits 1 and names the first broken row if it does not hold.
    Verify {
        /// A checkpoint shipped off the machine, as the log line gives it:
        /// `LAST_ID:HASH` (the chain must hold that row, unchanged).
        #[arg(long)]
        expect: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print events as JSON lines, oldest first.
    List {
        #[arg(long = "type")]
        event_type: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        repo: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from stdin, or generated and shown.
    Add {
        name: String,
        /// A role (repeatable), e.g. --role admin.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A system (machine) account: only what policy rules grant.
        #[arg(long)]
        system: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Set a new password (from stdin, or generated and shown); ends the user's sessions.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Disable a user and end their sessions.
    Disable {
        name: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Enable a disabled user.
    Enable {
        name: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment, flags).
    Show(ConfigArgs),
    /// Validate a configuration file.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    // What mcr creates (the database and its WAL, blobs, uploads,
    // snapshots, keys) is its owner's alone: files 0600, directories 0700.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcr: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args.load()?),
        Command::Config(ConfigCommand::Show(args)) => {
            print!("{}", args.load()?.to_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::User(cmd) => user(cmd),
        Command::Audit(cmd) => audit(cmd),
        Command::Gc(config) => {
            let config = config.load()?;
            let _lock =
                svc(DirLock::acquire(&config.storage.data_dir, "while mcr serve runs, use `mcrctl gc`"))?;
            let app = open_app(config)?;
            let report = svc(mcr::service::admin::gc_run(&Ctx::system(&app, CLI_ACTOR)))?;
            app.audit.close();
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Restore { snapshot, no_verify, config } => restore(&snapshot, no_verify, config.load()?),
        Command::Reconcile(config) => {
            let config = config.load()?;
            let _lock = svc(DirLock::acquire(
                &config.storage.data_dir,
                "while mcr serve runs, use `mcrctl gc reconcile`",
            ))?;
            let app = open_app(config)?;
            let report = svc(mcr::service::admin::reconcile(&Ctx::system(&app, CLI_ACTOR)))?;
            app.audit.close();
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.missing_files.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Config(ConfigCommand::Check { file }) => {
            Config::load(Some(&file), std::iter::empty(), &Overrides::default())?;
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open_app(config: Config) -> anyhow::Result<App> {
    let data_dir = config.storage.data_dir.clone();
    let store = svc(mcr::storage::open(&config.storage))
        .with_context(|| format!("cannot open data directory {}", data_dir.display()))?;
    svc(App::open(config, store))
        .with_context(|| format!("cannot open data directory {}", data_dir.display()))
}

fn svc<T>(r: mcr::error::Result<T>) -> anyhow::Result<T> {
    r.map_err(|e| match e {
        mcr::error::Error::Internal(err) => err,
        other => anyhow::anyhow!("{other}"),
    })
}

/// The password from stdin's first line, or a generated one that is shown.
fn password_for(name: &str, from_stdin: bool) -> anyhow::Result<Password> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("read password from stdin")?;
        let p = line.trim_end_matches(['\n', '\r']).to_string();
        anyhow::ensure!(!p.is_empty(), "no password on stdin");
        return Ok(Password::new(p));
    }
    let p = svc(mcr::auth::local::random_password())?;
    eprintln!("mcr: password for {name}: {}", p.expose());
    Ok(p)
}

fn audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { expect, config } => {
            let app = open_app(config.load()?)?;
            let ctx = Ctx::system(&app, CLI_ACTOR);
            let mut v = svc(mcr::service::audit::verify(&ctx))?;
            if let (None, Some(expect)) = (v.first_broken, expect) {
                let (id, hash) = expect
                    .split_once(':')
                    .and_then(|(i, h)| Some((i.parse::<i64>().ok()?, h.to_string())))
                    .ok_or_else(|| {
                        anyhow::anyhow!("--expect takes LAST_ID:HASH, as the checkpoint log line gives them")
                    })?;
                if let Some(why) = svc(mcr::service::audit::holds(&ctx, id, &hash))? {
                    v.first_broken = Some(id);
                    v.reason = Some(why);
                }
            }
            match v.first_broken {
                None => {
                    println!("audit chain ok: {} rows", v.rows);
                    Ok(ExitCode::SUCCESS)
                }
                Some(id) => {
                    eprintln!("mcr: audit chain broken at row {id}: {}", v.reason.unwrap_or_default());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::List { event_type, actor, repo, limit, config } => {
            let app = open_app(config.load()?)?;
            let filter = mcr::service::audit::Filter {
                event_type,
                actor,
                repository: repo,
                limit: limit.clamp(1, 100_000),
                ..Default::default()
            };
            for row in svc(mcr::service::audit::query(&Ctx::system(&app, CLI_ACTOR), &filter))? {
                println!("{}", serde_json::to_string(&row)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn restore(snapshot: &std::path::Path, no_verify: bool, config: Config) -> anyhow::Result<ExitCode> {
    let dir = &config.storage.data_dir;
    let _lock = svc(DirLock::acquire(dir, "stop mcr serve before restoring"))?;
    // The snapshot must be a file, and not one of the live database's own.
    let snapshot = std::fs::canonicalize(snapshot)
        .with_context(|| format!("cannot read snapshot {}", snapshot.display()))?;
    anyhow::ensure!(snapshot.is_file(), "snapshot {} is not a file", snapshot.display());
    let live = std::fs::canonicalize(dir).context("data directory")?;
    for own in ["mcr.db", "mcr.db-wal", "mcr.db-shm", ".mcr.db.restoring"] {
        anyhow::ensure!(
            snapshot != live.join(own),
            "{} is the live database's own file, not a snapshot",
            snapshot.display()
        );
    }
    let bytes =
        std::fs::read(&snapshot).with_context(|| format!("cannot read snapshot {}", snapshot.display()))?;
    let got = mcr::model::Digest::of(mcr::model::Algorithm::Sha256, &bytes);
    let sum_file = snapshot.with_file_name(format!(
        "{}.sha256",
        snapshot.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    match std::fs::read_to_string(&sum_file) {
        Ok(sum) => {
            let want = sum.split_whitespace().next().unwrap_or("");
            anyhow::ensure!(got.hex() == want, "snapshot {} does not match its checksum", snapshot.display());
            // The checksum's MAC under this registry's audit key: a snapshot
            // edited and re-summed by someone without the key is refused.
            let mac = sum.lines().find_map(|l| l.strip_prefix("hmac-sha256:")).map(str::trim);
            match (svc(mcr::app::existing_audit_key(&config))?, mac) {
                (Some(key), Some(mac)) if mcr::audit::snapshot_mac_with(&key, got.hex()) == mac => {}
                _ if no_verify => eprintln!(
                    "mcr: WARNING: the checksum of {} carries no valid MAC under this registry's audit key \
                     (--no-verify); this is recorded in the audit log",
                    snapshot.display()
                ),
                (None, _) => anyhow::bail!(
                    "no audit key to check the snapshot's checksum with ({}); --no-verify overrides, loudly",
                    mcr::app::audit_key_path(&config).display()
                ),
                _ => anyhow::bail!(
                    "the checksum of snapshot {} carries no valid MAC under this registry's audit key: it was not \
                     written by this registry, or was edited; --no-verify overrides, loudly",
                    snapshot.display()
                ),
            }
        }
        Err(_) if no_verify => {
            eprintln!(
                "mcr: WARNING: restoring {} WITHOUT a checksum (--no-verify): nothing shows it is the snapshot mcr \
                 wrote; this is recorded in the audit log",
                snapshot.display()
            );
        }
        Err(e) => anyhow::bail!(
            "snapshot {} has no readable checksum file {} ({e}); restore refuses what it cannot verify \
             (--no-verify overrides, loudly)",
            snapshot.display(),
            sum_file.display()
        ),
    }
    let db = dir.join("mcr.db");
    svc(mcr::db::snapshot::restore(&db, &bytes))
        .with_context(|| format!("snapshot {}", snapshot.display()))?;
    let app = open_app(config)?;
    let ctx = Ctx::system(&app, CLI_ACTOR);
    svc(mcr::service::admin::record_restore(&ctx, &snapshot.display().to_string(), got.hex(), !no_verify))?;
    svc(mcr::service::admin::reanchor_audit(&ctx))?;
    let report = svc(mcr::service::admin::reconcile(&ctx))?;
    app.audit.close();
    println!("restored {} into {}", snapshot.display(), db.display());
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// The actor recorded for what `mcr` commands do on the host.
const CLI_ACTOR: &str = "system:cli";

fn user(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    use mcr::service::users;
    match cmd {
        UserCommand::Add { name, roles, system, password_stdin, config } => {
            let app = open_app(config.load()?)?;
            let p = password_for(&name, password_stdin)?;
            let kind = if system { AccountType::System } else { AccountType::Human };
            svc(users::add(&Ctx::system(&app, CLI_ACTOR), &name, &p, &roles, kind))?;
            println!("user {name} created");
        }
        UserCommand::Passwd { name, password_stdin, config } => {
            let app = open_app(config.load()?)?;
            let p = password_for(&name, password_stdin)?;
            svc(users::set_password(&Ctx::system(&app, CLI_ACTOR), &name, &p))?;
            println!("password of {name} changed");
        }
        UserCommand::Disable { name, config } => {
            svc(users::set_disabled(&Ctx::system(&open_app(config.load()?)?, CLI_ACTOR), &name, true))?;
            println!("user {name} disabled");
        }
        UserCommand::Enable { name, config } => {
            svc(users::set_disabled(&Ctx::system(&open_app(config.load()?)?, CLI_ACTOR), &name, false))?;
            println!("user {name} enabled");
        }
        UserCommand::List { json, config } => {
            let list = svc(users::list(&Ctx::system(&open_app(config.load()?)?, CLI_ACTOR)))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:<24} {:<8} {:<9} ROLES", "USERNAME", "TYPE", "STATUS");
                for u in list {
                    let status = if u.disabled { "disabled" } else { "enabled" };
                    println!("{:<24} {:<8} {:<9} {}", u.username, u.account_type, status, u.roles.join(","));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: the certificate and key are read again; new connections use
/// them, open ones keep theirs.  A bad pair is logged and the old one kept.
fn reload_tls(config: &Config, http: &HttpServer, grpc: &mcr::grpc::GrpcServer) {
    if !config.tls_enabled() {
        log::info!("sighup: no TLS configured, nothing to reload");
        return;
    }
    let (cert, key) = (config.server.tls_cert.as_ref(), config.server.tls_key.as_ref());
    let loaded = mcr::http::tls::server_config(cert, key)
        .and_then(|h| Ok((h, mcr::http::tls::grpc_server_config(cert, key)?)));
    match loaded {
        Ok((h, g)) => {
            http.reload_tls(h);
            grpc.reload_tls(g);
            log::info!("tls certificate reloaded cert={}", config.server.tls_cert);
        }
        Err(e) => log::error!("tls reload failed, keeping the old certificate err={e:#}"),
    }
}

/// glibc's malloc, tuned for a pool of threads (see BENCHMARKS.md):
/// - `MALLOC_ARENA_MAX=2`: with an arena per worker, what threads freed
///   stayed in their own arenas, a third of the server's peak RSS (64 MiB
///   against 45 MiB with two);
/// - `MALLOC_MMAP_THRESHOLD_=131072`, fixed: a large buffer (Argon2's 7 MiB,
///   a long tag list) is mapped and unmapped with its owner.  By default
///   glibc raises the threshold after the first such free, and every later
///   large buffer then stays in the heap once freed.
/// - `glibc.malloc.tcache_count=1`: each thread keeps one freed chunk per
///   size class for itself instead of seven; with 32 workers taking turns,
///   those per-thread caches held ~3.5 MiB that no other thread could use,
///   for ~10% of the manifest GET rate at 32 workers (BENCHMARKS.md).
///
/// glibc reads these only when a process starts, so `mcr serve`
/// re-executes itself once with them; an operator's own values are kept.
const MALLOC_TUNING: [(&str, &str); 3] = [
    ("MALLOC_ARENA_MAX", "2"),
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
    ("GLIBC_TUNABLES", "glibc.malloc.tcache_count=1"),
];

fn tune_malloc() {
    use std::os::unix::process::CommandExt as _;
    let missing: Vec<_> = MALLOC_TUNING.iter().filter(|(k, _)| std::env::var_os(k).is_none()).collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1));
    for (k, v) in &missing {
        cmd.env(k, v);
    }
    let err = cmd.exec();
    // `exec` returns only when it failed: serve with glibc's defaults.
    eprintln!("mcr: could not re-execute with tuned malloc settings ({err}); serving with glibc's defaults");
}

fn serve(config: Config) -> anyhow::Result<ExitCode> {
    tune_malloc();
    env_logger::Builder::new()
        .parse_filters(&config.log.level)
        .parse_env("RUST_LOG")
        // ureq traces whole request URLs: an object store's are presigned
        // (usable as credentials until they expire), so never below info.
        .filter_module("ureq", log::LevelFilter::Info)
        .filter_module("ureq_proto", log::LevelFilter::Info)
        .format_timestamp_millis()
        .init();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("install signal handler")?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .context("install SIGHUP handler")?;
    let addr = config.listen_addr()?;
    let workers = config.server.workers;
    let data_dir = config.storage.data_dir.clone();
    let _lock = svc(DirLock::acquire(&data_dir, "is another mcr serve running on it?"))?;
    let app = Arc::new(open_app(config)?);
    let startup = Ctx::system(&app, "system:startup");
    if let Some(p) = svc(mcr::service::users::ensure_initial_admin(&startup))? {
        let file = data_dir.join(mcr::service::users::INITIAL_PASSWORD_FILE);
        // Under a service manager stderr is the log stream: the secret is
        // shown only to a person at a terminal, and otherwise stays in its
        // 0600 file.
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!(
                "mcr: created user admin with password {} (also in {}; change it with `mcr user passwd admin`)",
                p.expose(),
                file.display()
            );
        } else {
            eprintln!(
                "mcr: created user admin; its password is in {} (mode 0600); change it with `mcr user passwd admin`",
                file.display()
            );
        }
    }
    let tls = if app.config.tls_enabled() {
        let c = &app.config.server;
        Some(mcr::http::tls::server_config(c.tls_cert.as_ref(), c.tls_key.as_ref())?)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    mcr::service::admin::mark_started(app.now());
    // Crash leftovers, beside the requests: reconcile is safe online (it is
    // `mcrctl gc reconcile`), and on a large bucket it took up to a minute
    // under load, which the listener no longer waits for.
    {
        let app = app.clone();
        std::thread::Builder::new()
            .name("startup-reconcile".into())
            .spawn(move || {
                let ctx = Ctx::system(&app, "system:startup");
                match mcr::service::admin::reconcile(&ctx) {
                    Ok(r) => {
                        log::info!("startup reconcile done {}", serde_json::to_string(&r).unwrap_or_default())
                    }
                    Err(e) => log::error!("startup reconcile failed err={e:#}"),
                }
            })
            .context("start reconcile thread")?;
    }
    let mut gc = mcr::gc::scheduler::Scheduler::start(app.gc.clone(), app.config.gc_interval_secs())
        .context("start gc thread")?;
    if app.db.is_shared() {
        // Replicas: the policy rules other replicas change are in force
        // here within SHARED_REFRESH.
        let app = app.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("shared-refresh".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(mcr::app::SHARED_REFRESH);
                    if let Err(e) = app.refresh_shared_state() {
                        log::warn!("refresh from the shared database failed err={e}");
                    }
                }
            })
            .context("start refresh thread")?;
    }
    let grpc_tls = if app.config.tls_enabled() {
        let c = &app.config.server;
        Some(mcr::http::tls::grpc_server_config(c.tls_cert.as_ref(), c.tls_key.as_ref())?)
    } else {
        None
    };
    let grpc_addr = app.config.grpc_addr()?;
    let grpc = mcr::grpc::GrpcServer::start(app.clone(), grpc_addr, grpc_tls)?;
    let router = Arc::new(mcr::router::Router { app: app.clone() });
    let http = HttpServer::start(router, addr, workers, tls, mcr::router::limits(&app.config))?;
    log::info!(
        "listening {scheme}={} grpc={} data_dir={} version={}",
        http.addr(),
        grpc.addr(),
        data_dir.display(),
        env!("CARGO_PKG_VERSION")
    );
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if reload.swap(false, Ordering::SeqCst) {
            reload_tls(&app.config, &http, &grpc);
        }
    }
    log::info!("shutting down: finishing in-flight requests");
    http.shutdown();
    grpc.shutdown();
    gc.stop();
    app.audit.close();
    log::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
