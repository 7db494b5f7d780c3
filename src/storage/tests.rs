//! The blob-store conformance suite: what every `BlobStore` must do,
//! crash-shaped cases included.  `FsStore` runs it in `cargo test`; a new
//! backend calls `conformance(&store)` from a test of its own.
//!
//! The suite uses fresh upload ids and digests of its own making, so it can
//! run against a store that already holds data.

use super::BlobStore;
use crate::error::{Error, What};
use crate::model::{Algorithm, Digest};
use std::io::{Read, Write};

/// Runs every case against `store`; panics naming the first that fails.
pub fn conformance(store: &dyn BlobStore) {
    let salt = salt();
    staged_upload_grows_by_committed_parts(store, &salt);
    a_part_dropped_uncommitted_leaves_the_upload_as_it_was(store, &salt);
    commit_makes_the_blob_and_ends_the_upload(store, &salt);
    commit_twice_and_abort_after_commit(store, &salt);
    a_second_upload_of_the_same_blob_keeps_the_first(store, &salt);
    abort_discards_and_is_idempotent(store, &salt);
    unknown_and_foreign_ids_are_refused(store, &salt);
    readers_never_see_part_of_a_blob_while_it_commits(store, &salt);
    delete_blob(store, &salt);
    the_resume_state_travels_with_its_part(store, &salt);
    a_stale_view_of_an_upload_writes_nothing(store, &salt);
    parts_of_any_size_make_one_blob_read_from_any_offset(store, &salt);
}

/// Random bytes so that two runs (or two stores sharing a bucket) never
/// collide on an id or a digest.
fn salt() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("random salt");
    crate::model::to_hex(&b)
}

fn id(salt: &str, n: u32) -> String {
    format!("c0ffee00-{n:04x}-4000-8000-{salt}")
}

fn body(salt: &str, tag: &str, len: usize) -> Vec<u8> {
    let seed = format!("{salt}/{tag}/");
    seed.bytes().cycle().enumerate().map(|(i, b)| b ^ (i as u8)).take(len).collect()
}

fn digest(bytes: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, bytes)
}

fn put_part(store: &dyn BlobStore, id: &str, bytes: &[u8]) {
    let at = store.upload_size(id).expect("upload size").expect("upload exists");
    let mut w = store.append_part(id, at).expect("open part");
    w.write_all(bytes).expect("write part");
    w.commit(format!("after {}", bytes.len()).as_bytes()).expect("commit part");
}

/// The upload's bytes, or `None` from a store that cannot read staged
/// parts back (it must say `Unsupported`, and carry resume states).
fn read_upload(store: &dyn BlobStore, id: &str) -> Option<Vec<u8>> {
    let mut r = match store.read_upload(id) {
        Ok(r) => r,
        Err(Error::Unsupported(_)) => return None,
        Err(e) => panic!("read upload: {e}"),
    };
    let mut out = Vec::new();
    r.read_to_end(&mut out).expect("read upload bytes");
    Some(out)
}

/// Asserts that the upload holds `want`: read back where the store can,
/// and by committing it (the upload ends) and reading the blob.
#[track_caller]
fn assert_upload_holds(store: &dyn BlobStore, id: &str, want: &[u8]) {
    assert_eq!(store.upload_size(id).unwrap(), Some(want.len() as u64));
    if let Some(got) = read_upload(store, id) {
        assert!(got == want, "the upload read back {} bytes, not the {} committed", got.len(), want.len());
    }
    let d = digest(want);
    let existed = store.stat(&d).unwrap().is_some();
    store.commit_upload(id, &d, want.len() as u64).expect("commit");
    let got = read_blob(store, &d).expect("the committed blob");
    assert!(got == want, "the blob holds {} bytes, not the {} committed", got.len(), want.len());
    if !existed {
        store.delete_blob(&d).unwrap();
    }
}

fn read_blob(store: &dyn BlobStore, d: &Digest) -> Option<Vec<u8>> {
    let (mut r, size) = store.open(d).expect("open blob")?;
    let mut out = Vec::new();
    match &mut r {
        super::BlobReader::File(f) => f.read_to_end(&mut out),
        super::BlobReader::Stream(s) => s.read_to_end(&mut out),
    }
    .expect("read blob");
    assert_eq!(out.len() as u64, size, "open() reports the size it reads");
    Some(out)
}

fn listed_uploads(store: &dyn BlobStore) -> Vec<String> {
    let mut ids = Vec::new();
    store.each_upload(&mut |id| ids.push(id.to_string())).expect("list uploads");
    ids
}

