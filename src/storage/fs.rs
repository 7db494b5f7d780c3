//! The filesystem blob store.
//!
//! ```text
//! <data>/blobs/<algorithm>/<first 2 hex>/<hex>   committed blobs, immutable
//! <data>/uploads/<upload id>                      staged uploads, append-only
//! <data>/uploads/<upload id>.len                  bytes in its committed parts,
//!                                                 then the resume state in hex
//! ```
//! Invariant: a file under `blobs/` is complete and its name is its digest;
//! it got there by `rename` from `uploads/` after an fsync. A staged upload
//! is the first `.len` bytes of its file: bytes past that (a part that a
//! crash cut short) are not part of it and are cut off before the next part
//! or the commit.

use super::{BlobReader, BlobStore, PartWriter, Staged};
use crate::error::{Context, Error, Result, What};
use crate::model::Digest;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub struct FsStore {
    blobs: PathBuf,
    uploads: PathBuf,
}

impl FsStore {
    pub fn open(data_dir: &Path) -> Result<FsStore> {
        let blobs = data_dir.join("blobs");
        let uploads = data_dir.join("uploads");
        fs::create_dir_all(&blobs).context("create blobs directory")?;
        fs::create_dir_all(&uploads).context("create uploads directory")?;
        Ok(FsStore { blobs, uploads })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.algorithm().as_str()).join(&d.hex()[..2]).join(d.hex())
    }

    /// The committed length and resume state of an upload: its `.len` file
    /// (an upload staged before `.len` files existed is its whole file, with
    /// no resume state); `None` when the upload does not exist.
    fn staged(&self, id: &str) -> Result<Option<Staged>> {
        let path = self.upload_path(id)?;
        let Some(meta) = not_found_none(fs::metadata(&path), "stat upload")? else { return Ok(None) };
        let Some(text) = not_found_none(fs::read_to_string(len_path(&path)), "read upload length")? else {
            return Ok(Some(Staged { size: meta.len(), resume: Vec::new() }));
        };
        let corrupt = || Error::Internal(anyhow::anyhow!("upload length file of {id} is corrupt"));
        let mut fields = text.split_whitespace();
        let size = fields.next().and_then(|n| n.parse().ok()).ok_or_else(corrupt)?;
        let resume = match fields.next() {
            Some(hex) => crate::model::from_hex(hex).ok_or_else(corrupt)?,
            None => Vec::new(),
        };
        Ok(Some(Staged { size, resume }))
    }

    fn committed(&self, id: &str) -> Result<Option<u64>> {
        Ok(self.staged(id)?.map(|s| s.size))
    }

    fn upload_path(&self, id: &str) -> Result<PathBuf> {
        super::valid_upload_id(id)?;
        Ok(self.uploads.join(id))
    }
}

/// Appends one part to a staged upload file.  Small parts are written
/// directly; once a part passes `OFFLOAD_AFTER` bytes the writes move to a writer thread,
/// so that hashing the next buffer overlaps writing the last one, and that
/// thread starts writeback every `SYNC_EVERY` bytes so the final fsync at
/// commit has little left to do.
/// A part dropped without `commit` cuts the file back to where the part
/// began (an object store would simply not complete the part).
struct FileWriter {
    file: Option<File>,
    written: u64,
    offload: Option<Offload>,
    path: PathBuf,
    start: u64,
    committed: bool,
}

struct Offload {
    tx: crossbeam::channel::Sender<Vec<u8>>,
    spare: crossbeam::channel::Receiver<Vec<u8>>,
    handle: std::thread::JoinHandle<io::Result<()>>,
}

const OFFLOAD_AFTER: u64 = 8 << 20;
const SYNC_EVERY: u64 = 64 << 20;

impl FileWriter {
    fn new(file: File, path: PathBuf, start: u64) -> FileWriter {
        FileWriter { file: Some(file), written: 0, offload: None, path, start, committed: false }
    }

    fn start_offload(&mut self) -> io::Result<()> {
        let mut file = self.file.take().expect("file present until offloaded");
        let (tx, rx) = crossbeam::channel::bounded::<Vec<u8>>(4);
        let (spare_tx, spare) = crossbeam::channel::bounded::<Vec<u8>>(4);
        let handle = std::thread::Builder::new().name("upload-writer".into()).spawn(move || {
            let mut unsynced = 0u64;
            for buf in rx {
                file.write_all(&buf)?;
                unsynced += buf.len() as u64;
                if unsynced >= SYNC_EVERY {
                    file.sync_data()?;
                    unsynced = 0;
                }
                let _ = spare_tx.try_send(buf);
            }
            Ok(())
        })?;
        self.offload = Some(Offload { tx, spare, handle });
        Ok(())
    }

