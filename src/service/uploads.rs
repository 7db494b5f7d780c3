//! Blob uploads: monolithic, chunked and streamed, with a running hash kept
//! in memory between requests, and cross-repository mounts.
//!
//! Invariant: a chunk lands whole or not at all (it is one part of the
//! staged upload, committed only when the whole chunk arrived), and a blob
//! is committed (verified, durable) before any row names it.  Every staged
//! upload has a session row, written before it begins and removed after it
//! ends, so reconcile can tell abandoned uploads from live ones.  The staged
//! upload's size is its true offset; the in-memory hash is only a cache of
//! its hash, rebuilt from the store when missing (after a restart) or stale.

use super::access::authorize;
use crate::app::Ctx;
use crate::db;
use crate::error::{Error, Result, What};
use crate::model::{Action, Algorithm, Digest, Hasher, RepoName};
use std::io::Read;

const BUF: usize = 512 * 1024;

/// A chunk of request body with what the client declared about it.
pub struct Chunk<'a> {
    pub body: &'a mut dyn Read,
    /// First byte offset from `Content-Range`, when the client sent one.
    pub start: Option<u64>,
    /// Declared length (`Content-Length`, or the `Content-Range` span).
    pub len: Option<u64>,
}

fn new_upload_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(anyhow::anyhow!("random upload id: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::model::to_hex(&b);
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

/// Opens an upload session; returns its id.
pub fn start(ctx: &Ctx, repo: &RepoName, algorithm: Algorithm) -> Result<String> {
    authorize(ctx, Action::Push, Some(repo))?;
    begin(ctx, repo, algorithm)
}

/// A new session: its row, then its staged upload.
fn begin(ctx: &Ctx, repo: &RepoName, algorithm: Algorithm) -> Result<String> {
    let id = new_upload_id()?;
    let now = ctx.app.now();
    ctx.app.db.write(|tx| {
        let repo_id = db::repos::ensure(tx, repo.as_str(), now)?;
        db::uploads::insert(tx, &id, repo_id, algorithm.as_str(), now)
    })?;
    if let Err(e) = ctx.app.store.begin_upload(&id) {
        let _ = ctx.app.db.write(|tx| db::uploads::delete(tx, &id));
        return Err(e);
    }
    Ok(id)
}

/// Ends a session that will not complete: its bytes, then its row (a
/// crash in between leaves a row that expires with the upload TTL).
fn discard(ctx: &Ctx, id: &str) {
    if let Err(e) = ctx.app.store.abort_upload(id) {
        log::error!("cannot abort upload id={id} err={e:#}");
    }
    let _ = ctx.app.db.write(|tx| db::uploads::delete(tx, id));
    ctx.app.uploads.forget(id);
}

/// Mounts a blob from another repository; false when it cannot be mounted
/// (the caller then starts a normal upload).
pub fn mount(ctx: &Ctx, repo: &RepoName, digest: &Digest, from: &RepoName) -> Result<bool> {
    authorize(ctx, Action::Push, Some(repo))?;
    if authorize(ctx, Action::Pull, Some(from)).is_err() {
        return Ok(false);
    }
    let now = ctx.app.now();
    let d = digest.to_string();
    ctx.app.db.write(|tx| {
        let Some(from_id) = db::repos::id(tx, from.as_str())? else {
            return Ok(false);
        };
        if db::blobs::size_in_repo(tx, from_id, &d)?.is_none() {
            return Ok(false);
        }
        let repo_id = db::repos::ensure(tx, repo.as_str(), now)?;
        db::blobs::link(tx, repo_id, &d, now)?;
        db::gc::touch_blob(tx, &d, now)?;
        Ok(true)
    })
}

/// A whole blob in one request (`POST ?digest=`).
pub fn upload_whole(ctx: &Ctx, repo: &RepoName, digest: &Digest, chunk: Chunk) -> Result<()> {
    authorize(ctx, Action::Push, Some(repo))?;
    let id = begin(ctx, repo, digest.algorithm())?;
    // Held while the body streams, so reconcile never purges it mid-request.
    let slot = ctx.app.uploads.slot(&id);
    let busy = slot.lock();
    let r = (|| {
        let mut hasher = digest.algorithm().hasher();
        let size = append(ctx, &id, 0, &mut hasher, chunk.body, chunk.len)?;
        verify_and_commit(ctx, repo, &id, hasher, digest, size)
    })();
    drop(busy);
    match r {
        Ok(()) => ctx.app.uploads.forget(&id),
        Err(_) => discard(ctx, &id),
    }
    r
}

/// The session's current offset (bytes received).
pub fn status(ctx: &Ctx, repo: &RepoName, id: &str) -> Result<u64> {
    authorize(ctx, Action::Push, Some(repo))?;
    session(ctx, repo, id)?;
    ctx.app.store.upload_size(id)?.ok_or(Error::NotFound(What::Upload))
}

/// Appends one chunk (`PATCH`); returns the new offset.
pub fn append_chunk(ctx: &Ctx, repo: &RepoName, id: &str, chunk: Chunk) -> Result<u64> {
    authorize(ctx, Action::Push, Some(repo))?;
    let algorithm = session(ctx, repo, id)?;
    let slot = ctx.app.uploads.slot(id);
    let mut state = busy_wait(&slot)?;
    // Replicas: one request at a time on a session, across processes too.
    let _shared = ctx.app.db.lock_upload(id)?;
    let (offset, mut hasher) = current_state(ctx, id, algorithm, state.take())?;
    let r = append_at(ctx, id, offset, &mut hasher, chunk);
    let end = match r {
        Ok(end) => end,
        Err(e) => {
            *state = Some((offset, hasher));
            return Err(e);
        }
    };
    *state = Some((end, hasher));
    ctx.app.db.write(|tx| db::uploads::touch(tx, id, end, ctx.app.now()))?;
    Ok(end)
}

/// Completes a session (`PUT ?digest=`), with an optional last chunk.
pub fn finish(ctx: &Ctx, repo: &RepoName, id: &str, digest: &Digest, chunk: Chunk) -> Result<()> {
    authorize(ctx, Action::Push, Some(repo))?;
    let algorithm = session(ctx, repo, id)?;
    let slot = ctx.app.uploads.slot(id);
    let mut state = busy_wait(&slot)?;
    // Held to the end, over the commit or the discard.
    let _shared = ctx.app.db.lock_upload(id)?;
    let (offset, mut hasher) = current_state(ctx, id, algorithm, state.take())?;
    let end = match append_at(ctx, id, offset, &mut hasher, chunk) {
        Ok(end) => end,
        Err(e) => {
            *state = Some((offset, hasher));
            return Err(e);
        }
    };
    if hasher.algorithm() != digest.algorithm() {
        hasher = rehash(ctx, id, digest.algorithm())?;
    }
    let r = verify_and_commit(ctx, repo, id, hasher, digest, end);
    // Whatever happened, the session is over: a mismatch discards it.
    drop(state);
    match r {
        Ok(()) => ctx.app.uploads.forget(id),
        Err(_) => discard(ctx, id),
    }
    r
}

/// Cancels a session and discards its bytes.
pub fn cancel(ctx: &Ctx, repo: &RepoName, id: &str) -> Result<()> {
    authorize(ctx, Action::Push, Some(repo))?;
    session(ctx, repo, id)?;
    let slot = ctx.app.uploads.slot(id);
    let _guard = busy_wait(&slot)?;
    let _shared = ctx.app.db.lock_upload(id)?;
    // Finished (or cancelled) while this request waited for the locks.
    if !ctx.app.db.write(|tx| db::uploads::delete(tx, id))? {
        return Err(Error::NotFound(What::Upload));
    }
    ctx.app.store.abort_upload(id)?;
    drop(_shared);
    drop(_guard);
    ctx.app.uploads.forget(id);
    Ok(())
}

/// The session's lock in this process, waited for a bounded time: a
/// request stuck behind a client that stopped sending its chunk answers
/// `Busy` (429, retry) instead of parking a worker.
fn busy_wait(slot: &crate::storage::Slot) -> Result<parking_lot::MutexGuard<'_, Option<(u64, Hasher)>>> {
    slot.try_lock_for(db::UPLOAD_LOCK_WAIT)
        .ok_or_else(|| Error::Busy("another request on this upload session is in progress; retry".into()))
}

/// The session's hash algorithm, if `id` is a session of `repo`.
fn session(ctx: &Ctx, repo: &RepoName, id: &str) -> Result<Algorithm> {
    let found = ctx.app.db.read(|c| {
        let Some(up) = db::uploads::get(c, id)? else {
            return Ok(None);
        };
        let repo_id = db::repos::id(c, repo.as_str())?;
        Ok((repo_id == Some(up.repo_id)).then_some(up.algorithm))
    })?;
    let algorithm = found.ok_or(Error::NotFound(What::Upload))?;
    algorithm.parse().map_err(|e: String| Error::Internal(anyhow::anyhow!("stored upload algorithm: {e}")))
}

/// The session's offset and running hash: this process's cached state when
/// it matches the store, else the hash state stored with the last part
/// (another replica, or this one before a restart, wrote it), else rebuilt
/// by reading the staged bytes (uploads staged before hash states were
/// stored).
fn current_state(
    ctx: &Ctx,
    id: &str,
    algorithm: Algorithm,
    cached: Option<(u64, Hasher)>,
) -> Result<(u64, Hasher)> {
    let staged = ctx.app.store.upload_state(id)?.ok_or(Error::NotFound(What::Upload))?;
    if let Some((off, h)) = cached {
        // Only if it is the state the store has: another process may have
        // written a part of the same size.
        if off == staged.size && (staged.resume.is_empty() || h.save() == staged.resume) {
            return Ok((off, h));
        }
    }
    if staged.size == 0 {
        return Ok((0, algorithm.hasher()));
    }
    match Hasher::restore(&staged.resume) {
        Some(h) if h.algorithm() == algorithm => Ok((staged.size, h)),
        _ => Ok((staged.size, rehash(ctx, id, algorithm)?)),
    }
}

fn rehash(ctx: &Ctx, id: &str, algorithm: Algorithm) -> Result<Hasher> {
    let mut hasher = algorithm.hasher();
    let mut r = ctx.app.store.read_upload(id)?;
    let mut buf = vec![0u8; BUF];
    loop {
        let n = read_some(&mut *r, &mut buf, "read staged upload")?;
        if n == 0 {
            return Ok(hasher);
        }
        hasher.update(&buf[..n]);
    }
}

/// Appends a chunk at `offset`, checking the client's declared start; on
/// failure the part is dropped and the hash restored, so it lands whole or
/// not at all.  Returns the new end offset.
fn append_at(ctx: &Ctx, id: &str, offset: u64, hasher: &mut Hasher, chunk: Chunk) -> Result<u64> {
    if let Some(start) = chunk.start {
        if start != offset {
            return Err(Error::UploadOutOfOrder { offset });
        }
    }
    let before = hasher.clone();
    match append(ctx, id, offset, hasher, chunk.body, chunk.len) {
        Ok(n) => Ok(offset + n),
        Err(e) => {
            *hasher = before;
            Err(e)
        }
    }
}

/// Streams `body` into a new part of the upload while hashing, and commits
/// the part only when the whole declared body arrived; returns its length.
fn append(
    ctx: &Ctx,
    id: &str,
    at: u64,
    hasher: &mut Hasher,
    body: &mut dyn Read,
    declared: Option<u64>,
) -> Result<u64> {
    let mut w = ctx.app.store.append_part(id, at)?;
    // Size the buffer to the body: small blobs should not cost 512 KiB each.
    let mut buf = vec![0u8; declared.map_or(BUF, |n| (n as usize).clamp(1, BUF))];
    let mut total = 0u64;
    loop {
        let n = read_some(body, &mut buf, "read request body").map_err(|e| match e {
            Error::Internal(err) => Error::BodyIncomplete(format!("request body: {err:#}")),
            other => other,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n]).map_err(store_write_error)?;
        total += n as u64;
    }
    if let Some(len) = declared {
        if total != len {
            // Dropped uncommitted: the upload stays as it was.
            return Err(Error::BodyIncomplete(format!(
                "request body ended after {total} of {len} declared bytes"
            )));
        }
    }
    w.commit(&hasher.save())?;
    Ok(total)
}

/// A part writer's error: the store's own (an object store that is
/// unavailable is a 503) when it carries one, else an internal error.
fn store_write_error(e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(err) = inner.downcast::<Error>() {
                return *err;
            }
        }
        return Error::Internal(anyhow::anyhow!("write upload"));
    }
    Error::Internal(anyhow::Error::new(e).context("write upload"))
}