fn listed_blob(store: &dyn BlobStore, d: &Digest) -> Option<u64> {
    let mut found = None;
    store
        .each_blob(&mut |digest, _| {
            if digest.as_ref() == Some(d) {
                found = store.stat(d).expect("stat a listed blob");
            }
        })
        .expect("list blobs");
    found
}

fn is_upload_not_found<T>(r: crate::error::Result<T>) -> bool {
    matches!(r, Err(Error::NotFound(What::Upload)))
}

fn staged_upload_grows_by_committed_parts(store: &dyn BlobStore, salt: &str) {
    let id = id(salt, 1);
    store.begin_upload(&id).expect("begin");
    assert_eq!(store.upload_size(&id).unwrap(), Some(0), "a new upload is empty");
    assert!(store.begin_upload(&id).is_err(), "an id in use cannot begin again");
    assert!(listed_uploads(store).contains(&id), "a staged upload is listed");
    let (a, b) = (body(salt, "a", 1000), body(salt, "b", 1));
    put_part(store, &id, &a);
    put_part(store, &id, &b);
    // An empty part is a part: nothing changes.
    put_part(store, &id, &[]);
    assert_upload_holds(store, &id, &[a, b].concat());
}

fn a_part_dropped_uncommitted_leaves_the_upload_as_it_was(store: &dyn BlobStore, salt: &str) {
    let id = id(salt, 2);
    store.begin_upload(&id).unwrap();
    let first = body(salt, "first", 5000);
    put_part(store, &id, &first);
    // A client that vanished mid-chunk: small, then large (a backend may
    // hand large parts to a writer thread).
    for len in [100, 9 << 20] {
        let mut w = store.append_part(&id, store.upload_size(&id).unwrap().unwrap()).unwrap();
        w.write_all(&body(salt, "lost", len)).unwrap();
        drop(w);
        assert_eq!(
            store.upload_size(&id).unwrap(),
            Some(5000),
            "a dropped part of {len} bytes left no trace"
        );
        if let Some(got) = read_upload(store, &id) {
            assert!(got == first, "a dropped part of {len} bytes left no trace");
        }
    }
    // A crash mid-part: the writer never finishes or drops (the process
    // died); its bytes are not part of the upload, and the next part and
    // the commit see only the committed ones.
    let mut w = store.append_part(&id, store.upload_size(&id).unwrap().unwrap()).unwrap();
    w.write_all(&body(salt, "crash", 3000)).unwrap();
    w.flush().unwrap();
    std::mem::forget(w);
    assert_eq!(store.upload_size(&id).unwrap(), Some(5000), "a part cut by a crash left no trace");
    let second = body(salt, "second", 9 << 20);
    put_part(store, &id, &second);
    assert_upload_holds(store, &id, &[first, second].concat());
}

fn commit_makes_the_blob_and_ends_the_upload(store: &dyn BlobStore, salt: &str) {
    let id = id(salt, 3);
    let bytes = body(salt, "blob", 70_000);
    let d = digest(&bytes);
    assert_eq!(store.stat(&d).unwrap(), None, "no blob before its commit");
    assert!(store.open(&d).unwrap().is_none());
    store.begin_upload(&id).unwrap();
    put_part(store, &id, &bytes[..30_000]);
    put_part(store, &id, &bytes[30_000..]);
    store.commit_upload(&id, &d, 70_000).expect("commit");
    assert_eq!(store.stat(&d).unwrap(), Some(70_000));
    assert_eq!(read_blob(store, &d).as_deref(), Some(&bytes[..]));
    assert_eq!(listed_blob(store, &d), Some(70_000), "a committed blob is listed");
    assert_eq!(store.upload_size(&id).unwrap(), None, "a committed upload is gone");
    assert!(!listed_uploads(store).contains(&id), "a committed upload is not listed");
    assert!(is_upload_not_found(store.append_part(&id, 0)), "no part after commit");
    store.delete_blob(&d).unwrap();
}

fn commit_twice_and_abort_after_commit(store: &dyn BlobStore, salt: &str) {
    let id = id(salt, 4);
    let bytes = body(salt, "twice", 4096);
    let d = digest(&bytes);
    store.begin_upload(&id).unwrap();
    put_part(store, &id, &bytes);
    store.commit_upload(&id, &d, 4096).unwrap();
    // A retried commit (a crash between commit and its row, then a retry).
    assert!(is_upload_not_found(store.commit_upload(&id, &d, 4096)), "a second commit finds no upload");
    // Reconcile aborting an upload whose row went with its commit.
    store.abort_upload(&id).expect("abort after commit is harmless");
    assert_eq!(read_blob(store, &d).as_deref(), Some(&bytes[..]), "the blob outlives both");
    store.delete_blob(&d).unwrap();
}

