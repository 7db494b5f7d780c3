//! The mcr server binary: config → logging → App::open → HTTP workers, until
//! SIGINT/SIGTERM, then a graceful shutdown.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mcr::app::App;
use mcr::config::{Config, Overrides};
use mcr::http::HttpServer;
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
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment, flags).
    Show(ConfigArgs),
    /// Validate a configuration file.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
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
        Command::Config(ConfigCommand::Check { file }) => {
            Config::load(Some(&file), std::iter::empty(), &Overrides::default())?;
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(config: Config) -> anyhow::Result<ExitCode> {
    env_logger::Builder::new()
        .parse_filters(&config.log.level)
        .parse_env("RUST_LOG")
        .format_timestamp_millis()
        .init();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("install signal handler")?;
    }
    let addr = config.listen_addr()?;
    let workers = config.server.workers;
    let data_dir = config.storage.data_dir.clone();
    let app = Arc::new(
        App::open(config)
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .with_context(|| format!("cannot open data directory {}", data_dir.display()))?,
    );
    let tls = if app.config.tls_enabled() {
        let c = &app.config.server;
        Some(mcr::http::tls::server_config(
            c.tls_cert.as_ref(),
            c.tls_key.as_ref(),
        )?)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let http = HttpServer::start(app.clone(), addr, workers, tls)?;
    log::info!(
        "listening {scheme}={} data_dir={} version={}",
        http.addr(),
        data_dir.display(),
        env!("CARGO_PKG_VERSION")
    );
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    log::info!("shutting down: finishing in-flight requests");
    http.shutdown();
    log::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
