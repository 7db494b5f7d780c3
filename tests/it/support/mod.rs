//! Test support, by concern: `app` (in process), `server` (the real
//! binary), `layout` (OCI image layouts and client commands), `certs` (TLS),
//! `browser` (headless Chromium over WebDriver), `swift` (an object store), `scale` (PostgreSQL, HAProxy).

#![allow(dead_code)]

mod app;
mod browser;
mod certs;
mod layout;
mod scale;
mod server;
mod swift;

pub use app::*;
pub use browser::*;
pub use certs::*;
pub use layout::*;
pub use scale::*;
pub use server::*;
pub use swift::*;

use sha2::{Digest as _, Sha256};

pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let mut s = String::from("sha256:");
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Deterministic pseudo-random bytes (xorshift), so tests make distinct
/// but reproducible blobs without a RNG dependency.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
