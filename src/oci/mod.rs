//! The OCI Distribution `/v2` frontend: route, parse parameters, call the
//! service, shape the answer (headers, status codes, error JSON).
//!
//! Invariant: handlers call `service` only; every answer, errors included,
//! carries `Docker-Distribution-API-Version: registry/2.0`.

mod errors;
pub use errors::refusal;
mod route;
mod token;

use crate::app::{App, Ctx};
use crate::error::{Context as _, Error, Result, What};
use crate::http::{Body, Request, Response};
use crate::model::{Actor, Algorithm, Digest, Reference, RepoName, Tag};
use crate::service::{self, parse_digest, parse_repo, uploads::Chunk};
use route::Route;
use service::blobs::BlobReader;
use std::io::Read;

pub fn handle(app: &App, req: &mut Request, req_id: &str) -> Response {
    crate::http::contain(req_id, || answer(app, req, req_id), || errors::internal_error(req_id))
}

fn answer(app: &App, req: &mut Request, req_id: &str) -> Response {
    let path = req.path().to_string();
    let parsed = route::parse(&path);
    let mut ctx = Ctx { app, actor: Actor::Anonymous, req_id, peer: req.remote_addr };
    let result = match parsed {
        Route::Token => token::handle(&ctx, req),
        // Every other /v2 route needs an authenticated caller before any
        // input is looked at; policy is then checked in the service.
        _ => authenticate(&ctx, req).and_then(|actor| {
            ctx.actor = actor;
            match ctx.actor {
                Actor::Anonymous => Err(Error::Unauthenticated),
                Actor::User(_) | Actor::System(_) => route(&ctx, req, &path),
            }
        }),
    };
    // For a token beyond its scope, the challenge names exactly the scope
    // the refused action needs (so a client that follows it gets there).
    let mut insufficient: Option<Option<String>> = None;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            if let Error::InsufficientScope { needed } = &e {
                insufficient = Some(needed.clone());
            }
            errors::to_response(&ctx, &e, &req.method)
        }
    };
    if resp.status == 401 {
        let c = match insufficient {
            Some(needed) => format!(
                "{},error=\"insufficient_scope\"",
                challenge(app, req, &parsed, Some(needed.as_deref()))
            ),
            None => challenge(app, req, &parsed, None),
        };
        resp = resp.header("WWW-Authenticate", c);
    }
    if resp.user.is_none() {
        resp.user = Some(ctx.actor.name().to_string());
    }
    resp.header("Docker-Distribution-API-Version", "registry/2.0")
}

/// The actor behind the request's credentials; no credentials is anonymous,
/// bad credentials are an error (never a silent downgrade to anonymous).
fn authenticate(ctx: &Ctx, req: &Request) -> Result<Actor> {
    match req.credentials() {
        Ok(None) => Ok(Actor::Anonymous),
        Ok(Some(creds)) => service::session::authenticate(ctx, &creds),
        Err(crate::http::MalformedCredentials) => Err(Error::Unauthenticated),
    }
}

/// `Bearer realm="<base>/v2/token",service="<service>",scope="…"`.
/// `needed`: the exact scope a scoped token lacked (`Some(None)`: none
/// would do), instead of the one guessed from the route.
fn challenge(app: &App, req: &Request, r: &Route, needed: Option<Option<&str>>) -> String {
    // Never from the client's Host header: whoever can alter it (a proxy,
    // a poisoned cache) would send clients' passwords elsewhere.
    let base = match app.config.server.external_url.trim_end_matches('/') {
        "" => {
            let scheme = if app.config.tls_enabled() { "https" } else { "http" };
            let addr = req.local_addr.map_or_else(|| app.config.server.listen.clone(), |a| a.to_string());
            format!("{scheme}://{addr}")
        }
        url => url.to_string(),
    };
    let service = &app.config.auth.service;
    if matches!(r, Route::Token) {
        return format!("Basic realm=\"{service}\"");
    }
    let actions = match req.method.as_str() {
        "GET" | "HEAD" => "pull",
        "DELETE" => "delete",
        _ => "pull,push",
    };
    let guessed = match r {
        Route::Catalog => Some("registry:catalog:*".to_string()),
        Route::Tags { name }
        | Route::Manifest { name, .. }
        | Route::UploadStart { name }
        | Route::Upload { name, .. }
        | Route::Blob { name, .. }
        | Route::Referrers { name, .. } => {
            RepoName::parse(name).ok().map(|n| format!("repository:{n}:{actions}"))
        }
        Route::Base | Route::Token | Route::Unknown => None,
    };
    let scope = match needed {
        Some(exact) => exact.map(str::to_string),
        None => guessed,
    };
    let mut c = format!("Bearer realm=\"{base}/v2/token\",service=\"{service}\"");
    if let Some(s) = scope {
        c.push_str(&format!(",scope=\"{s}\""));
    }
    c
}

