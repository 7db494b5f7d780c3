//! The S3 blob store: blobs in an S3-compatible bucket, so that several
//! replicas of mcr can share them.  Synchronous: requests are signed by
//! `rusty-s3` (presigned SigV4 URLs, no runtime) and sent with `ureq`.
//!
//! ```text
//! <prefix>blobs/<algorithm>/<hex>  the blob's pointer: {"key", "size"} of its data
//! <prefix>uploads/<upload id>      a staged upload's state (JSON, below)
//! <prefix>data/<upload id>/t<gen>-<random>  the upload's tail: bytes not yet in a part
//! <prefix>registry                 the id of the registry (database) that owns the prefix
//! <prefix>data/<upload id>/blob    the upload's multipart object
//! ```
//!
//! A staged upload is a multipart upload of whole parts (`part_size`
//! bytes, at least S3's 5 MiB minimum) plus a tail object holding the bytes
//! that do not fill a part yet.  A request's part reads the tail back
//! (bounded by `part_size`), appends, sends every full part, writes what is
//! left as a new tail, and then replaces the state object: that single PUT
//! is the commit point, so a part dropped or cut by a crash leaves the
//! state, and the upload, as they were.  The state also carries the
//! caller's resume state (the running hash): no object is read back to
//! compute a digest.
//!
//! A committed blob's data stays where the upload wrote it; the blob's
//! name is a small pointer object, written last.  Committing is: complete
//! the multipart upload (the tail becomes its small last part), record in
//! the state which digest it became, write the pointer, delete the state.
//! Any step can be repeated: a commit or an abort that finds a state
//! already marked committed finishes that commit instead of undoing it.
//!
//! Invariants: a pointer only ever names complete data, and exists only
//! once that data does; the state object is the only truth about an
//! upload (listings are used to find uploads and blobs, never to decide
//! what an upload holds).

use super::{BlobReader, BlobStore, PartWriter, Staged};
use crate::error::{Error, Result, What};
use crate::model::Digest;
use rusty_s3::actions::{CreateMultipartUpload, ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::Duration;

/// How long a signed URL stays valid: long enough for one request.
const SIGN_TTL: Duration = Duration::from_secs(5 * 60);
/// The longest a request with a small body (state, pointer, listing,
/// multipart control) may take: a stalled store must not hold locks forever.
const SMALL_REQUEST: Duration = Duration::from_secs(60);
/// Largest state object read (10,000 parts of ~70 bytes each, and room).
const STATE_MAX: u64 = 4 << 20;
/// Largest pointer object read.
const POINTER_MAX: u64 = 4096;

/// What the configuration says about the bucket.
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub access_key_id: String,
    pub secret_key: String,
    pub ca_pem: Option<Vec<u8>>,
    pub part_size: u64,
}

pub struct S3Store {
    s3: Arc<Client>,
}

/// The signed-request client; shared with the part writers and readers
/// that outlive a `&self` call.
struct Client {
    bucket: Bucket,
    creds: Credentials,
    agent: ureq::Agent,
    prefix: String,
    part_size: usize,
}

/// A staged upload's state object.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct UploadDoc {
    /// Bumped by every committed part; names the tail it wrote.
    generation: u64,
    /// Bytes in the committed parts (multipart parts and tail).
    size: u64,
    /// The multipart upload, once the first whole part was sent.
    #[serde(default)]
    multipart: Option<String>,
    /// Sent parts, numbered from 1 in order, with their ETags.
    #[serde(default)]
    parts: Vec<PartDoc>,
    /// The tail object and its length, when there are bytes in it.
    #[serde(default)]
    tail: Option<(String, u64)>,
    /// The caller's resume state, in hex.
    #[serde(default)]
    resume: String,
    /// Set once the commit decided which blob this upload becomes.
    #[serde(default)]
    committed: Option<Committed>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PartDoc {
    etag: String,
    size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Committed {
    digest: String,
    key: String,
    size: u64,
}

/// A blob's pointer object.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pointer {
    key: String,
    size: u64,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("object store: {what}: {e}"))
}

