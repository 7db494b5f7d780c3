//! mcrctl's commands: the clap arguments, and one function per command
//! group that calls a `Client` and prints through `types`.  The binary
//! (`src/bin/mcrctl.rs`) only parses and exits.

use super::types::*;
use super::{token_file, CliError, Client, R};
use crate::policy::Rule;
use clap::{CommandFactory, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "mcrctl", version, about = "Admin CLI for the mcr registry")]
pub struct Cli {
    /// Base URL of the registry (REST).
    #[arg(long, global = true, env = "MCR_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    /// Use gRPC at HOST:PORT instead of REST.
    #[arg(long, global = true, env = "MCR_GRPC")]
    grpc: Option<String>,
    /// Token (else MCR_TOKEN, else the file `mcrctl login` saved).
    #[arg(long, global = true, env = "MCR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) to trust for TLS.
    #[arg(long, global = true)]
    ca_cert: Option<PathBuf>,
    /// Stable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in and save a token (mode 0600) for later commands.
    Login {
        #[arg(long, short, default_value = "admin")]
        username: String,
        /// Read the password from stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Version, uptime, counts, storage, GC state.
    Status,
    #[command(subcommand)]
    Repo(RepoCmd),
    #[command(subcommand)]
    Tag(TagCmd),
    #[command(subcommand)]
    Policy(PolicyCmd),
    #[command(subcommand)]
    Audit(AuditCmd),
    #[command(subcommand)]
    Gc(GcCmd),
    /// Take a consistent snapshot of the metadata database.
    Snapshot {
        /// Copy the snapshot here (the server must share this filesystem).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Shell completions: bash, zsh or fish.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum RepoCmd {
    List,
    Show {
        name: String,
    },
    Delete {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum TagCmd {
    /// Delete NAME:TAG.
    Delete { reference: String },
}

#[derive(clap::Args, Default)]
struct RuleArgs {
    /// A JSON or TOML file holding the rule (flags override it).
    #[arg(long)]
    file: Option<PathBuf>,
    #[arg(long)]
    priority: Option<i64>,
    /// allow or deny.
    #[arg(long)]
    effect: Option<String>,
    #[arg(long = "action")]
    actions: Vec<String>,
    #[arg(long = "repo")]
    repositories: Vec<String>,
    #[arg(long = "user")]
    usernames: Vec<String>,
    #[arg(long = "role")]
    roles: Vec<String>,
    #[arg(long = "account-type")]
    account_types: Vec<String>,
    #[arg(long)]
    description: Option<String>,
}

#[derive(Subcommand)]
enum PolicyCmd {
    List,
    Get {
        id: i64,
    },
    Create(RuleArgs),
    Update {
        id: i64,
        #[command(flatten)]
        rule: RuleArgs,
    },
    Delete {
        id: i64,
    },
    Enable {
        id: i64,
    },
    Disable {
        id: i64,
    },
    /// Show the decision for a request and the rules that made it.
    Test {
        #[arg(long)]
        user: String,
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long, default_value = "human")]
        account_type: String,
        #[arg(long)]
        action: String,
        #[arg(long)]
        repo: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// The newest events (and with --follow, new ones as they come).
    Tail {
        #[arg(long)]
        follow: bool,
        #[arg(long = "type")]
        event_type: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        repo: Option<String>,
        /// Unix seconds.
        #[arg(long)]
        since: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Check the hash chain; exit 1 if it is broken.
    Verify,
}

#[derive(Subcommand)]
enum GcCmd {
    Trigger {
        /// Wait for the run to finish, showing progress.
        #[arg(long)]
        wait: bool,
    },
    Status,
    Reconcile,
}

/// Runs one mcrctl invocation.
pub fn run(cli: Cli) -> R<ExitCode> {
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "mcrctl", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Login { username, password_stdin } => return login(&cli, username, *password_stdin),
        _ => {}
    }
    let c = client(&cli)?;
    let c = &*c;
    let json = cli.json;
    match cli.command {
        Command::Login { .. } | Command::Completions { .. } => unreachable!("handled above"),
        Command::Status => status(c, json),
        Command::Repo(cmd) => repo(c, cmd, json),
        Command::Tag(cmd) => tag(c, cmd, json),
        Command::Policy(cmd) => policy(c, cmd, json),
        Command::Audit(cmd) => audit(c, cmd, json),
        Command::Gc(cmd) => gc(c, cmd, json),
        Command::Snapshot { output } => snapshot(c, output, json),
    }
}

/// `mcrctl login`: a token from the server, saved 0600.
fn login(cli: &Cli, username: &str, password_stdin: bool) -> R<ExitCode> {
    let json = cli.json;
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| CliError::Invalid(e.to_string()))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        rpassword::prompt_password(format!("password for {username}: "))
            .map_err(|e| CliError::Invalid(format!("cannot read the password: {e}")))?
    };
    let ca = cli.ca_cert.as_ref().map(std::fs::read).transpose().map_err(|e| CliError::Tls(e.to_string()))?;
    let token = super::rest::Rest::new(&cli.server, None, ca.as_deref())?.login(username, &password)?;
    let path = token_file();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CliError::Other(e.to_string()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
    // `mode` applies only when the file is created: tighten an
    // existing one before the token goes in.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
    writeln!(f, "{token}").map_err(|e| CliError::Other(e.to_string()))?;
    out(json, &serde_json::json!({ "token_file": path.display().to_string() }), |_| {
        format!("logged in as {username}; token saved in {}\n", path.display())
    });
    Ok(ExitCode::SUCCESS)
}

fn status(c: &dyn Client, json: bool) -> R<ExitCode> {
    out(json, &c.status()?, |s| {
        table(
            &["FIELD", "VALUE"],
            &[
                vec!["version".into(), s.version.clone()],
                vec!["uptime".into(), format!("{} s", s.uptime_secs)],
                vec!["repositories".into(), s.repositories.to_string()],
                vec!["manifests".into(), s.manifests.to_string()],
                vec!["tags".into(), s.tags.to_string()],
                vec!["blobs".into(), s.blobs.to_string()],
                vec!["storage".into(), human_bytes(s.storage_bytes)],
                vec!["gc".into(), if s.gc_running { "running".into() } else { "idle".into() }],
            ],
        )
    });
    Ok(ExitCode::SUCCESS)
}

fn repo(c: &dyn Client, cmd: RepoCmd, json: bool) -> R<ExitCode> {
    match cmd {
        RepoCmd::List => out(json, &c.repo_list()?, |rows| {
            let r: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.tags.to_string(),
                        r.manifests.to_string(),
                        human_bytes(r.size_bytes),
                    ]
                })
                .collect();
            table(&["NAME", "TAGS", "MANIFESTS", "SIZE"], &r)
        }),
        RepoCmd::Show { name } => out(json, &c.repo_show(&name)?, |d| {
            let r: Vec<Vec<String>> =
                d.tags.iter().map(|t| vec![t.name.clone(), t.digest.clone(), iso(t.updated_at)]).collect();
            format!(
                "{}: {} tags, {} manifests, {}\n{}",
                d.repository.name,
                d.repository.tags,
                d.repository.manifests,
                human_bytes(d.repository.size_bytes),
                table(&["TAG", "DIGEST", "UPDATED"], &r)
            )
        }),
        RepoCmd::Delete { name, yes } => {
            if !yes {
                eprint!("delete repository {name} with all its tags and manifests? [y/N] ");
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    return Err(CliError::Other("not confirmed; nothing deleted (use --yes)".into()));
                }
            }
            c.repo_delete(&name)?;
            out(json, &serde_json::json!({ "deleted": name }), |_| format!("deleted {name}\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn tag(c: &dyn Client, cmd: TagCmd, json: bool) -> R<ExitCode> {
    match cmd {
        TagCmd::Delete { reference } => {
            let (name, tag) = reference
                .rsplit_once(':')
                .ok_or_else(|| CliError::Invalid(format!("{reference:?} is not NAME:TAG")))?;
            c.tag_delete(name, tag)?;
            out(json, &serde_json::json!({ "deleted": reference }), |_| format!("deleted {reference}\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn policy(c: &dyn Client, cmd: PolicyCmd, json: bool) -> R<ExitCode> {
    match cmd {
        PolicyCmd::List => out(json, &c.policy_list()?, |r| rules_table(r)),
        PolicyCmd::Get { id } => out(json, &c.policy_get(id)?, |r| rules_table(std::slice::from_ref(r))),
        PolicyCmd::Create(args) => {
            let rule = rule_from(&args, None)?;
            out(json, &c.policy_create(&rule)?, |r| rules_table(std::slice::from_ref(r)))
        }
        PolicyCmd::Update { id, rule } => {
            let base = if rule.file.is_some() { None } else { Some(c.policy_get(id)?) };
            let r = rule_from(&rule, base)?;
            out(json, &c.policy_update(id, &r)?, |r| rules_table(std::slice::from_ref(r)))
        }
        PolicyCmd::Delete { id } => {
            c.policy_delete(id)?;
            out(json, &serde_json::json!({ "deleted": id }), |_| format!("deleted rule {id}\n"));
        }
        PolicyCmd::Enable { id } => {
            out(json, &c.policy_set_enabled(id, true)?, |r| rules_table(std::slice::from_ref(r)))
        }
        PolicyCmd::Disable { id } => {
            out(json, &c.policy_set_enabled(id, false)?, |r| rules_table(std::slice::from_ref(r)))
        }
        PolicyCmd::Test { user, roles, account_type, action, repo } => {
            let q = PolicyTest { username: user, roles, account_type, action, repository: repo };
            out(json, &c.policy_test(&q)?, |d| {
                let r: Vec<Vec<String>> = d
                    .rules
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.effect.clone(),
                            r.priority.to_string(),
                            r.description.clone(),
                        ]
                    })
                    .collect();
                format!(
                    "{} ({})\n{}",
                    if d.allowed { "ALLOWED" } else { "DENIED" },
                    d.reason,
                    table(&["RULE", "EFFECT", "PRIORITY", "DESCRIPTION"], &r)
                )
            })
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(c: &dyn Client, cmd: AuditCmd, json: bool) -> R<ExitCode> {
    match cmd {
        AuditCmd::Tail { follow, event_type, actor, repo, since, limit } => {
            let mut f =
                AuditFilter { event_type, actor, repository: repo, since, after_id: None, limit: 1000 };
            // The newest `limit` events: page to the end, keep the tail.
            let mut all = Vec::new();
            loop {
                let page = c.audit_query(&f)?;
                let done = page.len() < f.limit;
                f.after_id = page.last().map(|e| e.id).or(f.after_id);
                all.extend(page);
                if all.len() > limit {
                    all.drain(..all.len() - limit);
                }
                if done {
                    break;
                }
            }
            if json && !follow {
                out(true, &all, |_| String::new());
            } else {
                print_events(json, &all, true);
            }
            if follow {
                let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                    let _ = signal_hook::flag::register(sig, stop.clone());
                }
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let page = c.audit_query(&f)?;
                    if let Some(last) = page.last() {
                        f.after_id = Some(last.id);
                    }
                    print_events(json, &page, false);
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
            }
        }
        AuditCmd::Verify => {
            let v = c.audit_verify()?;
            out(json, &v, |v| match v.first_broken {
                None => format!("audit chain ok: {} rows\n", v.rows),
                Some(id) => {
                    format!("audit chain BROKEN at row {id}: {}\n", v.reason.clone().unwrap_or_default())
                }
            });
            if v.first_broken.is_some() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn gc(c: &dyn Client, cmd: GcCmd, json: bool) -> R<ExitCode> {
    match cmd {
        GcCmd::Trigger { wait } => {
            let id = c.gc_trigger()?;
            if !wait {
                out(json, &serde_json::json!({ "run_id": id }), |_| {
                    format!("garbage collection {id} started\n")
                });
                return Ok(ExitCode::SUCCESS);
            }
            let started = std::time::Instant::now();
            let status = loop {
                let s = c.gc_status()?;
                if !s.running && s.last_run_id >= Some(id) {
                    break s;
                }
                if !json {
                    eprint!("\rgarbage collection {id}: running for {} s", started.elapsed().as_secs());
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            };
            if !json {
                eprintln!();
            }
            out(json, &status, gc_text);
        }
        GcCmd::Status => out(json, &c.gc_status()?, gc_text),
        GcCmd::Reconcile => out(json, &c.reconcile()?, |r| {
            format!(
                "orphan files removed: {} ({})\nmissing files: {}\nupload sessions purged: {}\nstaging files removed: {}\n",
                r.orphan_files_removed,
                human_bytes(r.orphan_bytes_freed as i64),
                r.missing_files.len(),
                r.uploads_purged,
                r.staging_files_removed
            )
        }),
    }
    Ok(ExitCode::SUCCESS)
}

fn snapshot(c: &dyn Client, output: Option<PathBuf>, json: bool) -> R<ExitCode> {
    let s = c.snapshot()?;
    if let Some(o) = &output {
        std::fs::copy(&s.path, o).map_err(|e| {
            CliError::Other(format!(
                "snapshot is at {} on the server; cannot copy it to {}: {e}",
                s.path,
                o.display()
            ))
        })?;
    }
    out(json, &s, |s| {
        format!(
            "snapshot {} ({}, sha256 {}){}\n",
            s.path,
            human_bytes(s.size as i64),
            s.sha256,
            output.as_ref().map_or(String::new(), |o| format!(", copied to {}", o.display()))
        )
    });
    Ok(ExitCode::SUCCESS)
}

fn client(cli: &Cli) -> R<Box<dyn Client>> {
    let token = match &cli.token {
        Some(t) => Some(t.clone()),
        None => {
            std::fs::read_to_string(token_file()).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
        }
    };
    let ca = match &cli.ca_cert {
        Some(p) => {
            Some(std::fs::read(p).map_err(|e| CliError::Tls(format!("cannot read {}: {e}", p.display())))?)
        }
        None => None,
    };
    Ok(match &cli.grpc {
        Some(addr) => Box::new(super::grpc::Grpc::new(addr, token, ca)?),
        None => Box::new(super::rest::Rest::new(&cli.server, token, ca.as_deref())?),
    })
}

fn out<T: serde::Serialize>(json: bool, v: &T, human: impl FnOnce(&T) -> String) {
    let text = if json { serde_json::to_string_pretty(v).unwrap_or_default() + "\n" } else { human(v) };
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn rule_from(args: &RuleArgs, base: Option<Rule>) -> R<Rule> {
    let mut v = match (&args.file, base) {
        (Some(f), _) => {
            let text =
                std::fs::read_to_string(f).map_err(|e| CliError::Invalid(format!("{}: {e}", f.display())))?;
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => v,
                Err(_) => {
                    let t: toml::Value = text.parse().map_err(|e| {
                        CliError::Invalid(format!("{} is neither JSON nor TOML: {e}", f.display()))
                    })?;
                    serde_json::to_value(t).map_err(|e| CliError::Invalid(e.to_string()))?
                }
            }
        }
        (None, Some(r)) => serde_json::to_value(r).unwrap_or_default(),
        (None, None) => serde_json::json!({}),
    };
    let o = v.as_object_mut().ok_or_else(|| CliError::Invalid("a rule must be an object".into()))?;
    if let Some(p) = args.priority {
        o.insert("priority".into(), p.into());
    }
    if let Some(e) = &args.effect {
        o.insert("effect".into(), e.clone().into());
    }
    if let Some(d) = &args.description {
        o.insert("description".into(), d.clone().into());
    }
    for (k, l) in [
        ("actions", &args.actions),
        ("repositories", &args.repositories),
        ("usernames", &args.usernames),
        ("roles", &args.roles),
        ("account_types", &args.account_types),
    ] {
        if !l.is_empty() {
            o.insert(k.into(), serde_json::to_value(l).unwrap_or_default());
        }
    }
    o.remove("id");
    serde_json::from_value(v).map_err(|e| CliError::Invalid(format!("invalid rule: {e}")))
}

fn rules_table(rules: &[Rule]) -> String {
    let list = |v: &[String]| if v.is_empty() { "*".to_string() } else { v.join(",") };
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            let actions: Vec<String> = r
                .actions
                .iter()
                .map(|a| {
                    serde_json::to_value(a)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect();
            vec![
                r.id.to_string(),
                r.priority.to_string(),
                if r.effect == crate::policy::Effect::Allow { "allow".into() } else { "deny".into() },
                if r.enabled { "yes".into() } else { "no".into() },
                list(&actions),
                list(&r.repositories),
                list(&r.usernames),
                list(&r.roles),
            ]
        })
        .collect();
    table(&["ID", "PRIORITY", "EFFECT", "ENABLED", "ACTIONS", "REPOSITORIES", "USERS", "ROLES"], &rows)
}

fn audit_table(events: &[AuditOut]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                iso(e.time),
                e.event_type.clone(),
                e.actor.clone(),
                e.repository.clone(),
                e.reference.clone(),
                e.outcome.clone(),
            ]
        })
        .collect();
    table(&["ID", "TIME", "TYPE", "ACTOR", "REPOSITORY", "REFERENCE", "OUTCOME"], &rows)
}

fn gc_text(s: &GcOut) -> String {
    match s.last_run_id {
        None => format!("gc: {}; no run yet\n", if s.running { "running" } else { "idle" }),
        Some(id) => format!(
            "gc: {}; last run {id} finished {}: {} blobs ({}), {} manifests removed, {} errors\n",
            if s.running { "running" } else { "idle" },
            s.last_finished_at.map(iso).unwrap_or_default(),
            s.blobs_removed,
            human_bytes(s.bytes_freed as i64),
            s.manifests_removed,
            s.errors.len()
        ),
    }
}

fn print_events(json: bool, events: &[AuditOut], header: bool) {
    let mut stdout = std::io::stdout();
    if json {
        for e in events {
            let _ = writeln!(stdout, "{}", serde_json::to_string(e).unwrap_or_default());
        }
    } else if header {
        let _ = stdout.write_all(audit_table(events).as_bytes());
    } else {
        let t = audit_table(events);
        let _ = stdout.write_all(t.split_once('\n').map_or("", |(_, rest)| rest).as_bytes());
    }
    let _ = stdout.flush();
}