fn route(ctx: &Ctx, req: &mut Request, path: &str) -> Result<Response> {
    let m = req.method.as_str();
    match (route::parse(path), m) {
        (Route::Base, "GET" | "HEAD") => {
            service::access::authorize(ctx, crate::model::Action::VersionCheck, None)?;
            Ok(Response::json(200, b"{}".to_vec()))
        }
        (Route::Catalog, "GET") => catalog(ctx, req),
        (Route::Tags { name }, "GET") => tags(ctx, req, name),
        (Route::Manifest { name, reference }, "GET" | "HEAD") => get_manifest(ctx, req, name, reference),
        (Route::Manifest { name, reference }, "PUT") => put_manifest(ctx, req, name, reference),
        (Route::Manifest { name, reference }, "DELETE") => delete_manifest(ctx, name, reference),
        (Route::Blob { name, digest }, "GET" | "HEAD") => get_blob(ctx, req, name, digest),
        (Route::Blob { name, digest }, "DELETE") => {
            service::blobs::delete(ctx, &parse_repo(name)?, &parse_digest(digest)?)?;
            Ok(Response::new(202))
        }
        (Route::UploadStart { name }, "POST") => start_upload(ctx, req, name),
        (Route::Upload { name, id }, "GET") => {
            let repo = parse_repo(name)?;
            let offset = service::uploads::status(ctx, &repo, id)?;
            Ok(upload_progress(204, &repo, id, offset))
        }
        (Route::Upload { name, id }, "PATCH") => patch_upload(ctx, req, name, id),
        (Route::Upload { name, id }, "PUT") => finish_upload(ctx, req, name, id),
        (Route::Upload { name, id }, "DELETE") => {
            service::uploads::cancel(ctx, &parse_repo(name)?, id)?;
            Ok(Response::new(204))
        }
        (Route::Referrers { name, digest }, "GET") => referrers(ctx, req, name, digest),
        (Route::Unknown, _) => Err(Error::NotFound(What::Route)),
        (Route::Token, _) => Err(Error::MethodNotAllowed),
        _ => Err(Error::MethodNotAllowed),
    }
}

fn query_one<'q>(q: &'q [(String, String)], key: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `Link: </v2/...?n=N&last=X>; rel="next"` when another page exists.
fn with_next_link(resp: Response, base: &str, n: Option<&str>, page: &service::Page, max: usize) -> Response {
    match &page.next {
        Some(last) => {
            let n = n.map_or(max.to_string(), str::to_string);
            resp.header("Link", format!("<{base}?n={n}&last={last}>; rel=\"next\""))
        }
        None => resp,
    }
}

fn catalog(ctx: &Ctx, req: &Request) -> Result<Response> {
    let q = req.query();
    let (n, last) = (query_one(&q, "n"), query_one(&q, "last"));
    let page = service::listing::catalog(ctx, n, last)?;
    #[derive(serde::Serialize)]
    struct Catalog<'a> {
        repositories: &'a [String],
    }
    // Serialized straight from the page: no JSON tree, no copy of the names.
    let body = serde_json::to_vec(&Catalog { repositories: &page.items }).context("encode catalog")?;
    let resp = Response::json(200, body);
    Ok(with_next_link(resp, "/v2/_catalog", n, &page, ctx.app.config.limits.page_max))
}

fn tags(ctx: &Ctx, req: &Request, name: &str) -> Result<Response> {
    let repo = parse_repo(name)?;
    let q = req.query();
    let (n, last) = (query_one(&q, "n"), query_one(&q, "last"));
    let page = service::listing::tags(ctx, &repo, n, last)?;
    #[derive(serde::Serialize)]
    struct TagList<'a> {
        name: &'a str,
        tags: &'a [String],
    }
    let body =
        serde_json::to_vec(&TagList { name: repo.as_str(), tags: &page.items }).context("encode tag list")?;
    let resp = Response::json(200, body);
    let base = format!("/v2/{repo}/tags/list");
    Ok(with_next_link(resp, &base, n, &page, ctx.app.config.limits.page_max))
}

/// A reference in a read or delete URL: a malformed tag names nothing.
fn lookup_reference(s: &str) -> Result<Reference> {
    if s.contains(':') {
        return Ok(Reference::Digest(parse_digest(s)?));
    }
    Tag::parse(s).map(Reference::Tag).map_err(|_| Error::NotFound(What::Manifest))
}

