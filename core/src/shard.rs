//! Key routing: the formula shared by the Go, Python and TypeScript clients.

/// `crc32_ieee(utf8(key)) % n`, or `None` when `n` is 0.
pub fn shard_index(key: &str, n: u32) -> Option<u32> {
    crc32fast::hash(key.as_bytes()).checked_rem(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_crc32_ieee_formula() {
        // crc32("123456789") is the IEEE check value 0xCBF43926.
        assert_eq!(shard_index("123456789", u32::MAX), Some(0xCBF4_3926));
        assert_eq!(shard_index("123456789", 3), Some(0xCBF4_3926 % 3));
        assert_eq!(shard_index("", 5), Some(0));
    }

    #[test]
    fn zero_servers_is_none() {
        assert_eq!(shard_index("k", 0), None);
    }

    #[test]
    fn same_key_same_server() {
        for key in ["user:42:profile", "a", "ключ"] {
            assert_eq!(shard_index(key, 3), shard_index(key, 3));
            assert!(shard_index(key, 3).unwrap() < 3);
        }
    }
}
