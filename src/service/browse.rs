//! What the web UI shows beyond the admin API: repository search with
//! sizes (filtered by what the caller may pull), a repository and a
//! manifest for anyone who may pull them (with the image configuration's
//! summary), and the dashboard's activity.

use super::access::{allowed, authorize, require_admin, require_user};
use super::admin::{ManifestDetail, RepoPage};
use crate::app::Ctx;
use crate::db;
use crate::db::admin::{RepoSummary, TagInfo};
pub use crate::db::audit::AuditRow;
use crate::error::{Error, Result};
use crate::model::{Action, Digest, Reference, RepoName};
use serde::Serialize;
use std::io::Read;

/// Longest search text accepted.
pub const MAX_NEEDLE: usize = 128;
/// Rows read for one page at most, so a caller who may pull few of many
/// repositories gets a short page (with a `next`) instead of a long scan.
const SCAN_MAX: usize = 5000;

/// Repositories whose name contains `needle`, that the caller may pull,
/// `n` at a time after `last`.
///
/// `last` is the name the previous page ended with, or, when that page
/// stopped at the scan cap among repositories the caller may not see, a
/// position `~<rows>~<name>`: so many rows past a name the caller saw. A
/// cursor never names a repository the caller may not pull.
pub fn repositories(ctx: &Ctx, needle: &str, n: usize, last: Option<&str>) -> Result<RepoPage> {
    require_user(ctx)?;
    let max = ctx.app.config.limits.page_max;
    if n == 0 || n > max {
        return Err(Error::BadRequest(format!("n must be between 1 and {max}")));
    }
    if needle.chars().count() > MAX_NEEDLE {
        return Err(Error::BadRequest(format!("search text is longer than {MAX_NEEDLE} characters")));
    }
    let last = last.unwrap_or("");
    let (base, skip) = match last.strip_prefix('~') {
        Some(rest) => {
            let (rows, name) = rest.split_once('~').unwrap_or((rest, ""));
            let rows: usize = rows.parse().map_err(|_| Error::BadRequest("malformed page cursor".into()))?;
            (name.to_string(), rows)
        }
        None => (last.to_string(), 0),
    };
    let mut cursor = base.clone();
    let mut offset = skip;
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        let batch = ctx.app.db.read(|c| db::admin::search(c, needle, &cursor, offset, n + 1))?;
        offset = 0;
        let exhausted = batch.len() <= n;
        for r in batch {
            scanned += 1;
            cursor.clone_from(&r.name);
            if RepoName::parse(&r.name).is_ok_and(|name| allowed(ctx, Action::Pull, &name)) {
                items.push(r);
                if items.len() > n {
                    break;
                }
            }
        }
        if items.len() > n {
            items.truncate(n);
            let next = items.last().map(|r| r.name.clone());
            return Ok(RepoPage { repositories: items, next });
        }
        if exhausted {
            return Ok(RepoPage { repositories: items, next: None });
        }
        if scanned >= SCAN_MAX {
            // By position past the base: no name the caller may not see.
            return Ok(RepoPage { repositories: items, next: Some(format!("~{}~{}", skip + scanned, base)) });
        }
    }
}

/// A repository and one page of its tags.
#[derive(Serialize)]
pub struct RepoView {
    pub summary: RepoSummary,
    pub tags: Vec<TagInfo>,
    /// The `last` of the next page of tags, when there is one.
    pub next: Option<String>,
}

