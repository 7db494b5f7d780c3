//! Manifests: validation of what a client pushes, storage with tags and
//! references in one transaction, reads by tag or digest, deletes and the
//! referrers index.
//!
//! Invariant: a committed manifest's referenced blobs and child manifests
//! are present in its repository at commit time (checked inside the same
//! transaction), except non-distributable layers, which clients never push.

use super::access::authorize;
use crate::app::Ctx;
use crate::db;
use crate::error::{Error, Result, What};
use crate::model::{media, Action, Algorithm, Digest, Reference, RepoName, Tag};
use serde_json::{Map, Value};
use std::io::Read;

pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub body: Vec<u8>,
}

pub struct Pushed {
    pub digest: Digest,
    pub subject: Option<String>,
    pub tags: Vec<Tag>,
}

pub fn get(ctx: &Ctx, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
    authorize(ctx, Action::Pull, Some(repo))?;
    let row = ctx.app.db.read(|c| {
        let Some(repo_id) = db::repos::id(c, repo.as_str())? else {
            return Ok(None);
        };
        match reference {
            Reference::Tag(t) => db::manifests::by_tag(c, repo_id, t.as_str()),
            Reference::Digest(d) => db::manifests::by_digest(c, repo_id, &d.to_string()),
        }
    })?;
    let m = row.ok_or(Error::NotFound(What::Manifest))?;
    if ctx.app.config.audit.pulls {
        let mut ev = ctx.event("pull", "ok");
        ev.repository = Some(repo.to_string());
        ev.reference = Some(reference.to_string());
        ev.detail = serde_json::json!({ "digest": m.digest });
        ctx.audit_async(ev)?;
    }
    Ok(Manifest { digest: m.digest, media_type: m.media_type, body: m.body })
}

/// What a parsed manifest references and says about itself.
struct Parsed {
    media_type: String,
    artifact_type: Option<String>,
    subject: Option<String>,
    annotations: Option<String>,
    /// (digest, kind, distributable)
    refs: Vec<(String, &'static str, bool)>,
}

/// Reads at most `limit` bytes of manifest; more is `ManifestTooLarge`.
fn read_capped(body: &mut dyn Read, declared: Option<u64>, limit: u64) -> Result<Vec<u8>> {
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::ManifestTooLarge { limit });
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(4096).min(limit) as usize);
    body.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::BodyIncomplete(format!("manifest body: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(Error::ManifestTooLarge { limit });
    }
    if declared.is_some_and(|n| n != buf.len() as u64) {
        return Err(Error::BodyIncomplete(format!("manifest body ended after {} bytes", buf.len())));
    }
    Ok(buf)
}

fn descriptor(v: &Value, field: &str) -> Result<(String, String, Option<String>, bool)> {
    let invalid = |why: &str| Error::InvalidManifest(format!("{field}: {why}"));
    let o = v.as_object().ok_or_else(|| invalid("descriptor must be an object"))?;
    let mt =
        o.get("mediaType").and_then(Value::as_str).ok_or_else(|| invalid("mediaType must be a string"))?;
    let d = o.get("digest").and_then(Value::as_str).ok_or_else(|| invalid("digest must be a string"))?;
    let d = Digest::parse(d).map_err(|e| invalid(&e))?;
    if o.get("size").and_then(Value::as_u64).is_none() {
        return Err(invalid("size must be a non-negative integer"));
    }
    let has_urls = o.get("urls").and_then(Value::as_array).is_some_and(|u| !u.is_empty());
    let artifact_type = o.get("artifactType").and_then(Value::as_str).map(str::to_string);
    Ok((d.to_string(), mt.to_string(), artifact_type, has_urls))
}