/// An answer the store should not give: 5xx and throttling are the store
/// being unavailable (503 to our client), anything else is our fault.
fn refused(what: &str, status: u16, body: &str) -> Error {
    let code = between(body, "<Code>", "</Code>").unwrap_or("");
    if status >= 500 || status == 429 || code == "SlowDown" {
        unavailable(what, format_args!("HTTP {status} {code}"))
    } else {
        Error::Internal(anyhow::anyhow!("object store: {what}: HTTP {status} {code}"))
    }
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

type Response = ureq::http::Response<ureq::Body>;

impl Client {
    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    fn state_key(&self, id: &str) -> String {
        self.key(&format!("uploads/{id}"))
    }

    fn pointer_key(&self, d: &Digest) -> String {
        self.key(&format!("blobs/{}/{}", d.algorithm().as_str(), d.hex()))
    }

    fn data_key(&self, id: &str, rest: &str) -> String {
        self.key(&format!("data/{id}/{rest}"))
    }

    fn sign<'a>(&self, action: impl S3Action<'a>) -> String {
        action.sign(SIGN_TTL).to_string()
    }

    /// Reads a whole (small) body, at most `limit` bytes.
    fn small_body(resp: Response, limit: u64, what: &str) -> Result<Vec<u8>> {
        resp.into_body().into_with_config().limit(limit).read_to_vec().map_err(|e| unavailable(what, e))
    }

    /// Turns a non-success answer into an error, reading its (bounded) body.
    fn expect(resp: Response, ok: &[u16], what: &str) -> Result<Response> {
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        let body = Self::small_body(resp, 64 << 10, what).unwrap_or_default();
        Err(refused(what, status, &String::from_utf8_lossy(&body)))
    }

    /// A small object's bytes; `None` when it does not exist.
    fn get_small(&self, key: &str, limit: u64, what: &str) -> Result<Option<Vec<u8>>> {
        let url = self.sign(self.bucket.get_object(Some(&self.creds), key));
        let resp = self.agent.get(&url).config().timeout_global(Some(SMALL_REQUEST)).build().call();
        let resp = resp.map_err(|e| unavailable(what, e))?;
        if resp.status().as_u16() == 404 {
            // No such key; a missing bucket is an error, not an absent object.
            let body = Self::small_body(resp, 64 << 10, what).unwrap_or_default();
            let body = String::from_utf8_lossy(&body);
            if body.contains("<Code>NoSuchBucket</Code>") {
                return Err(refused(what, 404, &body));
            }
            return Ok(None);
        }
        let resp = Self::expect(resp, &[200], what)?;
        let declared =
            resp.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(Error::Internal(anyhow::anyhow!(
                "object store: {what}: object {key} is over {limit} bytes"
            )));
        }
        Self::small_body(resp, limit, what).map(Some)
    }

    fn put(&self, key: &str, bytes: &[u8], what: &str) -> Result<()> {
        let url = self.sign(self.bucket.put_object(Some(&self.creds), key));
        let resp = self.agent.put(&url).config().timeout_global(Some(SMALL_REQUEST)).build().send(bytes);
        let resp = resp.map_err(|e| unavailable(what, e))?;
        Self::expect(resp, &[200, 201, 204], what).map(drop)
    }

    /// Deletes an object; Ok when it is already gone.
    fn delete(&self, key: &str, what: &str) -> Result<()> {
        let url = self.sign(self.bucket.delete_object(Some(&self.creds), key));
        let resp = self.agent.delete(&url).config().timeout_global(Some(SMALL_REQUEST)).build().call();
        let resp = resp.map_err(|e| unavailable(what, e))?;
        Self::expect(resp, &[200, 204, 404], what).map(drop)
    }

    /// The size of an object, if it exists.
    fn head(&self, key: &str, what: &str) -> Result<Option<u64>> {
        let url = self.sign(self.bucket.head_object(Some(&self.creds), key));
        let resp = self.agent.head(&url).config().timeout_global(Some(SMALL_REQUEST)).build().call();
        let resp = resp.map_err(|e| unavailable(what, e))?;
        match resp.status().as_u16() {
            404 => Ok(None),
            200 => Ok(resp.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse().ok())),
            s => Err(refused(what, s, "")),
        }
    }

    fn get_state(&self, id: &str) -> Result<Option<UploadDoc>> {
        let Some(bytes) = self.get_small(&self.state_key(id), STATE_MAX, "read upload state")? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Internal(anyhow::anyhow!("object store: upload state of {id} is corrupt: {e}"))
        })
    }

    fn put_state(&self, id: &str, doc: &UploadDoc) -> Result<()> {
        let bytes = serde_json::to_vec(doc).map_err(|e| Error::Internal(e.into()))?;
        self.put(&self.state_key(id), &bytes, "write upload state")
    }

    fn get_pointer(&self, d: &Digest) -> Result<Option<Pointer>> {
        let Some(bytes) = self.get_small(&self.pointer_key(d), POINTER_MAX, "read blob")? else {
            return Ok(None);
        };
        let p: Pointer = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(anyhow::anyhow!("object store: pointer of {d} is corrupt: {e}")))?;
        // Only data this store wrote: a pointer cannot send a read elsewhere.
        if !p.key.starts_with(&self.key("data/")) || p.key.contains("..") {
            return Err(Error::Internal(anyhow::anyhow!("object store: pointer of {d} names {:?}", p.key)));
        }
        Ok(Some(p))
    }

    fn create_multipart(&self, key: &str) -> Result<String> {
        let what = "begin multipart upload";
        let url = self.sign(self.bucket.create_multipart_upload(Some(&self.creds), key));
        let resp = self.agent.post(&url).send_empty().map_err(|e| unavailable(what, e))?;
        let resp = Self::expect(resp, &[200], what)?;
        let body = Self::small_body(resp, 64 << 10, what)?;
        let parsed = CreateMultipartUpload::parse_response(&String::from_utf8_lossy(&body))
            .map_err(|e| Error::Internal(anyhow::anyhow!("object store: {what}: {e}")))?;
        Ok(parsed.upload_id().to_string())
    }

    /// Sends part `n` (from 1) of a multipart upload; returns its ETag.
    fn upload_part(&self, key: &str, upload: &str, n: usize, bytes: &[u8]) -> Result<String> {
        let what = "send multipart part";
        let n = u16::try_from(n)
            .map_err(|_| Error::InvalidUpload("too many parts for the object store".into()))?;
        let url = self.sign(self.bucket.upload_part(Some(&self.creds), key, n, upload));
        let resp = self.agent.put(&url).send(bytes).map_err(|e| unavailable(what, e))?;
        let resp = Self::expect(resp, &[200], what)?;
        let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
        etag.ok_or_else(|| Error::Internal(anyhow::anyhow!("object store: {what}: no ETag in the answer")))
    }

    fn complete_multipart(&self, key: &str, upload: &str, etags: &[String]) -> Result<()> {
        let what = "complete multipart upload";
        let action = self.bucket.complete_multipart_upload(
            Some(&self.creds),
            key,
            upload,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGN_TTL).to_string();
        let resp = self.agent.post(&url).send(action.body()).map_err(|e| unavailable(what, e))?;
        let status = resp.status().as_u16();
        // S3 may answer 200 and still report an error in the body.
        let body = Self::small_body(resp, 1 << 20, what)?;
        let text = String::from_utf8_lossy(&body);
        if status == 200 && !text.contains("<Error>") && text.contains("CompleteMultipartUploadResult") {
            return Ok(());
        }
        if text.contains("<Code>NoSuchUpload</Code>") {
            // Completed already (the answer to an earlier try was lost)?
            return Err(Error::NotFound(What::Upload));
        }
        Err(refused(what, if status == 200 { 500 } else { status }, &text))
    }

    /// Aborts a multipart upload; Ok when it is already gone (or completed).
    fn abort_multipart(&self, key: &str, upload: &str) -> Result<()> {
        let what = "abort multipart upload";
        let url = self.sign(self.bucket.abort_multipart_upload(Some(&self.creds), key, upload));
        let resp = self.agent.delete(&url).call().map_err(|e| unavailable(what, e))?;
        Self::expect(resp, &[200, 204, 404], what).map(drop)
    }

    /// Calls `f` with every key under `prefix` (without this store's prefix).
    fn each_key(&self, prefix: &str, f: &mut dyn FnMut(&str)) -> Result<()> {
        let what = "list objects";
        let full = self.key(prefix);
        let mut token: Option<String> = None;
        loop {
            let mut action: ListObjectsV2 = self.bucket.list_objects_v2(Some(&self.creds));
            action.with_prefix(full.as_str());
            action.with_max_keys(1000);
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let url = self.sign(action);
            let resp = self.agent.get(&url).config().timeout_global(Some(SMALL_REQUEST)).build().call();
            let resp = Self::expect(resp.map_err(|e| unavailable(what, e))?, &[200], what)?;
            let body = Self::small_body(resp, 16 << 20, what)?;
            let page = ListObjectsV2::parse_response(&String::from_utf8_lossy(&body))
                .map_err(|e| Error::Internal(anyhow::anyhow!("object store: {what}: {e}")))?;
            for obj in &page.contents {
                if let Some(rest) = obj.key.strip_prefix(&self.prefix) {
                    f(rest);
                }
            }
            match page.next_continuation_token {
                Some(t) if token.as_ref() != Some(&t) => token = Some(t),
                _ => return Ok(()),
            }
        }
    }

    /// Finishes a commit the state already decided: the pointer (unless a
    /// blob of that digest already exists), then the state goes.
    fn finish_commit(&self, id: &str, c: &Committed) -> Result<()> {
        let d = Digest::parse(&c.digest)
            .map_err(|e| Error::Internal(anyhow::anyhow!("object store: upload state of {id}: {e}")))?;
        let existing = match self.get_pointer(&d)? {
            // A pointer whose data is gone (a crash, a lost delete) is no
            // blob: ours replaces it.
            Some(p) if p.key != c.key && self.head(&p.key, "check blob data")?.is_none() => {
                log::warn!("blob pointer named missing data, replaced digest={d} key={}", p.key);
                None
            }
            other => other,
        };
        match existing {
            Some(p) if p.key != c.key => {
                // The same bytes were committed by another upload: ours go.
                self.delete(&c.key, "remove duplicate upload")?;
            }
            Some(_) => {}
            None => {
                let p = serde_json::to_vec(&Pointer { key: c.key.clone(), size: c.size })
                    .map_err(|e| Error::Internal(e.into()))?;
                self.put(&self.pointer_key(&d), &p, "write blob pointer")?;
            }
        }
        self.delete(&self.state_key(id), "remove upload state")
    }
}

