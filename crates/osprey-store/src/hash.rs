//! The content hash: what makes two posts "the same content" for
//! deduplication, whatever ids their clients gave them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xxhash_rust::xxh3::Xxh3;

/// XXH3-128 of a post's title length (8 bytes, little-endian), its title
/// and its body.
///
/// 128 bits so that collisions are not a practical concern at any corpus
/// size (a 64-bit hash collides with 50 % odds around four billion posts);
/// XXH3 because it hashes at memory speed, which matters on the request
/// path. Stored as 32 lowercase hex digits, which is also its `Display`,
/// `FromStr` and serde form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub u128);

impl ContentHash {
    /// The hash of a post's text. The title's length goes first, so no
    /// split of the same bytes between title and body (`("a\nb", "c")` and
    /// `("a", "b\nc")`) gives the same hash.
    pub fn of(title: &str, body: &str) -> Self {
        let mut h = Xxh3::new();
        h.update(&(title.len() as u64).to_le_bytes());
        h.update(title.as_bytes());
        h.update(body.as_bytes());
        Self(h.digest128())
    }

    /// The 32-digit hex form the database stores.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({:032x})", self.0)
    }
}

impl FromStr for ContentHash {
    type Err = String;

    /// Exactly 32 hex digits: a shorter string would parse as a different,
    /// zero-padded hash and match nothing, silently.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("content hash {s:?} is not 32 hex digits"));
        }
        u128::from_str_radix(s, 16).map(Self).map_err(|e| format!("content hash {s:?}: {e}"))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_and_body_boundaries_differ() {
        assert_ne!(ContentHash::of("a\nb", "c"), ContentHash::of("a", "b\nc"));
        assert_ne!(ContentHash::of("ab", "c"), ContentHash::of("a", "bc"));
        assert_eq!(ContentHash::of("t", "b"), ContentHash::of("t", "b"));
    }

    #[test]
    fn hash_is_xxh3_128_of_title_length_title_body() {
        let h = ContentHash::of("Cargo", "is slow");
        let mut bytes = 5u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"Cargois slow");
        assert_eq!(h.0, xxhash_rust::xxh3::xxh3_128(&bytes), "documented, so other tools can compute it");
    }

    #[test]
    fn hex_round_trips_and_rejects_malformed() {
        let h = ContentHash::of("t", "b");
        let hex = h.to_string();
        assert_eq!(hex.len(), 32);
        assert_eq!(hex.parse::<ContentHash>(), Ok(h));
        assert_eq!(ContentHash(1).to_string(), "00000000000000000000000000000001");
        assert!("abc".parse::<ContentHash>().is_err());
        assert!("zz000000000000000000000000000000".parse::<ContentHash>().is_err());
        let json = serde_json::to_string(&h).expect("serialize");
        assert_eq!(serde_json::from_str::<ContentHash>(&json).expect("deserialize"), h);
    }
}