fn parse(body: &[u8], content_type: Option<&str>) -> Result<Parsed> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::InvalidManifest(format!("manifest is not valid JSON: {e}")))?;
    let o = v.as_object().ok_or_else(|| Error::InvalidManifest("manifest must be a JSON object".into()))?;
    if o.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
        return Err(Error::InvalidManifest("schemaVersion must be 2".into()));
    }
    let declared = o.get("mediaType").map(|m| {
        m.as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::InvalidManifest("mediaType must be a string".into()))
    });
    let declared = declared.transpose()?;
    let header = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string());
    let media_type = match (&declared, &header) {
        (Some(d), Some(h)) if media::is_known_manifest(h) && d != h => {
            return Err(Error::InvalidManifest(format!(
                "Content-Type {h} does not match the manifest's mediaType {d}"
            )))
        }
        (Some(d), _) => d.clone(),
        (None, Some(h)) if media::is_known_manifest(h) => h.clone(),
        (None, _) if o.contains_key("manifests") => media::OCI_INDEX.to_string(),
        (None, _) if o.contains_key("config") => media::OCI_MANIFEST.to_string(),
        (None, _) => return Err(Error::InvalidManifest("manifest has no mediaType".into())),
    };
    if !media::is_known_manifest(&media_type) {
        return Err(Error::InvalidManifest(format!("unsupported manifest media type {media_type:?}")));
    }
    let mut refs = Vec::new();
    let mut artifact_type = o.get("artifactType").and_then(Value::as_str).map(str::to_string);
    if media::is_index(&media_type) {
        let children = o
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::InvalidManifest("index must have a manifests array".into()))?;
        for (i, c) in children.iter().enumerate() {
            let (d, _, _, _) = descriptor(c, &format!("manifests[{i}]"))?;
            refs.push((d, "manifest", true));
        }
    } else {
        let config =
            o.get("config").ok_or_else(|| Error::InvalidManifest("manifest has no config".into()))?;
        let (d, config_type, _, _) = descriptor(config, "config")?;
        refs.push((d, "config", true));
        if media_type == media::OCI_MANIFEST && artifact_type.is_none() {
            artifact_type = Some(config_type);
        }
        let layers = match o.get("layers") {
            Some(l) => {
                l.as_array().ok_or_else(|| Error::InvalidManifest("layers must be an array".into()))?
            }
            None => return Err(Error::InvalidManifest("manifest has no layers array".into())),
        };
        for (i, l) in layers.iter().enumerate() {
            let (d, mt, _, has_urls) = descriptor(l, &format!("layers[{i}]"))?;
            let distributable = !(media::is_non_distributable(&mt) || has_urls);
            refs.push((d, "layer", distributable));
        }
    }
    let subject = match o.get("subject") {
        Some(s) => Some(descriptor(s, "subject")?.0),
        None => None,
    };
    let annotations = match o.get("annotations") {
        Some(Value::Object(m)) => Some(Value::Object(m.clone()).to_string()),
        Some(Value::Null) | None => None,
        Some(_) => return Err(Error::InvalidManifest("annotations must be an object".into())),
    };
    Ok(Parsed { media_type, artifact_type, subject, annotations, refs })
}

