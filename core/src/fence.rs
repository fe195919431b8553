//! Fencing: the fence inside a grant token (parsed by the protocol), and
//! the downstream guard.

use std::collections::HashMap;

// Token parsing is the protocol's; the guard is the downstream side.
pub use crate::protocol::fence_from_token;

/// A fence refused by [`FenceGuard::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleFence {
    /// The refused fence.
    pub fence: u64,
    /// The highest fence accepted for the key.
    pub highest: u64,
}

/// Remembers the highest fence accepted per key; refuses any fence not above it.
#[derive(Debug, Default)]
pub struct FenceGuard {
    highest: HashMap<String, u64>,
}

impl FenceGuard {
    /// An empty guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `fence` for `key` if it is strictly above every fence accepted
    /// for `key` before, and remembers it.
    pub fn check(&mut self, key: &str, fence: u64) -> Result<(), StaleFence> {
        match self.highest.get_mut(key) {
            Some(highest) if fence <= *highest => Err(StaleFence {
                fence,
                highest: *highest,
            }),
            Some(highest) => {
                *highest = fence;
                Ok(())
            }
            None => {
                self.highest.insert(key.to_owned(), fence);
                Ok(())
            }
        }
    }

    /// The highest fence accepted for `key`.
    pub fn highest(&self, key: &str) -> Option<u64> {
        self.highest.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Error;

    #[test]
    fn parses_the_big_endian_prefix() {
        assert_eq!(
            fence_from_token("00000000000000ff0123456789abcdef"),
            Ok(255)
        );
        assert_eq!(
            fence_from_token("ffffffffffffffff0000000000000000"),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn rejects_malformed_tokens_without_echoing_them() {
        for bad in [
            "",
            "abc",
            "00000000000000FF0123456789abcdef",
            "00000000000000ff0123456789abcdeg",
            "00000000000000ff0123456789abcdef0",
            "é0000000000000ff0123456789abcde",
        ] {
            match fence_from_token(bad) {
                Err(Error::InvalidArgument(msg)) => assert!(bad.is_empty() || !msg.contains(bad)),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn guard_accepts_only_rising_fences_per_key() {
        let mut guard = FenceGuard::new();
        assert_eq!(guard.highest("a"), None);
        assert_eq!(guard.check("a", 5), Ok(()));
        assert_eq!(
            guard.check("a", 5),
            Err(StaleFence {
                fence: 5,
                highest: 5
            })
        );
        assert_eq!(
            guard.check("a", 4),
            Err(StaleFence {
                fence: 4,
                highest: 5
            })
        );
        assert_eq!(guard.check("b", 1), Ok(()), "keys are independent");
        assert_eq!(guard.check("a", 6), Ok(()));
        assert_eq!(guard.highest("a"), Some(6));
        assert_eq!(guard.highest("b"), Some(1));
    }
}
