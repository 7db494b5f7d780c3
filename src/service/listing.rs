//! Paginated listings: tags of a repository and the catalog.

use super::access::{allowed, authorize};
use super::Page;
use crate::app::Ctx;
use crate::db;
use crate::error::{Error, Result, What};
use crate::model::{Action, RepoName};

/// Validates `n` against the configured maximum; absent means the maximum.
fn page_size(ctx: &Ctx, n: Option<&str>) -> Result<usize> {
    let max = ctx.app.config.limits.page_max;
    match n {
        None => Ok(max),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            Ok(_) => Err(Error::InvalidPagination(format!("n must be at most {max}"))),
            Err(_) => Err(Error::InvalidPagination(format!("n must be a number from 0 to {max}"))),
        },
    }
}

fn paginate(mut items: Vec<String>, n: usize) -> Page {
    let next = if items.len() > n {
        items.truncate(n);
        items.last().cloned()
    } else {
        None
    };
    Page { items, next }
}

pub fn tags(ctx: &Ctx, repo: &RepoName, n: Option<&str>, last: Option<&str>) -> Result<Page> {
    authorize(ctx, Action::Pull, Some(repo))?;
    let n = page_size(ctx, n)?;
    let items = ctx.app.db.read(|c| {
        let Some(id) = db::repos::id(c, repo.as_str())? else {
            return Ok(None);
        };
        if n == 0 {
            return Ok(Some(Vec::new()));
        }
        db::tags::list(c, id, last.unwrap_or(""), n + 1).map(Some)
    })?;
    Ok(paginate(items.ok_or(Error::NotFound(What::Repository))?, n))
}

/// Repositories with manifests that the caller may pull, a page at a time.
pub fn catalog(ctx: &Ctx, n: Option<&str>, last: Option<&str>) -> Result<Page> {
    authorize(ctx, Action::Catalog, None)?;
    let n = page_size(ctx, n)?;
    if n == 0 {
        return Ok(Page { items: Vec::new(), next: None });
    }
    // Filtering may drop rows, so read batches until the page (plus one,
    // to know whether there is more) is full or the table is exhausted.
    let mut items = Vec::with_capacity(n + 1);
    let mut cursor = last.unwrap_or("").to_string();
    let batch = (n + 1).max(100);
    loop {
        let rows = ctx.app.db.read(|c| db::repos::list_with_manifests(c, &cursor, batch))?;
        let exhausted = rows.len() < batch;
        for name in rows {
            cursor.clone_from(&name);
            let visible = RepoName::parse(&name).is_ok_and(|r| allowed(ctx, Action::Pull, &r));
            if visible {
                items.push(name);
                if items.len() > n {
                    return Ok(paginate(items, n));
                }
            }
        }
        if exhausted {
            return Ok(paginate(items, n));
        }
    }
}