/// Pushes a manifest under a tag or digest, plus any extra tags.
pub fn put(
    ctx: &Ctx,
    repo: &RepoName,
    reference: &Reference,
    extra_tags: &[Tag],
    content_type: Option<&str>,
    body: &mut dyn Read,
    declared_len: Option<u64>,
) -> Result<Pushed> {
    authorize(ctx, Action::Push, Some(repo))?;
    let bytes = read_capped(body, declared_len, ctx.app.config.limits.manifest_max_bytes)?;
    let digest = match reference {
        Reference::Digest(d) => {
            let actual = Digest::of(d.algorithm(), &bytes);
            if &actual != d {
                return Err(Error::DigestMismatch { expected: d.to_string(), actual: actual.to_string() });
            }
            actual
        }
        Reference::Tag(_) => Digest::of(Algorithm::Sha256, &bytes),
    };
    let parsed = parse(&bytes, content_type)?;
    let mut tags: Vec<Tag> = Vec::new();
    if let Reference::Tag(t) = reference {
        tags.push(t.clone());
    }
    for t in extra_tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let now = ctx.app.now();
    let d = digest.to_string();
    ctx.app.db.write(|tx| {
        let repo_id = db::repos::ensure(tx, repo.as_str(), now)?;
        // What this manifest may pin: only what this repository has. A
        // non-distributable (or `urls`) layer it does not have is accepted,
        // as clients fetch those elsewhere, but pins nothing: a digest alone
        // must not keep another repository's blob alive.
        let mut pinned = Vec::with_capacity(parsed.refs.len());
        for (rd, kind, distributable) in &parsed.refs {
            let here = match *kind {
                "manifest" => db::manifests::exists(tx, repo_id, rd)?,
                _ => db::blobs::size_in_repo(tx, repo_id, rd)?.is_some(),
            };
            if !here && *distributable {
                return Err(Error::ManifestBlobUnknown(rd.clone()));
            }
            pinned.push(here);
        }
        let new = db::manifests::NewManifest {
            digest: &d,
            media_type: &parsed.media_type,
            artifact_type: parsed.artifact_type.as_deref(),
            subject: parsed.subject.as_deref(),
            annotations: parsed.annotations.as_deref(),
            body: &bytes,
        };
        let (id, inserted) = db::manifests::insert(tx, repo_id, &new, now)?;
        if inserted {
            for ((rd, kind, _), here) in parsed.refs.iter().zip(&pinned) {
                if *here {
                    db::manifests::add_reference(tx, id, rd, kind)?;
                }
            }
        }
        let mut moved = Vec::new();
        for t in &tags {
            if let Some(old) = db::tags::set(tx, repo_id, t.as_str(), id, now)? {
                moved.push(serde_json::json!({ "tag": t.as_str(), "from": old }));
            }
        }
        let mut ev = ctx.event("push", "ok");
        ev.repository = Some(repo.to_string());
        ev.reference = Some(reference.to_string());
        ev.detail = serde_json::json!({
            "digest": d,
            "media_type": parsed.media_type,
            "tags": tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "new": inserted,
        });
        crate::audit::record(tx, &ev, now)?;
        if !moved.is_empty() {
            let mut ev = ctx.event("tag_update", "ok");
            ev.repository = Some(repo.to_string());
            ev.reference = Some(d.clone());
            ev.detail = serde_json::json!({ "moved": moved });
            crate::audit::record(tx, &ev, now)?;
        }
        Ok(())
    })?;
    Ok(Pushed { digest, subject: parsed.subject, tags })
}

/// Deletes a manifest by digest; its tags and references go with it.
pub fn delete(ctx: &Ctx, repo: &RepoName, reference: &Reference) -> Result<()> {
    authorize(ctx, Action::Delete, Some(repo))?;
    let Reference::Digest(d) = reference else {
        return Err(Error::Unsupported(
            "deleting a manifest by tag is not supported; delete by digest, or remove the tag through the admin API".into(),
        ));
    };
    let now = ctx.app.now();
    let removed = ctx.app.db.write(|tx| {
        let removed = match db::repos::id(tx, repo.as_str())? {
            Some(id) => db::manifests::delete(tx, id, &d.to_string())?,
            None => false,
        };
        if removed {
            let mut ev = ctx.event("delete", "ok");
            ev.repository = Some(repo.to_string());
            ev.reference = Some(d.to_string());
            ev.detail = serde_json::json!({ "kind": "manifest" });
            crate::audit::record(tx, &ev, now)?;
        }
        Ok(removed)
    })?;
    if removed {
        Ok(())
    } else {
        Err(Error::NotFound(What::Manifest))
    }
}

/// The referrers of `subject` in `repo` as an OCI image index, filtered by
/// artifact type when one is given.
pub fn referrers(
    ctx: &Ctx,
    repo: &RepoName,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<u8>> {
    authorize(ctx, Action::Pull, Some(repo))?;
    let rows = ctx.app.db.read(|c| match db::repos::id(c, repo.as_str())? {
        Some(id) => db::manifests::referrers(c, id, &subject.to_string()),
        None => Ok(Vec::new()),
    })?;
    let manifests: Vec<Value> = rows
        .into_iter()
        .filter(|r| artifact_type.is_none_or(|a| r.artifact_type.as_deref() == Some(a)))
        .map(|r| {
            let mut o = Map::new();
            o.insert("mediaType".into(), r.media_type.into());
            o.insert("digest".into(), r.digest.into());
            o.insert("size".into(), r.size.into());
            if let Some(a) = r.artifact_type {
                o.insert("artifactType".into(), a.into());
            }
            if let Some(a) = r.annotations.and_then(|s| serde_json::from_str::<Value>(&s).ok()) {
                o.insert("annotations".into(), a);
            }
            Value::Object(o)
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    Ok(index.to_string().into_bytes())
}