fn a_second_upload_of_the_same_blob_keeps_the_first(store: &dyn BlobStore, salt: &str) {
    let (one, two) = (id(salt, 5), id(salt, 6));
    let bytes = body(salt, "same", 10_000);
    let d = digest(&bytes);
    for id in [&one, &two] {
        store.begin_upload(id).unwrap();
        put_part(store, id, &bytes);
    }
    store.commit_upload(&one, &d, 10_000).unwrap();
    store.commit_upload(&two, &d, 10_000).expect("committing an existing blob again is fine");
    assert_eq!(read_blob(store, &d).as_deref(), Some(&bytes[..]));
    assert_eq!(store.upload_size(&two).unwrap(), None, "the duplicate upload is gone");
    store.delete_blob(&d).unwrap();
}

fn abort_discards_and_is_idempotent(store: &dyn BlobStore, salt: &str) {
    let id = id(salt, 7);
    store.begin_upload(&id).unwrap();
    put_part(store, &id, &body(salt, "abort", 2048));
    store.abort_upload(&id).unwrap();
    assert_eq!(store.upload_size(&id).unwrap(), None);
    assert!(!listed_uploads(store).contains(&id));
    store.abort_upload(&id).expect("a second abort is harmless");
    assert!(is_upload_not_found(store.append_part(&id, 0)), "no part after abort");
    assert!(store.read_upload(&id).is_err(), "nothing to read after abort");
    let d = digest(b"never committed");
    assert!(is_upload_not_found(store.commit_upload(&id, &d, 0)), "no commit after abort");
    assert_eq!(store.stat(&d).unwrap(), None);
}

fn unknown_and_foreign_ids_are_refused(store: &dyn BlobStore, salt: &str) {
    let unknown = id(salt, 8);
    assert_eq!(store.upload_size(&unknown).unwrap(), None);
    assert!(is_upload_not_found(store.append_part(&unknown, 0)));
    assert!(store.read_upload(&unknown).is_err());
    assert!(is_upload_not_found(store.commit_upload(&unknown, &digest(b"x"), 1)));
    store.abort_upload(&unknown).expect("aborting an unknown upload is harmless");
    // Ids are made by the registry; anything else must not reach a path or a key.
    for bad in ["", "../../etc/passwd", "a/b", "..", &"f".repeat(300)] {
        assert!(store.begin_upload(bad).is_err(), "begin_upload({bad:?}) must be refused");
        assert!(store.append_part(bad, 0).is_err(), "append_part({bad:?}) must be refused");
        assert!(
            store.commit_upload(bad, &digest(b"x"), 1).is_err(),
            "commit_upload({bad:?}) must be refused"
        );
    }
}

fn readers_never_see_part_of_a_blob_while_it_commits(store: &dyn BlobStore, salt: &str) {
    let bytes = body(salt, "race", 4 << 20);
    let d = digest(&bytes);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut seen = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) || seen == 0 {
                if let Some(got) = read_blob(store, &d) {
                    assert!(got == bytes, "a reader saw {} bytes of a blob being committed", got.len());
                    seen += 1;
                }
                if let Some(size) = store.stat(&d).unwrap() {
                    assert_eq!(size, bytes.len() as u64, "stat saw part of a blob");
                }
            }
            seen
        });
        for n in 0..3 {
            let id = id(salt, 9 + n);
            store.begin_upload(&id).unwrap();
            put_part(store, &id, &bytes[..1 << 20]);
            put_part(store, &id, &bytes[1 << 20..]);
            store.commit_upload(&id, &d, bytes.len() as u64).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        assert!(reader.join().expect("reader thread") > 0);
    });
    store.delete_blob(&d).unwrap();
}

fn delete_blob(store: &dyn BlobStore, salt: &str) {
    let id = id(salt, 20);
    let bytes = body(salt, "delete", 100);
    let d = digest(&bytes);
    store.begin_upload(&id).unwrap();
    put_part(store, &id, &bytes);
    store.commit_upload(&id, &d, 100).unwrap();
    assert!(store.delete_blob(&d).unwrap(), "deleting a blob that exists says so");
    assert!(!store.delete_blob(&d).unwrap(), "deleting it again says it was not there");
    assert_eq!(store.stat(&d).unwrap(), None);
    assert!(store.open(&d).unwrap().is_none());
    assert_eq!(listed_blob(store, &d), None);
}