    /// Joins the writer thread, returning its first error.
    fn join_offload(&mut self) -> io::Result<()> {
        match self.offload.take() {
            Some(o) => {
                drop(o.tx);
                o.handle.join().map_err(|_| io::Error::other("upload writer panicked"))?
            }
            None => Ok(()),
        }
    }
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.offload.is_none() && self.written + buf.len() as u64 > OFFLOAD_AFTER {
            self.start_offload()?;
        }
        self.written += buf.len() as u64;
        match (&self.offload, &mut self.file) {
            (Some(o), _) => {
                let mut v = o.spare.try_recv().unwrap_or_default();
                v.clear();
                v.extend_from_slice(buf);
                if o.tx.send(v).is_err() {
                    // The writer stopped on an error: surface it.
                    self.join_offload()?;
                    return Err(io::Error::other("upload writer stopped"));
                }
                Ok(buf.len())
            }
            (None, Some(f)) => {
                f.write_all(buf)?;
                Ok(buf.len())
            }
            (None, None) => Err(io::Error::other("upload writer already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        let _ = self.join_offload();
        if !self.committed {
            // The upload may be gone already (aborted): nothing to cut.
            if let Ok(f) = OpenOptions::new().write(true).open(&self.path) {
                if let Err(e) = f.set_len(self.start) {
                    log::error!("cannot cut back an unfinished part path={} err={e}", self.path.display());
                }
            }
        }
    }
}

impl PartWriter for FileWriter {
    fn commit(mut self: Box<Self>, resume: &[u8]) -> Result<()> {
        // Written bytes are in the page cache and survive a process crash;
        // commit_upload fsyncs before the blob becomes visible.
        self.join_offload().context("write upload")?;
        write_len(&self.path, self.start + self.written, resume).context("record upload length")?;
        self.committed = true;
        Ok(())
    }
}

fn len_path(upload: &Path) -> PathBuf {
    let mut p = upload.as_os_str().to_owned();
    p.push(".len");
    PathBuf::from(p)
}

/// Records an upload's committed length and resume state: written aside,
/// then renamed over the old one, so a crash leaves the old length or the
/// new, never half.
fn write_len(upload: &Path, len: u64, resume: &[u8]) -> io::Result<()> {
    let target = len_path(upload);
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".tmp");
    fs::write(&tmp, format!("{len} {}", crate::model::to_hex(resume)))?;
    fs::rename(&tmp, &target)
}

/// Entries of a directory; a missing directory (or a non-directory) is empty.
fn read_dir_or_empty(p: &Path) -> Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(p) {
        Ok(rd) => Ok(Box::new(rd)),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            Ok(Box::new(std::iter::empty()))
        }
        Err(e) => Err(e).context("read directory"),
    }
}

fn not_found_none<T>(r: io::Result<T>, what: &'static str) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context(what),
    }
}

