//! Reply bytes, split into lines by the line reader and decoded as every
//! kind of reply: never a panic, and an error never quotes a token whole.
#![no_main]

use dflockd_core::protocol::reply::{
    decode_enqueue, decode_grant, decode_ok, decode_renew, ErrorContext,
};
use dflockd_core::protocol::{Error, LineReader};
use libfuzzer_sys::fuzz_target;

/// The longest run of hex digits in `text`.
fn longest_hex_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// An error may quote a reply, but never a token: no run of 16 hex digits
/// (a token has 32) survives into what it shows.
fn check<T>(result: Result<T, Error>) {
    if let Err(e) = result {
        let shown = format!("{e} {e:?}");
        assert!(
            longest_hex_run(&shown) < 16,
            "an error repeats a token-like run: {shown:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the reader's cap and how the bytes arrive.
    let Some((&how, bytes)) = data.split_first() else {
        return;
    };
    let cap = 64 + usize::from(how) * 8;
    let chunk = usize::from(how % 7) + 1;
    // One reader per reply, as a connection reads one reply per request.
    for reply in bytes.split_inclusive(|&b| b == b'\n') {
        let mut reader = LineReader::new(cap);
        for piece in reply.chunks(chunk) {
            reader.push(piece);
            match reader.take_line() {
                Ok(Some(line)) => {
                    check(decode_grant(&line));
                    check(decode_enqueue(&line));
                    check(decode_renew(&line));
                    check(decode_ok(&line, ErrorContext::Token));
                    check(decode_ok(&line, ErrorContext::Ping));
                    check(decode_ok(&line, ErrorContext::Request));
                }
                Ok(None) => {}
                // Over-long or not UTF-8: a protocol error, the reply is done.
                Err(_) => break,
            }
        }
    }
});
