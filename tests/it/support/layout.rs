//! Real OCI image layouts on disk (gzip tar layers, configs with matching
//! diff_ids) that skopeo and friends accept, and running their commands.

#![allow(dead_code)]

use super::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An OCI image layout directory on disk, as skopeo reads and writes them.
pub struct Layout {
    pub dir: PathBuf,
    index: Vec<Value>,
}

#[derive(Clone, Debug)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let l = Layout { dir: dir.to_path_buf(), index: Vec::new() };
        l.write_index();
        l
    }

    pub fn put_blob(&self, data: &[u8]) -> String {
        let d = sha256(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
        d
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.dir.join("blobs/sha256").join(&digest[7..])).unwrap()
    }

    fn write_index(&self) {
        let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.index});
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    }

    fn tag(&mut self, d: &Desc, tag: &str) {
        self.index.push(json!({
            "mediaType": d.media_type, "digest": d.digest, "size": d.size,
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }));
        self.write_index();
    }

    /// A gzip tar layer holding one file of `size` pseudo-random bytes;
    /// returns (compressed descriptor, diff_id).
    pub fn layer(&self, seed: u64, size: usize) -> (Desc, String) {
        let mut tar = tar::Builder::new(Vec::new());
        let data = bytes(seed, size);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, format!("data-{seed}.bin"), &data[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        let diff_id = sha256(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let digest = self.put_blob(&gz);
        (
            Desc { media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(), digest, size: gz.len() },
            diff_id,
        )
    }

    /// An image of `layers` layers for `arch`; tagged in index.json when `tag` is given.
    pub fn image(&mut self, tag: Option<&str>, seed: u64, layers: usize, arch: &str) -> Desc {
        let sizes: Vec<usize> = (0..layers).map(|i| 2000 + 3000 * i).collect();
        self.image_sized(tag, seed, &sizes, arch)
    }

    /// An image with one layer of each of `sizes` (uncompressed) bytes.
    pub fn image_sized(&mut self, tag: Option<&str>, seed: u64, sizes: &[usize], arch: &str) -> Desc {
        let ls: Vec<(Desc, String)> =
            sizes.iter().enumerate().map(|(i, n)| self.layer(seed * 100 + i as u64, *n)).collect();
        let config = json!({
            "architecture": arch, "os": "linux",
            "config": {"Env": [format!("SEED={seed}")]},
            "rootfs": {"type": "layers", "diff_ids": ls.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>()},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let cd = self.put_blob(&config);
        let m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": ls.iter().map(|(d, _)| json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size})).collect::<Vec<_>>(),
        });
        let m = serde_json::to_vec(&m).unwrap();
        let d = Desc { media_type: OCI_MANIFEST.into(), digest: self.put_blob(&m), size: m.len() };
        if let Some(t) = tag {
            self.tag(&d, t);
        }
        d
    }

    /// A multi-platform index over new images for each architecture.
    pub fn index(&mut self, tag: &str, seed: u64, arches: &[&str]) -> Desc {
        let children: Vec<Value> = arches
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let d = self.image(None, seed + i as u64, 2, a);
                json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size,
                       "platform": {"architecture": a, "os": "linux"}})
            })
            .collect();
        let idx =
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}))
                .unwrap();
        let d = Desc { media_type: OCI_INDEX.into(), digest: self.put_blob(&idx), size: idx.len() };
        self.tag(&d, tag);
        d
    }

    /// An artifact (empty config, one blob layer) whose subject is `subject`.
    pub fn artifact(&mut self, tag: &str, artifact_type: &str, subject: &Desc, payload: &[u8]) -> Desc {
        let empty = self.put_blob(b"{}");
        let pd = self.put_blob(payload);
        let m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": pd, "size": payload.len()}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
            "annotations": {"org.example.kind": "signature"},
        });
        let m = serde_json::to_vec(&m).unwrap();
        let d = Desc { media_type: OCI_MANIFEST.into(), digest: self.put_blob(&m), size: m.len() };
        self.tag(&d, tag);
        d
    }
}

/// Runs a command, panicking with its output when it fails.
#[track_caller]
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (scripts/test installs the clients)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
