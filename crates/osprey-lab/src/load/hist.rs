//! Histogram helpers: constructors with the crate's one configuration,
//! percentile summaries, and the mergeable encoding used in reports
//! (HdrHistogram V2 + deflate, then base64).
//!
//! All histograms count microseconds. They auto-resize, so memory follows the
//! largest value actually recorded rather than the largest one possible.

use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::error::LoadError;

/// Microseconds.
pub type Hist = Histogram<u64>;

/// Full precision (3 significant digits: 0.1 %), for run-wide figures.
pub fn precise() -> Hist {
    Histogram::new(3).expect("3 significant figures is a valid configuration")
}

/// Coarse precision (2 significant digits: 1 %), for per-second and per-stage figures.
pub fn coarse() -> Hist {
    Histogram::new(2).expect("2 significant figures is a valid configuration")
}

/// Records a duration given in microseconds.
pub fn record(h: &mut Hist, micros: u64) {
    // Auto-resizing histograms only refuse values above u64::MAX / 2.
    let _ = h.record(micros.min(u64::MAX / 4));
}

/// Adds `other` into `into` (histograms of any precision).
pub fn add(into: &mut Hist, other: &Hist) {
    let _ = into.add(other);
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl LatencySummary {
    pub fn of(h: &Hist) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Latency at `percentile` (0–100) in milliseconds; `None` when empty.
pub fn percentile_ms(h: &Hist, percentile: f64) -> Option<f64> {
    (!h.is_empty()).then(|| ms(h.value_at_quantile(percentile / 100.0)))
}

/// `value_at_quantile` for a report-sized list of quantiles: `(percentile, ms)`.
pub fn distribution(h: &Hist) -> Vec<(f64, f64)> {
    const POINTS: [f64; 14] = [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0];
    if h.is_empty() {
        return Vec::new();
    }
    POINTS.iter().map(|p| (*p, ms(h.value_at_quantile(p / 100.0)))).collect()
}

/// Encodes a histogram as base64 of its V2 deflate serialisation.
pub fn encode(h: &Hist) -> Result<String, LoadError> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut buf).map_err(|e| LoadError::Report(format!("histogram: {e:?}")))?;
    Ok(base64_encode(&buf))
}

/// Decodes [`encode`]'s output.
pub fn decode(s: &str) -> Result<Hist, LoadError> {
    let bytes = base64_decode(s).ok_or_else(|| LoadError::Report("histogram: invalid base64".into()))?;
    let mut h: Hist = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| LoadError::Report(format!("histogram: {e:?}")))?;
    h.auto(true);
    Ok(h)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional, no whitespace); `None` when malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = ALPHABET.iter().position(|a| a == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &[0, 255, 128, 7, 9]] {
            let enc = base64_encode(data);
            assert_eq!(base64_decode(&enc).as_deref(), Some(data), "{enc}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert!(base64_decode("Zm9v!").is_none());
    }

    #[test]
    fn histograms_round_trip() {
        let mut h = precise();
        for v in [1u64, 50, 900, 1_234, 55_555, 9_000_000] {
            record(&mut h, v);
        }
        let back = decode(&encode(&h).expect("encodes")).expect("decodes");
        assert_eq!(back, h);
        assert_eq!(LatencySummary::of(&back).max, LatencySummary::of(&h).max);
        let mut bigger = back;
        record(&mut bigger, 3_600_000_000);
        assert_eq!(bigger.len(), 7);
    }
}
