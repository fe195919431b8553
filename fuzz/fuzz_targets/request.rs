//! Requests from arbitrary arguments: each either encodes to exactly three
//! protocol lines with nothing forged into them, or is refused as an
//! invalid argument before a byte is produced.
#![no_main]

use std::num::NonZeroU32;

use arbitrary::Arbitrary;
use dflockd_core::protocol::{Error, Kind, Request, Space, MAX_AUTH_TOKEN, MAX_LINE};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Args {
    which: u8,
    semaphore: bool,
    limit: u32,
    key: String,
    token: String,
    seconds: u64,
    lease: Option<u64>,
}

fuzz_target!(|a: Args| {
    let space = if a.semaphore {
        Space::Semaphore
    } else {
        Space::Lock
    };
    let kind = match (a.semaphore, NonZeroU32::new(a.limit)) {
        (true, Some(limit)) => Kind::Semaphore { limit },
        _ => Kind::Lock,
    };
    let (key, token) = (a.key.as_str(), a.token.as_str());
    let request = match a.which % 8 {
        0 => Request::Auth { token },
        1 => Request::Acquire {
            kind,
            key,
            timeout_s: a.seconds,
            lease_ttl_s: a.lease,
        },
        2 => Request::Release { space, key, token },
        3 => Request::Renew {
            space,
            key,
            token,
            lease_ttl_s: a.lease,
        },
        4 => Request::Enqueue {
            kind,
            key,
            lease_ttl_s: a.lease,
        },
        5 => Request::Wait {
            space,
            key,
            timeout_s: a.seconds,
        },
        6 => Request::Ping,
        _ => Request::Stats,
    };
    let mut out = Vec::new();
    match request.encode(&mut out) {
        Err(Error::InvalidArgument(why)) => {
            assert!(out.is_empty(), "bytes produced before refusing: {why}");
            // The refusal names the field, never the value (it may be a
            // secret): a token-like one must not appear in it.
            if token.len() >= 24 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
                assert!(!why.contains(token), "a refusal repeats the token");
            }
        }
        Err(other) => panic!("a refusal that is not InvalidArgument: {other:?}"),
        Ok(()) => {
            let text = std::str::from_utf8(&out).expect("UTF-8 in, UTF-8 out");
            let lines: Vec<&str> = text.split_terminator('\n').collect();
            assert_eq!(lines.len(), 3, "three lines: {lines:?}");
            assert!(text.ends_with('\n'));
            let cap = if matches!(request, Request::Auth { .. }) {
                MAX_AUTH_TOKEN
            } else {
                MAX_LINE
            };
            for line in &lines {
                assert!(line.len() <= cap, "a line over the server's cap");
                assert!(
                    !line.chars().any(|c| c.is_control()),
                    "a control character on the wire: {line:?}"
                );
            }
            if let Request::Acquire { .. }
            | Request::Release { .. }
            | Request::Renew { .. }
            | Request::Enqueue { .. }
            | Request::Wait { .. } = request
            {
                assert_eq!(lines[1], key, "the key line is the key, whole");
            }
        }
    }
});
