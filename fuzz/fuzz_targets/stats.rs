//! A `stats` reply line: any text decodes to stats or an error, no panic.
#![no_main]

use dflockd_core::protocol::stats::decode_stats;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    let _ = decode_stats(line);
});
