//! Grant tokens: 32 lowercase hex characters either way. Dialect v1: all
//! random. Dialect v2: the first 16 are a big-endian u64 fence that rises
//! on every grant of the process (seeded from the wall clock's Unix
//! nanoseconds at start, so it keeps rising across restarts on a clock that
//! does not go back), the last 16 random.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::Dialect;

/// Where tokens come from: one per table.
pub struct Tokens {
    /// The last fence issued (v2), `None` for random tokens (v1).
    fence: Option<u64>,
    random: Random,
}

impl Tokens {
    /// A token source for `dialect`.
    pub fn new(dialect: Dialect) -> Tokens {
        let fence = match dialect {
            Dialect::V1 => None,
            Dialect::V2 => Some(unix_nanos()),
        };
        Tokens {
            fence,
            random: Random::default(),
        }
    }

    /// The next token.
    pub fn next(&mut self) -> String {
        match &mut self.fence {
            None => format!("{:016x}{:016x}", self.random.u64(), self.random.u64()),
            Some(fence) => {
                *fence = fence.wrapping_add(1);
                format!("{:016x}{:016x}", *fence, self.random.u64())
            }
        }
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Random bytes from the OS, fetched 4 KiB at a time (one system call per
/// 256 tokens, as dflockd does).
struct Random {
    buf: [u8; 4096],
    pos: usize,
}

impl Default for Random {
    fn default() -> Random {
        Random {
            buf: [0; 4096],
            pos: 4096,
        }
    }
}

impl Random {
    fn u64(&mut self) -> u64 {
        if self.pos + 8 > self.buf.len() {
            // The OS's random source failing is not something a test server
            // can go on from.
            getrandom::fill(&mut self.buf).expect("the OS random source failed");
            self.pos = 0;
        }
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        u64::from_be_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_fences_rise_and_v1_tokens_are_random_hex() {
        let mut v2 = Tokens::new(Dialect::V2);
        let fences: Vec<u64> = (0..1000)
            .map(|_| u64::from_str_radix(&v2.next()[..16], 16).unwrap())
            .collect();
        assert!(fences.windows(2).all(|w| w[1] == w[0] + 1));
        assert!(
            fences[0] > 1_700_000_000_000_000_000,
            "seeded from the wall clock"
        );
        let mut v1 = Tokens::new(Dialect::V1);
        let a = v1.next();
        let b = v1.next();
        assert_ne!(a, b);
        for t in [a, b] {
            assert_eq!(t.len(), 32);
            assert!(t.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        }
    }
}