impl BlobStore for FsStore {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(not_found_none(fs::metadata(self.blob_path(digest)), "stat blob")?.map(|m| m.len()))
    }

    fn open(&self, digest: &Digest) -> Result<Option<(BlobReader, u64)>> {
        let Some(file) = not_found_none(File::open(self.blob_path(digest)), "open blob")? else {
            return Ok(None);
        };
        let size = file.metadata().context("stat open blob")?.len();
        Ok(Some((BlobReader::File(file), size)))
    }

    fn begin_upload(&self, id: &str) -> Result<()> {
        let path = self.upload_path(id)?;
        OpenOptions::new().write(true).create_new(true).open(&path).context("create upload file")?;
        write_len(&path, 0, &[]).context("record upload length")
    }

    fn upload_state(&self, id: &str) -> Result<Option<Staged>> {
        self.staged(id)
    }

    fn append_part(&self, id: &str, at: u64) -> Result<Box<dyn PartWriter>> {
        let path = self.upload_path(id)?;
        let Some(start) = self.committed(id)? else { return Err(Error::NotFound(What::Upload)) };
        if start != at {
            return Err(Error::UploadOutOfOrder { offset: start });
        }
        match not_found_none(OpenOptions::new().append(true).open(&path), "open upload")? {
            Some(f) => {
                // Whatever a crash left past the committed parts goes first.
                f.set_len(start).context("cut upload to its committed parts")?;
                Ok(Box::new(FileWriter::new(f, path, start)))
            }
            None => Err(Error::NotFound(What::Upload)),
        }
    }

    fn read_upload(&self, id: &str) -> Result<Box<dyn Read + Send>> {
        let Some(len) = self.committed(id)? else { return Err(Error::NotFound(What::Upload)) };
        match not_found_none(File::open(self.upload_path(id)?), "open upload")? {
            Some(f) => Ok(Box::new(io::BufReader::with_capacity(1 << 20, f).take(len))),
            None => Err(Error::NotFound(What::Upload)),
        }
    }

    fn commit_upload(&self, id: &str, digest: &Digest, size: u64) -> Result<()> {
        let staged = self.upload_path(id)?;
        let Some(len) = self.committed(id)? else { return Err(Error::NotFound(What::Upload)) };
        if len != size {
            return Err(super::stale_upload(id, size, len));
        }
        let Some(file) = not_found_none(OpenOptions::new().write(true).open(&staged), "open upload")? else {
            return Err(Error::NotFound(What::Upload));
        };
        let target = self.blob_path(digest);
        if target.exists() {
            // Same digest, same bytes: the committed file stays untouched.
            not_found_none(fs::remove_file(&staged), "remove duplicate upload")?;
            not_found_none(fs::remove_file(len_path(&staged)), "remove upload length")?;
            return Ok(());
        }
        file.set_len(len).context("cut upload to its committed parts")?;
        file.sync_all().context("fsync upload")?;
        drop(file);
        let dir = target.parent().expect("blob path has a parent");
        fs::create_dir_all(dir).context("create blob directory")?;
        match fs::rename(&staged, &target) {
            Ok(()) => {}
            // Aborted (or committed) by someone else since we opened it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound(What::Upload)),
            Err(e) => return Err(e).context("rename upload into place"),
        }
        File::open(dir).and_then(|d| d.sync_all()).context("fsync blob directory")?;
        not_found_none(fs::remove_file(len_path(&staged)), "remove upload length")?;
        Ok(())
    }

    fn abort_upload(&self, id: &str) -> Result<()> {
        let path = self.upload_path(id)?;
        let len = len_path(&path);
        let mut tmp = len.as_os_str().to_owned();
        tmp.push(".tmp");
        not_found_none(fs::remove_file(tmp), "remove upload length")?;
        not_found_none(fs::remove_file(&len), "remove upload length")?;
        not_found_none(fs::remove_file(&path), "remove upload")?;
        Ok(())
    }

    fn each_blob(&self, f: &mut dyn FnMut(Option<Digest>, &str)) -> Result<()> {
        for alg in read_dir_or_empty(&self.blobs)? {
            let alg = alg.context("read blobs directory")?;
            let alg_name = alg.file_name().to_string_lossy().into_owned();
            for shard in read_dir_or_empty(&alg.path())? {
                let shard = shard.context("read blob algorithm directory")?;
                for file in read_dir_or_empty(&shard.path())? {
                    let file = file.context("read blob shard directory")?;
                    let name = file.file_name().to_string_lossy().into_owned();
                    let digest = Digest::parse(&format!("{alg_name}:{name}")).ok();
                    f(digest, &file.path().to_string_lossy());
                }
            }
        }
        Ok(())
    }

    fn each_upload(&self, f: &mut dyn FnMut(&str)) -> Result<()> {
        for file in read_dir_or_empty(&self.uploads)? {
            let file = file.context("read uploads directory")?;
            let name = file.file_name().to_string_lossy().into_owned();
            // Only names an upload id can have (nothing else is ours to abort).
            if self.upload_path(&name).is_ok() {
                f(&name);
            }
        }
        Ok(())
    }

    /// The data directory's blobs belong to the database that first used
    /// them (`<data>/blobs/registry`): a directory from before the marker is
    /// adopted, another registry's is refused (reconcile would take every
    /// blob the database does not know for an orphan).
    fn claim(&self, registry_id: &str) -> Result<()> {
        let marker = self.blobs.join("registry");
        match not_found_none(fs::read_to_string(&marker), "read the registry marker")? {
            Some(owner) if owner.trim() == registry_id => Ok(()),
            Some(owner) => Err(Error::Internal(anyhow::anyhow!(
                "the blobs in {} belong to registry {} and the database is registry {registry_id}: is \
                 database.url right? (reconcile would otherwise remove every blob this database does not know)",
                self.blobs.display(),
                owner.trim()
            ))),
            None => fs::write(&marker, registry_id).context("write the registry marker"),
        }
    }

    fn delete_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(not_found_none(fs::remove_file(self.blob_path(digest)), "remove blob")?.is_some())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fs_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::FsStore::open(dir.path()).unwrap();
        crate::storage::tests::conformance(&store);
    }

    #[test]
    fn fs_uploads_read_back_their_committed_parts() {
        // The suite lets a store say it cannot read staged parts back;
        // FsStore can, and must, crash-cut parts excluded.
        use crate::storage::BlobStore;
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let store = super::FsStore::open(dir.path()).unwrap();
        let id = "c0ffee00-0000-4000-8000-000000000001";
        store.begin_upload(id).unwrap();
        let mut w = store.append_part(id, 0).unwrap();
        w.write_all(b"kept").unwrap();
        w.commit(b"").unwrap();
        let mut w = store.append_part(id, 4).unwrap();
        w.write_all(b"cut by a crash").unwrap();
        std::mem::forget(w);
        let mut out = Vec::new();
        store.read_upload(id).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"kept");
    }
}
