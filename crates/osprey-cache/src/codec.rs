//! How values become L2 bytes and back.
//!
//! Layout: one header byte, then the body. The header's low seven bits name
//! the body format (only JSON today: `1`); its top bit says the body is a zstd
//! frame. The header lets a later build change format without misreading
//! entries written by an older one still alive in Redis (an unknown format is
//! a miss, not garbage), on top of the schema version in every key.
//!
//! JSON is used because every cached type already derives `Serialize` for the
//! HTTP API, and it stays readable with `redis-cli`. Bodies longer than
//! `compress_min_bytes` are compressed, since JSON of scores and sentences
//! shrinks several-fold and Redis memory and network time are the scarce
//! resources; short bodies are not, where zstd's frame overhead would win.

use std::io::Read;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::CacheError;

/// A value that can be cached in both tiers.
///
/// `approx_bytes` is what L1 charges against `l1.max_bytes`: it should count
/// heap data (strings, vectors) so that one huge answer does not occupy the
/// room of a thousand small ones. It need not be exact.
pub trait Cacheable: Serialize + DeserializeOwned + Send + Sync + 'static {
    fn approx_bytes(&self) -> usize;
}

impl Cacheable for String {
    fn approx_bytes(&self) -> usize {
        self.len() + std::mem::size_of::<Self>()
    }
}

pub(crate) const FORMAT_JSON: u8 = 1;
pub(crate) const FLAG_ZSTD: u8 = 0x80;
const FORMAT_MASK: u8 = 0x7f;

/// An encoded value and what it took, for the stats.
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub compressed: bool,
}

/// Encoding rules shared by writers and readers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Codec {
    pub compress_min_bytes: usize,
    pub zstd_level: i32,
    /// Bound on the JSON body. Applied before compression on write, so a
    /// reader can apply the same bound to decompression and a corrupt or
    /// hostile frame cannot make it allocate without limit.
    pub max_value_bytes: usize,
}

impl Codec {
    pub fn encode<T: Serialize>(&self, value: &T) -> Result<Encoded, CacheError> {
        let mut buf = Vec::with_capacity(128);
        buf.push(FORMAT_JSON);
        serde_json::to_writer(&mut buf, value).map_err(CacheError::Encode)?;
        let body_len = buf.len() - 1;
        if body_len > self.max_value_bytes {
            return Err(CacheError::TooLarge { bytes: body_len, max: self.max_value_bytes });
        }
        if body_len > self.compress_min_bytes {
            let frame = zstd::bulk::compress(&buf[1..], self.zstd_level).map_err(CacheError::Compress)?;
            if frame.len() < body_len {
                let mut out = Vec::with_capacity(frame.len() + 1);
                out.push(FORMAT_JSON | FLAG_ZSTD);
                out.extend_from_slice(&frame);
                return Ok(Encoded { bytes: out, compressed: true });
            }
        }
        Ok(Encoded { bytes: buf, compressed: false })
    }

    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CacheError> {
        let (&header, body) = bytes.split_first().ok_or_else(|| CacheError::Decode("empty value".into()))?;
        if header & FORMAT_MASK != FORMAT_JSON {
            return Err(CacheError::Decode(format!("unknown format byte {header:#04x}")));
        }
        if header & FLAG_ZSTD == 0 {
            return serde_json::from_slice(body).map_err(|e| CacheError::Decode(e.to_string()));
        }
        let limit = self.max_value_bytes as u64;
        let decoder =
            zstd::stream::read::Decoder::with_buffer(body).map_err(|e| CacheError::Decode(format!("zstd: {e}")))?;
        let mut json = Vec::with_capacity(body.len() * 4);
        decoder.take(limit + 1).read_to_end(&mut json).map_err(|e| CacheError::Decode(format!("zstd: {e}")))?;
        if json.len() as u64 > limit {
            return Err(CacheError::TooLarge { bytes: json.len(), max: self.max_value_bytes });
        }
        serde_json::from_slice(&json).map_err(|e| CacheError::Decode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        label: String,
        scores: Vec<f32>,
    }

    fn codec() -> Codec {
        Codec { compress_min_bytes: 64, zstd_level: 3, max_value_bytes: 1 << 20 }
    }

    #[test]
    fn small_values_are_plain_json_behind_the_header() -> Result<(), CacheError> {
        let doc = Doc { label: "joy".into(), scores: vec![0.5, 0.25] };
        let enc = codec().encode(&doc)?;
        assert!(!enc.compressed);
        assert_eq!(enc.bytes[0], FORMAT_JSON);
        assert_eq!(&enc.bytes[1..], br#"{"label":"joy","scores":[0.5,0.25]}"#);
        assert_eq!(codec().decode::<Doc>(&enc.bytes)?, doc);
        Ok(())
    }

    #[test]
    fn large_values_are_compressed_and_round_trip() -> Result<(), CacheError> {
        let doc = Doc { label: "sadness ".repeat(200), scores: vec![0.125; 300] };
        let json_len = serde_json::to_vec(&doc).map_err(CacheError::Encode)?.len();
        let enc = codec().encode(&doc)?;
        assert!(enc.compressed);
        assert_eq!(enc.bytes[0], FORMAT_JSON | FLAG_ZSTD);
        assert!(enc.bytes.len() * 5 < json_len, "{} vs {json_len}", enc.bytes.len());
        assert_eq!(&enc.bytes[1..5], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic number");
        assert_eq!(codec().decode::<Doc>(&enc.bytes)?, doc);
        Ok(())
    }

    #[test]
    fn oversized_and_malformed_inputs_are_refused() -> Result<(), CacheError> {
        let small = Codec { max_value_bytes: 16, ..codec() };
        let doc = Doc { label: "x".repeat(100), scores: vec![] };
        assert!(matches!(small.encode(&doc), Err(CacheError::TooLarge { max: 16, .. })));
        // A frame that inflates past the bound is cut off rather than decoded.
        let big = codec().encode(&doc)?;
        assert!(big.compressed);
        assert!(matches!(small.decode::<Doc>(&big.bytes), Err(CacheError::TooLarge { .. })));
        assert!(matches!(codec().decode::<Doc>(&[]), Err(CacheError::Decode(_))));
        assert!(matches!(codec().decode::<Doc>(&[2, b'{', b'}']), Err(CacheError::Decode(_))), "unknown format");
        assert!(matches!(codec().decode::<Doc>(&[FORMAT_JSON | FLAG_ZSTD, 1, 2, 3]), Err(CacheError::Decode(_))));
        assert!(matches!(codec().decode::<Doc>(&[FORMAT_JSON, b'[', b']']), Err(CacheError::Decode(_))), "wrong type");
        Ok(())
    }
}
