//! Content digests (`algorithm:hex`) and the streaming hasher that produces them.
//!
//! Invariant: a `Digest` has a supported algorithm and exactly the right
//! number of lowercase hex characters, so it is safe to use as a file name.

use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Box::new(Sha512::new())),
        }
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(format!("unsupported digest algorithm {:?}", truncate(other))),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, String> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| format!("digest {:?} is not of the form algorithm:hex", truncate(s)))?;
        let algorithm: Algorithm = alg.parse()?;
        if hex.len() != algorithm.hex_len()
            || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "digest {:?} must have {} lowercase hex characters",
                truncate(s),
                algorithm.hex_len()
            ));
        }
        Ok(Digest { algorithm, hex: hex.to_string() })
    }

    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut h = algorithm.hasher();
        h.update(data);
        h.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A running hash of one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// The running state as bytes (an algorithm tag, then the hash's own
    /// serialized state), so that another process can continue the hash
    /// without reading back what it has already seen.
    pub fn save(&self) -> Vec<u8> {
        use sha2::digest::common::hazmat::SerializableState;
        let (tag, state) = match self {
            Hasher::Sha256(h) => (1u8, h.serialize().to_vec()),
            Hasher::Sha512(h) => (2u8, h.serialize().to_vec()),
        };
        let mut out = Vec::with_capacity(1 + state.len());
        out.push(tag);
        out.extend_from_slice(&state);
        out
    }

    /// A hasher continued from `save`'s bytes; `None` for anything else.
    pub fn restore(bytes: &[u8]) -> Option<Hasher> {
        use sha2::digest::common::hazmat::SerializableState;
        let (tag, state) = bytes.split_first()?;
        match tag {
            1 => Sha256::deserialize(state.try_into().ok()?).ok().map(Hasher::Sha256),
            2 => Sha512::deserialize(state.try_into().ok()?).ok().map(|h| Hasher::Sha512(Box::new(h))),
            _ => None,
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, bytes) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Hasher::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest { algorithm, hex: to_hex(&bytes) }
    }
}

/// Bytes from lowercase or uppercase hex; `None` for anything else.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Error messages quote client input; keep them short.
pub(crate) fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_hash_continues_where_it_stopped() {
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
            let mut whole = alg.hasher();
            whole.update(&data);
            // Split inside a block, so the saved state carries a partial buffer.
            let mut first = alg.hasher();
            first.update(&data[..333]);
            let mut resumed = Hasher::restore(&first.save()).expect("restore");
            resumed.update(&data[333..]);
            assert_eq!(resumed.finish(), whole.finish(), "{alg:?}");
        }
        assert!(Hasher::restore(b"").is_none());
        assert!(Hasher::restore(&[1, 2, 3]).is_none());
        let mut wrong = Algorithm::Sha256.hasher().save();
        wrong[0] = 2;
        assert!(Hasher::restore(&wrong).is_none(), "a sha256 state is not a sha512 one");
    }

    #[track_caller]
    fn check(input: &str, ok: bool) {
        assert_eq!(Digest::parse(input).is_ok(), ok, "{input}");
    }

    #[test]
    fn parses_and_rejects() {
        let good = format!("sha256:{}", "a".repeat(64));
        check(&good, true);
        check(&format!("sha512:{}", "0".repeat(128)), true);
        check(&format!("sha256:{}", "A".repeat(64)), false);
        check(&format!("sha256:{}", "a".repeat(63)), false);
        check(&format!("sha256:{}", "a".repeat(65)), false);
        check(&format!("md5:{}", "a".repeat(32)), false);
        check("sha256", false);
        check("", false);
        check(&format!("sha256:../{}", "a".repeat(61)), false);
    }

    #[test]
    fn hashes_known_vectors() {
        assert_eq!(
            Digest::of(Algorithm::Sha256, b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(Digest::of(Algorithm::Sha512, b"abc").to_string().starts_with("sha512:ddaf35a1"));
    }
}