impl S3Store {
    pub fn open(config: S3Config) -> Result<S3Store> {
        let endpoint = config
            .endpoint
            .parse()
            .map_err(|e| Error::Internal(anyhow::anyhow!("storage.s3_endpoint is not a URL: {e}")))?;
        let bucket = Bucket::new(endpoint, UrlStyle::Path, config.bucket, config.region)
            .map_err(|e| Error::Internal(anyhow::anyhow!("storage.s3_endpoint / s3_bucket: {e}")))?;
        let timeouts = crate::outbound::Timeouts {
            // Bodies are streamed to clients at their pace: no overall limit.
            global: None,
            connect: Duration::from_secs(10),
            response: Duration::from_secs(120),
        };
        let agent = crate::outbound::agent(config.ca_pem.as_deref(), timeouts)
            .map_err(|e| Error::Internal(anyhow::anyhow!("storage.s3_ca_file {e}")))?;
        let part_size = usize::try_from(config.part_size.clamp(5 << 20, 1 << 30)).unwrap_or(5 << 20);
        let s3 = Client {
            bucket,
            creds: Credentials::new(config.access_key_id, config.secret_key),
            agent,
            prefix: config.prefix,
            part_size,
        };
        Ok(S3Store { s3: Arc::new(s3) })
    }

