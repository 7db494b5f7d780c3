//! Content-addressed blob files and staged uploads, behind the `BlobStore`
//! trait so that another backend (S3-compatible) can replace the filesystem
//! without touching the service or the frontends.
//!
//! Invariant: `storage` knows digests and upload ids, never repositories or
//! tags; a blob is only ever visible complete (staged, hashed by the caller,
//! fsynced, then renamed into place).

mod fs;
mod locks;

pub use fs::FsStore;
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

/// Appends to a staged upload; `finish` makes the appended bytes durable
/// enough to survive the process (not the machine; commit fsyncs).
pub trait UploadWriter: Write + Send {
    fn finish(self: Box<Self>) -> Result<()>;
}

pub trait BlobStore: Send + Sync {
    /// Size of a committed blob, if its file exists.
    fn stat(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Opens a committed blob for reading, with its size.
    fn open(&self, digest: &Digest) -> Result<Option<(BlobReader, u64)>>;
    /// Creates an empty staging file for a new upload.
    fn create_upload(&self, id: &str) -> Result<()>;
    /// Current length of a staged upload, if it exists.
    fn upload_size(&self, id: &str) -> Result<Option<u64>>;
    /// Opens a staged upload for appending at its end.
    fn append_upload(&self, id: &str) -> Result<Box<dyn UploadWriter>>;
    /// Cuts a staged upload back to `len` bytes (a chunk that did not land whole).
    fn truncate_upload(&self, id: &str, len: u64) -> Result<()>;
    /// Reads a staged upload from the start (to re-hash after a restart).
    fn read_upload(&self, id: &str) -> Result<Box<dyn Read + Send>>;
    /// Makes a staged upload the blob `digest`: fsync, then atomic rename.
    /// The caller has verified the digest.
    fn commit_upload(&self, id: &str, digest: &Digest) -> Result<()>;
    fn delete_upload(&self, id: &str) -> Result<()>;
    /// Removes a committed blob file; false when it was not there.
    fn delete_blob(&self, digest: &Digest) -> Result<bool>;
    /// Calls `f` with every committed blob file's digest and size, streaming.
    /// Files whose names are not digests are reported with `None`.
    fn each_blob_file(&self, f: &mut dyn FnMut(Option<Digest>, u64, &str)) -> Result<()>;
    /// Calls `f` with every staged upload's id and modification time (Unix s).
    fn each_upload_file(&self, f: &mut dyn FnMut(&str, i64)) -> Result<()>;
}
