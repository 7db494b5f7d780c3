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
pub mod tests;

pub use fs::FsStore;
pub use hashes::UploadStates;
pub use locks::BlobLocks;

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
    /// (not the machine: `commit_upload` makes the blob durable).
    fn commit(self: Box<Self>) -> Result<()>;
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
    /// Calls `f` with every committed blob's digest and size, streaming.
    /// Objects whose names are not digests are reported with `None`.
    fn each_blob(&self, f: &mut dyn FnMut(Option<Digest>, u64, &str)) -> Result<()>;

    /// Begins an empty staged upload; an id already in use is an error.
    fn begin_upload(&self, id: &str) -> Result<()>;
    /// Bytes in the upload's committed parts, if the upload exists.
    fn upload_size(&self, id: &str) -> Result<Option<u64>>;
    /// Opens the next part of an upload (one at a time per upload: the
    /// caller serializes a session's requests).
    fn append_part(&self, id: &str) -> Result<Box<dyn PartWriter>>;
    /// Reads the upload's committed parts in order, from the start (to
    /// rebuild a running hash after a restart).
    fn read_upload(&self, id: &str) -> Result<Box<dyn Read + Send>>;
    /// Makes the upload's parts the blob `digest` (verified by the caller)
    /// and ends the upload; durable when it returns.  Readers of `digest`
    /// see no blob or the whole blob, never part of one.  When the blob
    /// already exists the upload is discarded and the blob kept.  An upload
    /// that is gone (committed or aborted) is `NotFound(Upload)`.
    fn commit_upload(&self, id: &str, digest: &Digest) -> Result<()>;
    /// Discards an upload and its parts; Ok when it is already gone, so an
    /// abort racing a commit (or a second abort) is harmless.
    fn abort_upload(&self, id: &str) -> Result<()>;
    /// Calls `f` with every staged upload's id, streaming.
    fn each_upload(&self, f: &mut dyn FnMut(&str)) -> Result<()>;
}

/// The blob store the configuration names (today the filesystem under the
/// data directory).
pub fn open(config: &crate::config::Storage) -> Result<std::sync::Arc<dyn BlobStore>> {
    Ok(std::sync::Arc::new(FsStore::open(&config.data_dir)?))
}