    /// Checks that the bucket answers with these credentials (at start-up,
    /// so a wrong key is a clear error, not a 500 on the first push).
    pub fn check(&self) -> Result<()> {
        let what = "check bucket";
        let s3 = &self.s3;
        let url = s3.sign(s3.bucket.head_bucket(Some(&s3.creds)));
        let resp = s3.agent.head(&url).call().map_err(|e| unavailable(what, e))?;
        match resp.status().as_u16() {
            200 => Ok(()),
            403 => Err(Error::Internal(anyhow::anyhow!("object store refused the credentials (HTTP 403)"))),
            404 => Err(Error::Internal(anyhow::anyhow!("object store has no bucket {:?}", s3.bucket.name()))),
            s => Err(refused(what, s, "")),
        }
    }
}

impl BlobStore for S3Store {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.s3.get_pointer(digest)?.map(|p| p.size))
    }

    fn open(&self, digest: &Digest) -> Result<Option<(BlobReader, u64)>> {
        let Some(p) = self.s3.get_pointer(digest)? else { return Ok(None) };
        let mut reader = ObjectReader { s3: self.s3.clone(), key: p.key, size: p.size, pos: 0, body: None };
        // Opened now, so that a store that fails is an error before the
        // client is told 200 (a seek to a range opens again).
        if p.size > 0 {
            reader.start().map_err(|e| unavailable("read blob", e))?;
        }
        Ok(Some((BlobReader::Stream(Box::new(reader)), p.size)))
    }

    fn delete_blob(&self, digest: &Digest) -> Result<bool> {
        let Some(p) = self.s3.get_pointer(digest)? else { return Ok(false) };
        // The pointer first: no reader is ever sent to data that is gone.
        self.s3.delete(&self.s3.pointer_key(digest), "remove blob pointer")?;
        self.s3.delete(&p.key, "remove blob data")?;
        Ok(true)
    }

    fn each_blob(&self, f: &mut dyn FnMut(Option<Digest>, &str)) -> Result<()> {
        self.s3.each_key("blobs/", &mut |rest| {
            let digest = rest
                .strip_prefix("blobs/")
                .and_then(|name| name.split_once('/'))
                .and_then(|(alg, hex)| Digest::parse(&format!("{alg}:{hex}")).ok());
            f(digest, rest);
        })
    }

    fn begin_upload(&self, id: &str) -> Result<()> {
        super::valid_upload_id(id)?;
        if self.s3.get_state(id)?.is_some() {
            return Err(Error::Internal(anyhow::anyhow!("upload {id} already exists")));
        }
        self.s3.put_state(id, &UploadDoc::default())
    }

    fn upload_state(&self, id: &str) -> Result<Option<Staged>> {
        super::valid_upload_id(id)?;
        match self.s3.get_state(id)? {
            Some(doc) if doc.committed.is_none() => {
                let resume = crate::model::from_hex(&doc.resume).unwrap_or_default();
                Ok(Some(Staged { size: doc.size, resume }))
            }
            _ => Ok(None),
        }
    }

    fn append_part(&self, id: &str, at: u64) -> Result<Box<dyn PartWriter>> {
        super::valid_upload_id(id)?;
        let Some(doc) = self.s3.get_state(id)?.filter(|d| d.committed.is_none()) else {
            return Err(Error::NotFound(What::Upload));
        };
        if doc.size != at {
            return Err(Error::UploadOutOfOrder { offset: doc.size });
        }
        let buf = match &doc.tail {
            Some((key, len)) => self.s3.read_tail(id, key, *len)?,
            None => Vec::new(),
        };
        let mut part =
            S3Part { s3: self.s3.clone(), id: id.to_string(), doc, buf, sent: Vec::new(), written: 0 };
        // A tail as long as a part (the part size was lowered since) is
        // sent before anything else.
        while part.buf.len() >= part.s3.part_size {
            part.send_part()?;
        }
        Ok(Box::new(part))
    }

    fn read_upload(&self, id: &str) -> Result<Box<dyn Read + Send>> {
        super::valid_upload_id(id)?;
        let Some(doc) = self.s3.get_state(id)?.filter(|d| d.committed.is_none()) else {
            return Err(Error::NotFound(What::Upload));
        };
        if !doc.parts.is_empty() {
            return Err(Error::Unsupported("an S3 upload's sent parts cannot be read back".into()));
        }
        let bytes = match &doc.tail {
            Some((key, len)) => self.s3.read_tail(id, key, *len)?,
            None => Vec::new(),
        };
        Ok(Box::new(io::Cursor::new(bytes)))
    }

    fn commit_upload(&self, id: &str, digest: &Digest, size: u64) -> Result<()> {
        super::valid_upload_id(id)?;
        let s3 = &self.s3;
        let Some(mut doc) = s3.get_state(id)? else { return Err(Error::NotFound(What::Upload)) };
        if let Some(c) = doc.committed.clone() {
            // A commit that stopped half way (a crash, a lost answer): finish it.
            s3.finish_commit(id, &c)?;
            return Err(Error::NotFound(What::Upload));
        }
        if doc.size != size {
            return Err(super::stale_upload(id, size, doc.size));
        }
        if let Some(p) = s3.get_pointer(digest)? {
            if s3.head(&p.key, "check blob data")?.is_some() {
                // Same digest, same bytes: the blob stays, the upload goes.
                return self.abort_upload(id);
            }
        }
        let key = match doc.multipart.clone() {
            Some(upload) if !doc.parts.is_empty() || doc.tail.is_some() => {
                let key = s3.data_key(id, "blob");
                let mut etags: Vec<String> = doc.parts.iter().map(|p| p.etag.clone()).collect();
                if let Some((tail, len)) = &doc.tail {
                    let bytes = s3.read_tail(id, tail, *len)?;
                    etags.push(s3.upload_part(&key, &upload, etags.len() + 1, &bytes)?);
                }
                match s3.complete_multipart(&key, &upload, &etags) {
                    Ok(()) => {}
                    // Completed by an earlier try whose answer was lost.
                    Err(Error::NotFound(_)) if s3.head(&key, "check completed upload")? == Some(size) => {}
                    Err(e) => return Err(e),
                }
                key
            }
            other => {
                if let Some(upload) = other {
                    // A multipart upload that never got a part.
                    s3.abort_multipart(&s3.data_key(id, "blob"), &upload)?;
                }
                match &doc.tail {
                    // Under one part: the tail object is the blob's data.
                    Some((tail, _)) => tail.clone(),
                    None => {
                        let key = s3.data_key(id, "blob");
                        s3.put(&key, &[], "write empty blob")?;
                        key
                    }
                }
            }
        };
        let c = Committed { digest: digest.to_string(), key, size: doc.size };
        doc.committed = Some(c.clone());
        s3.put_state(id, &doc)?;
        s3.finish_commit(id, &c)?;
        if let Some((tail, _)) = doc.tail.filter(|(t, _)| *t != c.key) {
            // Sent as the last part: the copy in the tail is not needed.
            if let Err(e) = s3.delete(&tail, "remove upload tail") {
                log::warn!("cannot remove a committed upload's tail key={tail} err={e}");
            }
        }
        Ok(())
    }

    fn abort_upload(&self, id: &str) -> Result<()> {
        super::valid_upload_id(id)?;
        let s3 = &self.s3;
        let Some(doc) = s3.get_state(id)? else { return Ok(()) };
        if let Some(c) = &doc.committed {
            // The commit was decided: finish it rather than lose the blob.
            return s3.finish_commit(id, c);
        }
        if let Some(upload) = &doc.multipart {
            s3.abort_multipart(&s3.data_key(id, "blob"), upload)?;
        }
        // Every object the upload made: its tail, and tails that parts
        // dropped or cut by a crash left behind.
        let mut keys = Vec::new();
        s3.each_key(&format!("data/{id}/"), &mut |rest| keys.push(s3.key(rest)))?;
        for key in keys {
            s3.delete(&key, "remove upload data")?;
        }
        s3.delete(&s3.state_key(id), "remove upload state")
    }

    fn each_upload(&self, f: &mut dyn FnMut(&str)) -> Result<()> {
        self.s3.each_key("uploads/", &mut |rest| {
            if let Some(id) = rest.strip_prefix("uploads/").filter(|id| super::valid_upload_id(id).is_ok()) {
                f(id);
            }
        })
    }

    fn claim(&self, registry_id: &str) -> Result<()> {
        let s3 = &self.s3;
        let key = s3.key("registry");
        match s3.get_small(&key, 4096, "read the registry marker")? {
            Some(owner) if owner == registry_id.as_bytes() => Ok(()),
            Some(owner) => Err(Error::Internal(anyhow::anyhow!(
                "the bucket prefix {:?} belongs to registry {} and this database is registry {registry_id}: \
                 use another bucket or s3_prefix, or the database that wrote it (reconcile would otherwise \
                 remove every blob this database does not know)",
                s3.prefix,
                String::from_utf8_lossy(&owner)
            ))),
            None => {
                let mut any = false;
                s3.each_key("blobs/", &mut |_| any = true)?;
                if any {
                    return Err(Error::Internal(anyhow::anyhow!(
                        "the bucket prefix {:?} holds blobs that no registry claimed: refusing to adopt them \
                         (reconcile would remove every blob this database does not know)",
                        s3.prefix
                    )));
                }
                s3.put(&key, registry_id.as_bytes(), "write the registry marker")
            }
        }
    }
}