/// Reads until `buf` is full or the stream ends, retrying interrupts.
fn read_some(r: &mut dyn Read, buf: &mut [u8], what: &'static str) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Internal(anyhow::Error::new(e).context(what))),
        }
    }
    Ok(filled)
}

fn verify_and_commit(
    ctx: &Ctx,
    repo: &RepoName,
    id: &str,
    hasher: Hasher,
    digest: &Digest,
    size: u64,
) -> Result<()> {
    let actual = hasher.finish();
    if &actual != digest {
        return Err(Error::DigestMismatch { expected: digest.to_string(), actual: actual.to_string() });
    }
    // File and row under the digest's lock (this process's, and the
    // database's for replicas): garbage collection checks the row and
    // unlinks under the same locks.
    let _lock = ctx.app.blob_locks.lock(digest);
    let _shared = ctx.app.db.lock_digest(digest.hex())?;
    ctx.app.store.commit_upload(id, digest, size)?;
    let now = ctx.app.now();
    let d = digest.to_string();
    ctx.app.db.write(|tx| {
        let repo_id = db::repos::ensure(tx, repo.as_str(), now)?;
        db::blobs::insert(tx, &d, size, now)?;
        db::blobs::link(tx, repo_id, &d, now)?;
        db::uploads::delete(tx, id)?;
        Ok(())
    })
}
