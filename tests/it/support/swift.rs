//! A real OpenStack Swift ring (three object servers, `s3api`) started by
//! `scripts/swift` in a temporary directory, stopped when dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

pub struct Swift {
    dir: TempDir,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub bucket: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/swift")
}

impl Swift {
    pub fn start() -> Swift {
        let dir = tempfile::Builder::new().prefix("mcr-swift").tempdir().unwrap();
        // The ring stops with this process, even one killed mid-test.
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .env("SWIFT_OWNER_PID", std::process::id().to_string())
            .output()
            .expect("run scripts/swift");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let _ = Command::new(script()).arg("stop").arg(dir.path()).status();
            panic!("scripts/swift start failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let get = |k: &str| {
            vars.get(k).unwrap_or_else(|| panic!("scripts/swift printed no {k}: {text}")).to_string()
        };
        Swift {
            endpoint: get("S3_ENDPOINT"),
            access_key: get("S3_ACCESS_KEY"),
            secret_key: get("S3_SECRET_KEY"),
            region: get("S3_REGION"),
            bucket: get("S3_BUCKET"),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An S3 store on this ring's bucket under `prefix`, with 5 MiB parts
    /// (S3's minimum, so that small tests cross part boundaries).
    pub fn store(&self, prefix: &str) -> mcr::storage::S3Store {
        let store = mcr::storage::S3Store::open(mcr::storage::S3Config {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            prefix: prefix.to_string(),
            access_key_id: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            ca_pem: None,
            part_size: 5 << 20,
        })
        .unwrap();
        store.check().expect("the bucket answers");
        store
    }

    /// The `MCR_STORAGE_*` environment that puts `mcr serve` on this ring,
    /// under `prefix`; the secret goes in a file next to the ring.
    pub fn env(&self, prefix: &str) -> Vec<(String, String)> {
        let secret = self.dir.path().join("s3-secret");
        std::fs::write(&secret, format!("{}\n", self.secret_key)).unwrap();
        [
            ("MCR_STORAGE_BACKEND", "s3".to_string()),
            ("MCR_STORAGE_S3_ENDPOINT", self.endpoint.clone()),
            ("MCR_STORAGE_S3_REGION", self.region.clone()),
            ("MCR_STORAGE_S3_BUCKET", self.bucket.clone()),
            ("MCR_STORAGE_S3_PREFIX", prefix.to_string()),
            ("MCR_STORAGE_S3_ACCESS_KEY_ID", self.access_key.clone()),
            ("MCR_STORAGE_S3_SECRET_KEY_FILE", secret.display().to_string()),
            ("MCR_STORAGE_S3_PART_SIZE", (5u64 << 20).to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Runs `scripts/swift ARGS DIR` (e.g. killing one object server).
    pub fn ctl(&self, args: &[&str]) {
        let st = Command::new(script()).args(args).arg(self.dir.path()).status().unwrap();
        assert!(st.success(), "scripts/swift {args:?} failed");
    }
}

impl Drop for Swift {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(self.dir.path()).status();
    }
}