impl Client {
    /// An upload's tail, which the state says is `len` bytes.
    fn read_tail(&self, id: &str, key: &str, len: u64) -> Result<Vec<u8>> {
        if len > 1 << 30 {
            return Err(Error::Internal(anyhow::anyhow!(
                "object store: the tail of upload {id} is over 1 GiB"
            )));
        }
        let bytes = self.get_small(key, len, "read upload tail")?.ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("object store: the tail of upload {id} is missing"))
        })?;
        if bytes.len() as u64 != len {
            return Err(Error::Internal(anyhow::anyhow!(
                "object store: the tail of upload {id} has the wrong size"
            )));
        }
        Ok(bytes)
    }
}

/// One part being appended: the old tail and the new bytes, with every
/// whole part sent as soon as it fills.  Nothing is visible until `commit`
/// writes the state.
struct S3Part {
    s3: Arc<Client>,
    id: String,
    doc: UploadDoc,
    /// Bytes not yet sent as a part (the old tail first); under a part.
    buf: Vec<u8>,
    /// Parts sent by this writer, after the state's own.
    sent: Vec<PartDoc>,
    /// New bytes written to this part.
    written: u64,
}

impl S3Part {
    fn send_part(&mut self) -> Result<()> {
        let size = self.s3.part_size;
        let key = self.s3.data_key(&self.id, "blob");
        let upload = match &self.doc.multipart {
            Some(u) => u.clone(),
            None => {
                // Recorded before any part is sent, so an abort always finds
                // (and ends) the multipart upload, whatever happens next.
                let u = self.s3.create_multipart(&key)?;
                self.doc.multipart = Some(u.clone());
                self.s3.put_state(&self.id, &self.doc)?;
                u
            }
        };
        let n = self.doc.parts.len() + self.sent.len() + 1;
        let etag = self.s3.upload_part(&key, &upload, n, &self.buf[..size])?;
        self.sent.push(PartDoc { etag, size: size as u64 });
        self.buf.drain(..size);
        Ok(())
    }
}