fn get_manifest(ctx: &Ctx, req: &Request, name: &str, reference: &str) -> Result<Response> {
    let repo = parse_repo(name)?;
    let m = service::manifests::get(ctx, &repo, &lookup_reference(reference)?)?;
    let body = if req.method == "HEAD" { Body::Head(m.body.len() as u64) } else { Body::Bytes(m.body) };
    Ok(Response::new(200)
        .header("Content-Type", m.media_type)
        .header("Docker-Content-Digest", m.digest.clone())
        .header("ETag", format!("\"{}\"", m.digest))
        .body(body))
}

fn put_manifest(ctx: &Ctx, req: &mut Request, name: &str, reference: &str) -> Result<Response> {
    let repo = parse_repo(name)?;
    let reference = if reference.contains(':') {
        Reference::Digest(parse_digest(reference)?)
    } else {
        Reference::Tag(Tag::parse(reference).map_err(Error::InvalidManifest)?)
    };
    let q = req.query();
    let extra: Vec<Tag> = q
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| Tag::parse(v).map_err(Error::InvalidManifest))
        .collect::<Result<_>>()?;
    let content_type = req.header("Content-Type").map(str::to_string);
    let len = req.content_length();
    let pushed =
        service::manifests::put(ctx, &repo, &reference, &extra, content_type.as_deref(), req.body, len)?;
    let mut resp = Response::new(201)
        .header("Location", format!("/v2/{repo}/manifests/{}", pushed.digest))
        .header("Docker-Content-Digest", pushed.digest.to_string());
    if let Some(s) = pushed.subject {
        resp = resp.header("OCI-Subject", s);
    }
    if !extra.is_empty() {
        for t in &pushed.tags {
            resp = resp.header("OCI-Tag", t.as_str());
        }
    }
    Ok(resp)
}

fn delete_manifest(ctx: &Ctx, name: &str, reference: &str) -> Result<Response> {
    let repo = parse_repo(name)?;
    let reference = if reference.contains(':') {
        Reference::Digest(parse_digest(reference)?)
    } else {
        Reference::Tag(Tag::parse(reference).map_err(|_| Error::NotFound(What::Manifest))?)
    };
    service::manifests::delete(ctx, &repo, &reference)?;
    Ok(Response::new(202))
}