/// A repository's summary and `n` of its tags after `last`, for anyone who
/// may pull it.
pub fn repository(ctx: &Ctx, name: &RepoName, n: usize, last: Option<&str>) -> Result<RepoView> {
    authorize(ctx, Action::Pull, Some(name))?;
    let max = ctx.app.config.limits.page_max;
    if n == 0 || n > max {
        return Err(Error::BadRequest(format!("n must be between 1 and {max}")));
    }
    let (summary, mut tags) = ctx
        .app
        .db
        .read(|c| {
            let Some(summary) = db::admin::get(c, name.as_str())? else { return Ok(None) };
            let id = db::repos::id(c, name.as_str())?.unwrap_or_default();
            Ok(Some((summary, db::admin::tags_page(c, id, last.unwrap_or(""), n + 1)?)))
        })?
        .ok_or(Error::NotFound(crate::error::What::Repository))?;
    let next = if tags.len() > n {
        tags.truncate(n);
        tags.last().map(|t| t.name.clone())
    } else {
        None
    };
    Ok(RepoView { summary, tags, next })
}

/// The summary of an image configuration.
#[derive(Serialize, Default, Debug)]
pub struct ImageConfig {
    pub os: String,
    pub architecture: String,
    pub created: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub labels: Vec<(String, String)>,
}

#[derive(Serialize)]
pub struct ManifestView {
    #[serde(flatten)]
    pub detail: ManifestDetail,
    /// For an image manifest whose config blob is a JSON image config.
    pub image_config: Option<ImageConfig>,
}

/// Largest config blob read for its summary.
const CONFIG_MAX: u64 = 1 << 20;

/// A manifest's detail, for anyone who may pull its repository.
pub fn manifest(ctx: &Ctx, name: &RepoName, reference: &Reference) -> Result<ManifestView> {
    authorize(ctx, Action::Pull, Some(name))?;
    let detail = super::admin::manifest_detail(ctx, name, reference)?;
    let image_config = detail
        .config
        .as_ref()
        .and_then(|c| c.get("digest")?.as_str().and_then(|d| Digest::parse(d).ok()))
        .and_then(|d| read_config(ctx, &d));
    Ok(ManifestView { detail, image_config })
}

fn read_config(ctx: &Ctx, digest: &Digest) -> Option<ImageConfig> {
    let (reader, size) = ctx.app.store.open(digest).ok()??;
    if size > CONFIG_MAX {
        return None;
    }
    let mut bytes = Vec::new();
    match reader {
        crate::storage::BlobReader::File(f) => f.take(CONFIG_MAX).read_to_end(&mut bytes),
        crate::storage::BlobReader::Stream(s) => s.take(CONFIG_MAX).read_to_end(&mut bytes),
    }
    .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let text = |p: &str| v.pointer(p).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    let list = |p: &str| -> Vec<String> {
        v.pointer(p)
            .and_then(|x| x.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let labels = v
        .pointer("/config/Labels")
        .and_then(|x| x.as_object())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    Some(ImageConfig {
        os: text("/os"),
        architecture: text("/architecture"),
        created: text("/created"),
        entrypoint: list("/config/Entrypoint"),
        cmd: list("/config/Cmd"),
        labels,
    })
}

/// The dashboard's activity (admin only: it comes from the audit log).
#[derive(Serialize)]
pub struct Activity {
    pub recent_pushes: Vec<AuditRow>,
    /// (UTC day number, count) for each of the last `days` days.
    pub pushes_per_day: Vec<(i64, i64)>,
    pub pulls_per_day: Vec<(i64, i64)>,
}

pub fn activity(ctx: &Ctx, days: i64) -> Result<Activity> {
    require_admin(ctx)?;
    let days = days.clamp(1, 90);
    ctx.app.audit.flush();
    let today = ctx.app.now().div_euclid(86400);
    let first = today - days + 1;
    let fill = |rows: Vec<(i64, i64)>| -> Vec<(i64, i64)> {
        (first..=today).map(|d| (d, rows.iter().find(|(day, _)| *day == d).map_or(0, |(_, n)| *n))).collect()
    };
    ctx.app.db.read(|c| {
        Ok(Activity {
            recent_pushes: db::audit::recent(c, "push", 10)?,
            pushes_per_day: fill(db::audit::per_day(c, "push", first * 86400)?),
            pulls_per_day: fill(db::audit::per_day(c, "pull", first * 86400)?),
        })
    })
}
