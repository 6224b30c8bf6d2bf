//! What an entry is filed under: its [`Kind`] and a 128-bit [`CacheKey`].
//!
//! Keys are content addresses. A [`KeyBuilder`] hashes a namespace and any
//! number of parts with XXH3-128, each part prefixed with its length so that
//! `("ab", "c")` and `("a", "bc")` never share a byte stream and so never share
//! a key. The kind is kept outside the hash: it picks the TTLs and the Redis
//! key family, and lets `clear` drop one kind without touching the others.

use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::CacheError;

/// The families of cached values. Each has its own TTLs in L1 and L2 and its
/// own Redis key space, because they age differently: a model's prediction for
/// a text stays right until the model changes, metadata changes rarely, and a
/// whole HTTP response embeds request details that go stale fastest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Prediction,
    Metadata,
    Response,
}

impl Kind {
    /// Every kind, in the order used by per-kind arrays.
    pub const ALL: [Kind; 3] = [Kind::Prediction, Kind::Metadata, Kind::Response];

    /// The label used in metrics, stats and Redis keys.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Prediction => "prediction",
            Kind::Metadata => "metadata",
            Kind::Response => "response",
        }
    }

    /// Position in [`Kind::ALL`], for per-kind arrays.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two cache tiers: in-process (L1) and shared Redis (L2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    L1,
    L2,
}

impl Tier {
    /// The label used in metrics and stats.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::L1 => "l1",
            Tier::L2 => "l2",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 128-bit content hash naming one cached value within a [`Kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub u128);

impl CacheKey {
    /// The 32-digit lowercase hex form used in Redis keys.
    pub fn hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Builds a [`CacheKey`] from a namespace and length-prefixed parts.
///
/// The namespace should name what is being cached and its type (for example
/// `"sentiment/v2"`), because two call sites that share a kind and a key but
/// store different types would otherwise read each other's values.
#[derive(Clone)]
pub struct KeyBuilder(Xxh3);

impl KeyBuilder {
    pub fn new(namespace: &str) -> Self {
        let mut builder = Self(Xxh3::new());
        builder.part(namespace.as_bytes());
        builder
    }

    /// Adds raw bytes as one part.
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds a string as one part.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.part(s.as_bytes())
    }

    /// Adds a serialisable value (request options, model revisions) as one
    /// part of compact JSON. Fails rather than hashing nothing, because an
    /// empty part would make every unserialisable value share one key.
    pub fn json(&mut self, value: &impl Serialize) -> Result<&mut Self, CacheError> {
        let bytes = serde_json::to_vec(value).map_err(CacheError::Encode)?;
        Ok(self.part(&bytes))
    }

    pub fn finish(&self) -> CacheKey {
        CacheKey(self.0.digest128())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn part_boundaries_namespace_and_content_all_change_the_key() {
        let a = KeyBuilder::new("t").str("ab").str("c").finish();
        let b = KeyBuilder::new("t").str("a").str("bc").finish();
        let c = KeyBuilder::new("u").str("ab").str("c").finish();
        let d = KeyBuilder::new("t").str("ab").str("d").finish();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a, KeyBuilder::new("t").str("ab").str("c").finish());
    }

    #[test]
    fn json_parts_hash_their_compact_encoding() -> Result<(), CacheError> {
        let opts = serde_json::json!({"top_k": 3, "lang": "en"});
        let a = KeyBuilder::new("t").json(&opts)?.finish();
        let b = KeyBuilder::new("t").str(&serde_json::to_string(&opts).map_err(CacheError::Encode)?).finish();
        assert_eq!(a, b);
        let mut bad = BTreeMap::new();
        bad.insert(vec![1u8], 1);
        assert!(matches!(KeyBuilder::new("t").json(&bad), Err(CacheError::Encode(_))), "non-string map keys");
        Ok(())
    }

    #[test]
    fn hex_form_is_32_lowercase_digits() {
        assert_eq!(CacheKey(0xAB).hex(), "000000000000000000000000000000ab");
        assert_eq!(CacheKey(u128::MAX).to_string(), "f".repeat(32));
        assert_eq!(Kind::ALL.map(Kind::as_str), ["prediction", "metadata", "response"]);
        assert_eq!(Kind::ALL.map(Kind::index), [0, 1, 2]);
    }
}