/// Parses `Range: bytes=a-b | a- | -n` against `size`; `None` for no header.
fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>> {
    let Some(h) = header else { return Ok(None) };
    let bad = || Error::RangeNotSatisfiable { size };
    let spec = h.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (false, false) => (num(a)?, num(b)?),
        (false, true) => (num(a)?, size.saturating_sub(1)),
        (true, false) => {
            let n = num(b)?;
            if n == 0 {
                return Err(bad());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (true, true) => return Err(bad()),
    };
    if start > end || start >= size {
        return Err(bad());
    }
    Ok(Some((start, end.min(size - 1))))
}

fn get_blob(ctx: &Ctx, req: &Request, name: &str, digest: &str) -> Result<Response> {
    let repo = parse_repo(name)?;
    let digest = parse_digest(digest)?;
    let head = req.method == "HEAD";
    let resp = |status| {
        Response::new(status)
            .header("Docker-Content-Digest", digest.to_string())
            .header("Content-Type", "application/octet-stream")
            .header("Accept-Ranges", "bytes")
            .header("ETag", format!("\"{digest}\""))
    };
    if head {
        let size = service::blobs::stat(ctx, &repo, &digest)?;
        return Ok(resp(200).body(Body::Head(size)));
    }
    let (mut blob, size) = service::blobs::open(ctx, &repo, &digest)?;
    let (status, start, len) = match parse_range(req.header("Range"), size)? {
        None => (200, 0, size),
        Some((start, end)) => (206, start, end - start + 1),
    };
    if start > 0 {
        blob.seek_to(start).context("seek blob")?;
    }
    let body = match blob {
        BlobReader::File(f) => Body::File(f, len),
        BlobReader::Stream(s) => Body::Stream(Box::new(s.take(len)), len),
    };
    let resp = resp(status).body(body);
    Ok(if status == 206 {
        resp.header("Content-Range", format!("bytes {start}-{}/{size}", start + len - 1))
    } else {
        resp
    })
}

fn upload_progress(status: u16, repo: &RepoName, id: &str, offset: u64) -> Response {
    Response::new(status)
        .header("Location", format!("/v2/{repo}/blobs/uploads/{id}"))
        .header("Range", format!("0-{}", offset.saturating_sub(1)))
        .header("Docker-Upload-UUID", id)
}

fn blob_created(repo: &RepoName, digest: &Digest) -> Response {
    Response::new(201)
        .header("Location", format!("/v2/{repo}/blobs/{digest}"))
        .header("Docker-Content-Digest", digest.to_string())
}

fn start_upload(ctx: &Ctx, req: &mut Request, name: &str) -> Result<Response> {
    let repo = parse_repo(name)?;
    let q = req.query();
    if let Some(mount) = query_one(&q, "mount") {
        let digest = parse_digest(mount)?;
        if let Some(from) = query_one(&q, "from") {
            let from = parse_repo(from)?;
            if service::uploads::mount(ctx, &repo, &digest, &from)? {
                return Ok(blob_created(&repo, &digest));
            }
        }
    } else if let Some(d) = query_one(&q, "digest") {
        let digest = parse_digest(d)?;
        let len = req.content_length();
        let chunk = Chunk { body: req.body, start: None, len };
        service::uploads::upload_whole(ctx, &repo, &digest, chunk)?;
        return Ok(blob_created(&repo, &digest));
    }
    let algorithm = match query_one(&q, "digest-algorithm") {
        Some(a) => a.parse::<Algorithm>().map_err(Error::InvalidDigest)?,
        None => Algorithm::Sha256,
    };
    let id = service::uploads::start(ctx, &repo, algorithm)?;
    Ok(upload_progress(202, &repo, &id, 0).header("Content-Length", "0"))
}

/// `Content-Range: <start>-<end>` (inclusive) of a chunk, checked against
/// `Content-Length` when both are present.
fn chunk_range(req: &Request) -> Result<(Option<u64>, Option<u64>)> {
    let len = req.content_length();
    let Some(h) = req.header("Content-Range") else {
        return Ok((None, len));
    };
    let bad = || Error::InvalidUpload(format!("Content-Range {h:?} is not of the form <start>-<end>"));
    let spec = h.trim();
    let spec = spec.strip_prefix("bytes=").or_else(|| spec.strip_prefix("bytes ")).unwrap_or(spec);
    let spec = spec.split('/').next().unwrap_or(spec);
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end: u64 = b.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    let span = (end - start).checked_add(1).ok_or_else(bad)?;
    if len.is_some_and(|l| l != span) {
        return Err(Error::InvalidUpload(format!(
            "Content-Range spans {span} bytes but Content-Length is {}",
            len.unwrap_or(0)
        )));
    }
    Ok((Some(start), Some(span)))
}

fn patch_upload(ctx: &Ctx, req: &mut Request, name: &str, id: &str) -> Result<Response> {
    let repo = parse_repo(name)?;
    let (start, len) = match chunk_range(req) {
        Ok(r) => r,
        Err(e) => {
            // A malformed range is answered like an out-of-order chunk, with
            // the offset the client should resume from.
            let offset = service::uploads::status(ctx, &repo, id)?;
            log::debug!("bad content-range req={} err={e}", ctx.req_id);
            return Err(Error::UploadOutOfOrder { offset });
        }
    };
    let chunk = Chunk { body: req.body, start, len };
    let offset = service::uploads::append_chunk(ctx, &repo, id, chunk)?;
    Ok(upload_progress(202, &repo, id, offset).header("Content-Length", "0"))
}

fn finish_upload(ctx: &Ctx, req: &mut Request, name: &str, id: &str) -> Result<Response> {
    let repo = parse_repo(name)?;
    let q = req.query();
    let digest = match query_one(&q, "digest") {
        Some(d) => parse_digest(d)?,
        None => return Err(Error::InvalidDigest("the digest query parameter is required".into())),
    };
    let (start, len) = chunk_range(req)?;
    let chunk = Chunk { body: req.body, start, len };
    service::uploads::finish(ctx, &repo, id, &digest, chunk)?;
    Ok(blob_created(&repo, &digest))
}

fn referrers(ctx: &Ctx, req: &Request, name: &str, digest: &str) -> Result<Response> {
    let repo = parse_repo(name)?;
    let digest = parse_digest(digest)?;
    let q = req.query();
    let filter = query_one(&q, "artifactType");
    let body = service::manifests::referrers(ctx, &repo, &digest, filter)?;
    let mut resp =
        Response::new(200).header("Content-Type", crate::model::media::OCI_INDEX).body(Body::Bytes(body));
    if filter.is_some() {
        resp = resp.header("OCI-Filters-Applied", "artifactType");
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-3"), 10).unwrap(), Some((0, 3)));
        assert_eq!(parse_range(Some("bytes=5-"), 10).unwrap(), Some((5, 9)));
        assert_eq!(parse_range(Some("bytes=-3"), 10).unwrap(), Some((7, 9)));
        assert_eq!(parse_range(Some("bytes=8-100"), 10).unwrap(), Some((8, 9)));
        for bad in
            ["bytes=500-0", "bytes=10-", "bytes=-0", "bytes=a-b", "items=0-1", "bytes=-", "bytes=0-1,3-4"]
        {
            assert!(parse_range(Some(bad), 10).is_err(), "{bad}");
        }
    }
}
