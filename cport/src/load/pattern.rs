//! The bytes of each message, a pure function of (connection, sequence number), so that
//! every echoed byte can be checked without remembering what was sent.

/// One step of SplitMix64: a cheap, well-mixed 64-bit hash.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Appends the `size` bytes of message `seq` of connection `conn` to `out`.
pub fn append(conn: u64, seq: u64, size: usize, out: &mut Vec<u8>) {
    let seed = splitmix64(splitmix64(conn) ^ seq);
    let start = out.len();
    out.reserve(size);
    let mut word = 0u64;
    while out.len() - start < size {
        let bytes = splitmix64(seed.wrapping_add(word)).to_le_bytes();
        let take = (size - (out.len() - start)).min(8);
        out.extend_from_slice(&bytes[..take]);
        word += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(conn: u64, seq: u64, size: usize) -> Vec<u8> {
        let mut v = Vec::new();
        append(conn, seq, size, &mut v);
        v
    }

    #[test]
    fn deterministic_and_sized() {
        assert_eq!(message(3, 9, 100), message(3, 9, 100));
        assert_eq!(message(3, 9, 13).len(), 13);
        assert_eq!(&message(3, 9, 100)[..13], &message(3, 9, 13)[..], "a prefix of a longer one");
        assert!(message(0, 0, 0).is_empty());
    }

    #[test]
    fn differs_by_connection_and_sequence() {
        assert_ne!(message(1, 0, 16), message(2, 0, 16));
        assert_ne!(message(1, 0, 16), message(1, 1, 16));
        // A one-byte message still varies (no all-equal first bytes).
        let firsts: std::collections::HashSet<u8> = (0..64).map(|s| message(0, s, 1)[0]).collect();
        assert!(firsts.len() > 32);
    }

    #[test]
    fn appends_after_existing_bytes() {
        let mut v = vec![0xAA; 5];
        append(7, 7, 10, &mut v);
        assert_eq!(&v[..5], &[0xAA; 5]);
        assert_eq!(&v[5..], &message(7, 7, 10)[..]);
    }
}
