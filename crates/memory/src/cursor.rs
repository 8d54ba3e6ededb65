//! Paging cursors: an offset into one search's ranking plus a signature of that search, so a
//! cursor handed to a different search is refused instead of returning a wrong page.

use orchestra_protocol::memory::MemorySearchParams;

use crate::MemoryError;

/// FNV-1a 64: stable across Rust versions and processes, unlike `DefaultHasher`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// What identifies a search for paging (not `limit`, `budgetTokens` or `detail`: a caller
/// may change those between pages).
pub(crate) fn signature(params: &MemorySearchParams) -> u64 {
    let identity = serde_json::json!([
        params.query,
        params.scopes,
        params.kinds,
        params.tags,
        params.include_superseded,
        params.include_retracted
    ]);
    fnv1a(identity.to_string().as_bytes())
}

pub(crate) fn encode(offset: usize, signature: u64) -> String {
    format!("c1.{offset}.{signature:016x}")
}

pub(crate) fn decode(cursor: &str, signature: u64) -> Result<usize, MemoryError> {
    let bad = || MemoryError::BadCursor(cursor.to_owned());
    let mut parts = cursor.split('.');
    let (Some("c1"), Some(offset), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let offset: usize = offset.parse().map_err(|_| bad())?;
    let sig = u64::from_str_radix(sig, 16).map_err(|_| bad())?;
    if sig != signature || offset > 100_000 {
        return Err(bad());
    }
    Ok(offset)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_tied_to_its_search() {
        let a = MemorySearchParams {
            query: "pool".into(),
            ..Default::default()
        };
        let b = MemorySearchParams {
            query: "other".into(),
            ..Default::default()
        };
        let cursor = encode(7, signature(&a));
        assert_eq!(decode(&cursor, signature(&a)).unwrap(), 7);
        assert!(decode(&cursor, signature(&b)).is_err());
        assert!(decode("garbage", signature(&a)).is_err());
    }
}
