//! Reading and unlinking blobs of a repository.

use super::access::authorize;
use crate::app::Ctx;
use crate::db;
use crate::error::{Error, Result, What};
use crate::model::{Action, Digest, RepoName};
pub use crate::storage::BlobReader;

/// Size of a blob the repository may serve.
pub fn stat(ctx: &Ctx, repo: &RepoName, digest: &Digest) -> Result<u64> {
    authorize(ctx, Action::Pull, Some(repo))?;
    size_in_repo(ctx, repo, digest)
}

fn size_in_repo(ctx: &Ctx, repo: &RepoName, digest: &Digest) -> Result<u64> {
    ctx.app
        .db
        .read(|c| match db::repos::id(c, repo.as_str())? {
            Some(id) => db::blobs::size_in_repo(c, id, &digest.to_string()),
            None => Ok(None),
        })?
        .ok_or(Error::NotFound(What::Blob))
}

/// Opens a blob of the repository for streaming.
pub fn open(ctx: &Ctx, repo: &RepoName, digest: &Digest) -> Result<(BlobReader, u64)> {
    authorize(ctx, Action::Pull, Some(repo))?;
    size_in_repo(ctx, repo, digest)?;
    match ctx.app.store.open(digest)? {
        Some(f) => Ok(f),
        None => {
            log::warn!("blob row without file req={} digest={digest}", ctx.req_id);
            Err(Error::NotFound(What::Blob))
        }
    }
}

/// Removes the repository's association with a blob; the file and row stay
/// for garbage collection, since other repositories may share them.
pub fn delete(ctx: &Ctx, repo: &RepoName, digest: &Digest) -> Result<()> {
    authorize(ctx, Action::Delete, Some(repo))?;
    let now = ctx.app.now();
    let removed = ctx.app.db.write(|tx| {
        let removed = match db::repos::id(tx, repo.as_str())? {
            Some(id) => db::blobs::unlink(tx, id, &digest.to_string())?,
            None => false,
        };
        if removed {
            let mut ev = ctx.event("delete", "ok");
            ev.repository = Some(repo.to_string());
            ev.reference = Some(digest.to_string());
            ev.detail = serde_json::json!({ "kind": "blob" });
            crate::audit::record(tx, &ev, now)?;
        }
        Ok(removed)
    })?;
    if removed {
        Ok(())
    } else {
        Err(Error::NotFound(What::Blob))
    }
}