impl Write for S3Part {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let size = self.s3.part_size;
        // Take no more than fills the part: the buffer never exceeds it.
        let take = data.len().min(size.saturating_sub(self.buf.len()));
        if self.buf.len() + take > self.buf.capacity() {
            // Grow by doubling, but never past one part.
            let want = (self.buf.len() + take).max(self.buf.capacity() * 2).min(size);
            self.buf.reserve_exact(want - self.buf.len());
        }
        self.buf.extend_from_slice(&data[..take]);
        self.written += take as u64;
        if self.buf.len() == size {
            self.send_part().map_err(io::Error::other)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PartWriter for S3Part {
    fn commit(mut self: Box<Self>, resume: &[u8]) -> Result<()> {
        let s3 = self.s3.clone();
        let old_tail = self.doc.tail.take();
        let generation = self.doc.generation + 1;
        let new_tail = if self.buf.is_empty() {
            None
        } else if self.written == 0 && self.sent.is_empty() {
            // An empty part: the tail is as it was.
            old_tail.clone()
        } else {
            // A name no other writer uses: a writer working from a stale
            // state never overwrites the tail the current state names.
            let mut salt = [0u8; 6];
            getrandom::fill(&mut salt)
                .map_err(|e| Error::Internal(anyhow::anyhow!("random tail name: {e}")))?;
            let key = s3.data_key(&self.id, &format!("t{generation}-{}", crate::model::to_hex(&salt)));
            s3.put(&key, &self.buf, "write upload tail")?;
            Some((key, self.buf.len() as u64))
        };
        let mut doc = std::mem::take(&mut self.doc);
        doc.generation = generation;
        doc.size += self.written;
        doc.parts.append(&mut self.sent);
        doc.tail = new_tail.clone();
        doc.resume = crate::model::to_hex(resume);
        // The commit point.  On an error the new tail stays: the PUT may
        // have landed after all (abort and reconcile remove it otherwise).
        s3.put_state(&self.id, &doc)?;
        if let Some((key, _)) = old_tail {
            if Some(&key) != new_tail.as_ref().map(|t| &t.0) {
                if let Err(e) = s3.delete(&key, "remove old upload tail") {
                    log::warn!("cannot remove an old upload tail key={key} err={e}");
                }
            }
        }
        Ok(())
    }
}

/// A blob's data, read with ranged GETs: opened at the first read after a
/// seek, then streamed.
struct ObjectReader {
    s3: Arc<Client>,
    key: String,
    size: u64,
    pos: u64,
    body: Option<ureq::BodyReader<'static>>,
}

impl ObjectReader {
    /// Opens the object from `pos` to its end.
    fn start(&mut self) -> io::Result<()> {
        let s3 = &self.s3;
        let url = s3.sign(s3.bucket.get_object(Some(&s3.creds), &self.key));
        let resp = s3
            .agent
            .get(&url)
            .header("range", format!("bytes={}-{}", self.pos, self.size - 1))
            .call()
            .map_err(|e| io::Error::other(format!("object store: read blob: {e}")))?;
        let status = resp.status().as_u16();
        if status != 206 && !(status == 200 && self.pos == 0) {
            return Err(io::Error::other(format!("object store: read blob {}: HTTP {status}", self.key)));
        }
        self.body = Some(resp.into_body().into_reader());
        Ok(())
    }
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || out.is_empty() {
            return Ok(0);
        }
        if self.body.is_none() {
            self.start()?;
        }
        let n = self.body.as_mut().expect("opened above").read(out)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("object store: blob {} ended at {} of {} bytes", self.key, self.pos, self.size),
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ObjectReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if target != self.pos {
            self.body = None;
            self.pos = target;
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_errors_say_whose_fault_they_are() {
        let xml = "<Error><Code>SlowDown</Code></Error>";
        assert!(matches!(refused("x", 400, xml), Error::Unavailable(_)));
        assert!(matches!(refused("x", 503, ""), Error::Unavailable(_)));
        assert!(matches!(refused("x", 403, "<Error><Code>AccessDenied</Code></Error>"), Error::Internal(_)));
    }

    #[test]
    fn upload_ids_that_are_not_ours_never_become_keys() {
        for bad in ["", "../x", "a/b", "uploads", &"a".repeat(65)] {
            assert!(crate::storage::valid_upload_id(bad).is_err(), "{bad:?}");
        }
        assert!(crate::storage::valid_upload_id("c0ffee00-0001-4000-8000-abcdef").is_ok());
    }
}
