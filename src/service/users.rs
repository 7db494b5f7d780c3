//! Users of the local identity provider: the first-start admin and the
//! `mcr user` commands.

use super::access::{require_admin, require_system};
use crate::app::Ctx;
use crate::audit::{record, Event};
use crate::auth::local::{hash_password, random_password};
use crate::auth::Password;
use crate::db;
use crate::error::{Context, Error, Result};
use crate::policy::AccountType;
use serde::Serialize;
use std::io::Write;

pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// On an empty user table, creates `admin` (role admin) with a random
/// password, written 0600 to `<data>/initial-admin-password`; returns it so
/// the caller can show it once.
pub fn ensure_initial_admin(ctx: &Ctx) -> Result<Option<Password>> {
    require_system(ctx)?;
    let app = ctx.app;
    if app.config.auth.provider != "local" || app.db.read(db::users::count)? > 0 {
        return Ok(None);
    }
    let password = random_password()?;
    let hash = hash_password(&password)?;
    let now = app.now();
    let created = app.db.write(|tx| {
        if db::users::count(tx)? > 0 {
            return Ok(false);
        }
        db::users::insert(tx, "admin", &hash, r#"["admin"]"#, "human", now)?;
        record(
            tx,
            &user_event(ctx, "user_add", "admin", serde_json::json!({ "roles": ["admin"], "initial": true })),
            now,
        )?;
        Ok(true)
    })?;
    if !created {
        return Ok(None);
    }
    let path = app.config.storage.data_dir.join(INITIAL_PASSWORD_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).context("create initial admin password file")?;
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .context("restrict initial admin password file")?;
    writeln!(f, "{}", password.expose()).context("write initial admin password file")?;
    Ok(Some(password))
}

fn valid_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "username {name:?} is invalid: use 1-64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

fn valid_password(p: &Password) -> Result<()> {
    if p.expose().chars().count() < 8 {
        return Err(Error::BadRequest("password must have at least 8 characters".into()));
    }
    if p.expose().len() > 1024 {
        return Err(Error::BadRequest("password is longer than 1024 bytes".into()));
    }
    Ok(())
}

fn user_event(ctx: &Ctx, event_type: &'static str, username: &str, detail: serde_json::Value) -> Event {
    Event { reference: Some(format!("user:{username}")), detail, ..ctx.event(event_type, "ok") }
}

/// Creates a user (admin only).
pub fn add(
    ctx: &Ctx,
    username: &str,
    password: &Password,
    roles: &[String],
    account_type: AccountType,
) -> Result<()> {
    require_admin(ctx)?;
    let app = ctx.app;
    valid_username(username)?;
    valid_password(password)?;
    if roles.iter().any(|r| r.is_empty() || r.len() > 64) {
        return Err(Error::BadRequest("roles must be 1-64 characters".into()));
    }
    if roles.len() > 64 {
        return Err(Error::BadRequest("a user has at most 64 roles".into()));
    }
    let hash = hash_password(password)?;
    let roles_json = serde_json::to_string(roles).context("encode roles")?;
    let now = app.now();
    app.db.write(|tx| {
        if db::users::by_name(tx, username)?.is_some() {
            return Err(Error::BadRequest(format!("user {username:?} already exists")));
        }
        db::users::insert(tx, username, &hash, &roles_json, account_type.as_str(), now)?;
        let detail = serde_json::json!({ "roles": roles, "account_type": account_type.as_str() });
        record(tx, &user_event(ctx, "user_add", username, detail), now)
    })
}

pub fn set_password(ctx: &Ctx, username: &str, password: &Password) -> Result<()> {
    require_admin(ctx)?;
    let app = ctx.app;
    valid_password(password)?;
    let hash = hash_password(password)?;
    let now = app.now();
    if username == "admin" {
        // The first-start password is no longer the admin's: do not keep it.
        let _ = std::fs::remove_file(app.config.storage.data_dir.join(INITIAL_PASSWORD_FILE));
    }
    app.db.write(|tx| {
        let u = db::users::by_name(tx, username)?.ok_or(Error::NotFound(crate::error::What::User))?;
        db::users::set_password(tx, username, &hash)?;
        db::users::delete_sessions(tx, u.id)?;
        db::ui::delete_for_user(tx, username)?;
        db::users::bump_generation(tx)?;
        record(tx, &user_event(ctx, "user_passwd", username, serde_json::json!({})), now)
    })?;
    // After the commit: a validation racing with the change cannot cache
    // the old state again.
    app.auth.clear_cache();
    Ok(())
}

pub fn set_disabled(ctx: &Ctx, username: &str, disabled: bool) -> Result<()> {
    require_admin(ctx)?;
    let app = ctx.app;
    let now = app.now();
    app.db.write(|tx| {
        let u = db::users::by_name(tx, username)?.ok_or(Error::NotFound(crate::error::What::User))?;
        db::users::set_disabled(tx, username, disabled)?;
        db::users::delete_sessions(tx, u.id)?;
        db::ui::delete_for_user(tx, username)?;
        db::users::bump_generation(tx)?;
        let t = if disabled { "user_disable" } else { "user_enable" };
        record(tx, &user_event(ctx, t, username, serde_json::json!({})), now)
    })?;
    app.auth.clear_cache();
    Ok(())
}

#[derive(Serialize)]
pub struct UserInfo {
    pub username: String,
    pub roles: Vec<String>,
    pub account_type: String,
    pub disabled: bool,
    pub created_at: i64,
}

pub fn list(ctx: &Ctx) -> Result<Vec<UserInfo>> {
    require_admin(ctx)?;
    Ok(ctx
        .app
        .db
        .read(db::users::list)?
        .into_iter()
        .map(|u| UserInfo {
            roles: serde_json::from_str(&u.roles).unwrap_or_default(),
            username: u.username,
            account_type: u.account_type,
            disabled: u.disabled,
            created_at: u.created_at,
        })
        .collect())
}