fn the_resume_state_travels_with_its_part(store: &dyn BlobStore, salt: &str) {
    let id = id(salt, 21);
    store.begin_upload(&id).unwrap();
    let state = |id: &str| store.upload_state(id).unwrap().expect("staged");
    assert_eq!(state(&id).resume, b"", "a new upload has no resume state");
    put_part(store, &id, &body(salt, "resume", 300));
    assert_eq!(state(&id).resume, b"after 300");
    // A dropped part leaves the state of the last committed one.
    let mut w = store.append_part(&id, store.upload_size(&id).unwrap().unwrap()).unwrap();
    w.write_all(b"lost").unwrap();
    drop(w);
    assert_eq!(state(&id), super::Staged { size: 300, resume: b"after 300".to_vec() });
    // Any bytes at all, a hash state's binary among them.
    let binary: Vec<u8> = (0..=255u8).collect();
    let mut w = store.append_part(&id, store.upload_size(&id).unwrap().unwrap()).unwrap();
    w.write_all(b"x").unwrap();
    w.commit(&binary).unwrap();
    assert_eq!(state(&id), super::Staged { size: 301, resume: binary });
    store.abort_upload(&id).unwrap();
    assert_eq!(store.upload_state(&id).unwrap(), None);
}

fn parts_of_any_size_make_one_blob_read_from_any_offset(store: &dyn BlobStore, salt: &str) {
    // Small parts that add up past an object store's minimum part size
    // (5 MiB), a large one, an empty one, and a small last one.
    let id = id(salt, 22);
    let bytes = body(salt, "mixed", (3 << 20) + (3 << 20) + 1 + (7 << 20) + 4000);
    let cuts = [0, 3 << 20, 6 << 20, (6 << 20) + 1, (6 << 20) + 1, (13 << 20) + 1, bytes.len()];
    store.begin_upload(&id).unwrap();
    for w in cuts.windows(2) {
        put_part(store, &id, &bytes[w[0]..w[1]]);
    }
    let d = digest(&bytes);
    assert_eq!(store.upload_size(&id).unwrap(), Some(bytes.len() as u64));
    store.commit_upload(&id, &d, bytes.len() as u64).unwrap();
    for start in [0usize, 1, (5 << 20) - 1, 6 << 20, bytes.len() - 1, bytes.len()] {
        let (mut r, size) = store.open(&d).unwrap().expect("blob");
        assert_eq!(size, bytes.len() as u64);
        r.seek_to(start as u64).unwrap();
        let mut got = vec![0u8; (bytes.len() - start).min(100_000)];
        match &mut r {
            super::BlobReader::File(f) => f.read_exact(&mut got),
            super::BlobReader::Stream(s) => s.read_exact(&mut got),
        }
        .unwrap_or_else(|e| panic!("read at {start}: {e}"));
        assert!(got == bytes[start..start + got.len()], "bytes at offset {start}");
    }
    assert_eq!(read_blob(store, &d).map(|b| digest(&b)), Some(d.clone()));
    store.delete_blob(&d).unwrap();
}

fn a_stale_view_of_an_upload_writes_nothing(store: &dyn BlobStore, salt: &str) {
    let id = id(salt, 23);
    store.begin_upload(&id).unwrap();
    let bytes = body(salt, "stale", 5000);
    put_part(store, &id, &bytes[..3000]);
    // A caller that believes the upload is at 0 (or past its end) is told
    // where it is, and writes nothing.
    for at in [0, 2999, 3001] {
        match store.append_part(&id, at) {
            Err(Error::UploadOutOfOrder { offset }) => assert_eq!(offset, 3000),
            Err(e) => panic!("append_part at {at}: {e}"),
            Ok(_) => panic!("append_part at {at} of a 3000-byte upload was accepted"),
        }
    }
    // A commit of another size than the upload holds is refused; the upload stays.
    let d = digest(&bytes);
    assert!(store.commit_upload(&id, &d, 5000).is_err(), "a commit of the wrong size");
    assert_eq!(store.stat(&d).unwrap(), None);
    put_part(store, &id, &bytes[3000..]);
    assert_upload_holds(store, &id, &bytes);
}
