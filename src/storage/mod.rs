//! Content-addressed blob files and staged uploads, behind the `BlobStore`
//! trait so that another backend (S3-compatible) can replace the filesystem
//! without touching the service or the frontends.
//!
//! Invariant: `storage` knows digests and upload ids, never repositories or
//! tags; a blob is only ever visible complete (staged, hashed by the caller,
//! fsynced, then renamed into place).

mod fs;
mod hashes;
mod locks;
mod s3;
pub mod tests;

pub use fs::FsStore;
pub use hashes::{Slot, UploadStates};
pub use locks::BlobLocks;
pub use s3::{S3Config, S3Store};

use crate::error::Result;
use crate::model::Digest;
use std::io::{Read, Seek, Write};

pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// A committed blob opened for reading: a local file or any seekable
/// stream (a remote store).
pub enum BlobReader {
    File(std::fs::File),
    Stream(Box<dyn ReadSeek>),
}

impl BlobReader {
    pub fn seek_to(&mut self, pos: u64) -> std::io::Result<()> {
        let from = std::io::SeekFrom::Start(pos);
        match self {
            BlobReader::File(f) => f.seek(from).map(drop),
            BlobReader::Stream(s) => s.seek(from).map(drop),
        }
    }
}

/// One part being appended to a staged upload.  Its bytes become part of
/// the upload only when `commit` returns Ok; a part dropped without commit
/// leaves the upload exactly as it was, so a chunk lands whole or not at all.
pub trait PartWriter: Write + Send {
    /// Adds the part to the upload, durable enough to survive the process
    /// (not the machine: `commit_upload` makes the blob durable), and
    /// records `resume` with it in the same step: the caller's state after
    /// this part (its running hash), read back by `upload_state`, so that any
    /// process can continue the upload without reading its bytes back.
    fn commit(self: Box<Self>, resume: &[u8]) -> Result<()>;
}

/// What a staged upload holds: the bytes of its committed parts and the
/// `resume` state recorded with the last of them (empty before the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    pub size: u64,
    pub resume: Vec<u8>,
}

/// Committed blobs, named by digest, and staged uploads, named by upload id.
///
/// The terms are those an object store can honour: a staged upload is an
/// append-only sequence of parts that is committed under a digest or
/// aborted; nothing is truncated, rewritten or found by its age (the
/// database records which uploads exist and since when).  Every backend
/// passes `storage::tests::conformance`.
pub trait BlobStore: Send + Sync {
    /// Size of a committed blob, if it exists.
    fn stat(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Opens a committed blob for reading, with its size.
    fn open(&self, digest: &Digest) -> Result<Option<(BlobReader, u64)>>;
    /// Removes a committed blob; false when it was not there.
    fn delete_blob(&self, digest: &Digest) -> Result<bool>;
    /// Calls `f` with every committed blob's digest (and where it is, for
    /// reports), streaming.  Objects whose names are not digests are
    /// reported with `None`.  Sizes are `stat`'s to give: an object store's
    /// listing may not know them.
    fn each_blob(&self, f: &mut dyn FnMut(Option<Digest>, &str)) -> Result<()>;

    /// Begins an empty staged upload; an id already in use is an error.
    fn begin_upload(&self, id: &str) -> Result<()>;
    /// The upload's committed size and resume state, if the upload exists.
    fn upload_state(&self, id: &str) -> Result<Option<Staged>>;
    /// Bytes in the upload's committed parts, if the upload exists.
    fn upload_size(&self, id: &str) -> Result<Option<u64>> {
        Ok(self.upload_state(id)?.map(|s| s.size))
    }
    /// Opens the next part of an upload, which the caller believes holds
    /// `at` bytes (one part at a time per upload: the caller serializes a
    /// session's requests).  An upload of another size is
    /// `UploadOutOfOrder` with its true size: the caller's view was stale
    /// (another process moved it on, or an object store answered from an
    /// older replica), and nothing is written.
    fn append_part(&self, id: &str, at: u64) -> Result<Box<dyn PartWriter>>;
    /// Reads the upload's committed parts in order, from the start (to
    /// rebuild a running hash that no resume state carries: uploads staged
    /// before resume states existed).  A store that cannot read staged
    /// parts back (S3 multipart parts) answers `Unsupported`.
    fn read_upload(&self, id: &str) -> Result<Box<dyn Read + Send>>;
    /// Makes the upload's parts — `size` bytes, which the caller hashed to
    /// `digest` — the blob `digest` and ends the upload; durable when it
    /// returns.  An upload of another size is refused (`Unavailable`: a
    /// stale view, retry) and left as it is.  Readers of `digest`
    /// see no blob or the whole blob, never part of one.  When the blob
    /// already exists the upload is discarded and the blob kept.  An upload
    /// that is gone (committed or aborted) is `NotFound(Upload)`.
    fn commit_upload(&self, id: &str, digest: &Digest, size: u64) -> Result<()>;
    /// Discards an upload and its parts; Ok when it is already gone, so an
    /// abort racing a commit (or a second abort) is harmless.
    fn abort_upload(&self, id: &str) -> Result<()>;
    /// Calls `f` with every staged upload's id, streaming.
    fn each_upload(&self, f: &mut dyn FnMut(&str)) -> Result<()>;

    /// Binds the store to the registry (database) `registry_id` before any
    /// use: a store shared by nothing else (the data directory) has nothing
    /// to do; a bucket records the id, and refuses another registry's, or a
    /// new registry on blobs it did not write, since reconcile would take
    /// every blob without a row for an orphan.
    fn claim(&self, registry_id: &str) -> Result<()> {
        let _ = registry_id;
        Ok(())
    }
}

/// Refuses an upload id the registry did not make (ours are UUIDs): no
/// other text ever becomes a path or an object key.
pub(crate) fn valid_upload_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(crate::error::Error::NotFound(crate::error::What::Upload));
    }
    Ok(())
}

/// The stale view a store reports for an upload that is not the size its
/// caller expected.
pub(crate) fn stale_upload(id: &str, expected: u64, actual: u64) -> crate::error::Error {
    crate::error::Error::Unavailable(format!(
        "upload {id} holds {actual} bytes in the store, not {expected}: a stale view; retry"
    ))
}

/// The blob store the configuration names: the filesystem under the data
/// directory, or an S3 bucket (checked to answer before this returns).
pub fn open(config: &crate::config::Storage) -> Result<std::sync::Arc<dyn BlobStore>> {
    if config.backend != "s3" {
        return Ok(std::sync::Arc::new(FsStore::open(&config.data_dir)?));
    }
    let read = |path: &str, what: &str| {
        std::fs::read(path)
            .map_err(|e| crate::error::Error::Internal(anyhow::anyhow!("cannot read {what} {path}: {e}")))
    };
    let secret = read(&config.s3_secret_key_file, "storage.s3_secret_key_file")?;
    let secret = String::from_utf8(secret).map_err(|_| {
        crate::error::Error::Internal(anyhow::anyhow!("storage.s3_secret_key_file is not UTF-8"))
    })?;
    let ca_pem = match config.s3_ca_file.as_str() {
        "" => None,
        path => Some(read(path, "storage.s3_ca_file")?),
    };
    let store = S3Store::open(S3Config {
        endpoint: config.s3_endpoint.clone(),
        region: config.s3_region.clone(),
        bucket: config.s3_bucket.clone(),
        prefix: config.s3_prefix.clone(),
        access_key_id: config.s3_access_key_id.clone(),
        secret_key: secret.trim().to_string(),
        ca_pem,
        part_size: config.s3_part_size,
    })?;
    store.check()?;
    Ok(std::sync::Arc::new(store))
}
