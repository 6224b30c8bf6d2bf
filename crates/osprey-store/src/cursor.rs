//! Keyset-pagination cursors: the `(created_at, id)` of the last post of a
//! page, hex-encoded with a checksum. Opaque to clients (they pass back
//! what they were given) and validated on the way in, so a truncated or
//! hand-edited cursor is a clear 400 instead of a silently wrong page.

use xxhash_rust::xxh3::xxh3_64;

use crate::StoreError;

/// Checksum width in hex digits.
const CHECK: usize = 8;

fn check(payload: &[u8]) -> String {
    format!("{:08x}", xxh3_64(payload) as u32)
}

pub(crate) fn encode(created_at: i64, id: &str) -> String {
    let payload = format!("{created_at}:{id}");
    let mut out: String = payload.bytes().map(|b| format!("{b:02x}")).collect();
    out.push_str(&check(payload.as_bytes()));
    out
}

/// The `(created_at, id)` a cursor stands for.
pub(crate) fn decode(cursor: &str) -> Result<(i64, String), StoreError> {
    let bad = |why: &str| StoreError::BadCursor(format!("malformed cursor: {why}"));
    if cursor.len() <= CHECK || !cursor.len().is_multiple_of(2) || !cursor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("not a cursor this server issued"));
    }
    let (body, sum) = cursor.split_at(cursor.len() - CHECK);
    let payload: Vec<u8> = (0..body.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&body[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("not hex"))?;
    if !check(&payload).eq_ignore_ascii_case(sum) {
        return Err(bad("checksum mismatch"));
    }
    let text = String::from_utf8(payload).map_err(|_| bad("not text"))?;
    let (at, id) = text.split_once(':').ok_or_else(|| bad("no position"))?;
    let at = at.parse().map_err(|_| bad("bad time"))?;
    Ok((at, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let c = encode(1_763_700_000_000, "t3_ab:c");
        assert_eq!(decode(&c).expect("decode"), (1_763_700_000_000, "t3_ab:c".to_string()));
        let mut tampered = c.clone().into_bytes();
        tampered[0] = if tampered[0] == b'3' { b'4' } else { b'3' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        for bad in ["", "not-a-cursor", "abcd", &c[..c.len() - 2], &tampered] {
            assert!(matches!(decode(bad), Err(StoreError::BadCursor(_))), "{bad:?}");
        }
    }
}
