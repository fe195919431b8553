//! The sans-IO session driven by arbitrary events: commands, connect
//! results, reply lines (any bytes), disconnects and time, each checked by
//! the invariants the property test checks too
//! (`dflockd_core::session::invariants`): no panic; never two requests on
//! the wire; never held past the lease end it knows or after its loss was
//! reported; each lost grant reported once.
#![no_main]

use arbitrary::Arbitrary;
use dflockd_core::session::invariants::{Checked, Event as Checks};
use dflockd_core::session::Session;
use dflockd_core::settings::{RawOptions, Settings};
use dflockd_core::Instant;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Event {
    Acquire,
    Enqueue,
    Wait(Option<u16>),
    Release,
    Renew,
    Close,
    Connected(bool),
    /// A line the server "sent": arbitrary text, or a grant of this lease.
    Line(String),
    Grant(u8),
    Disconnected,
    /// Milliseconds pass.
    Advance(u16),
    ToDeadline,
}

#[derive(Debug, Arbitrary)]
struct Input {
    semaphore: bool,
    lease: Option<u8>,
    jitter: u64,
    events: Vec<Event>,
}

const MS: u64 = 1_000_000;

fuzz_target!(|input: Input| {
    let raw = RawOptions {
        lease_ttl_s: input.lease.map(|l| u64::from(l).max(1)),
        ..Default::default()
    };
    let Ok(settings) = Settings::new("k", input.semaphore.then_some(3), raw) else {
        return;
    };
    let start = Instant::from_nanos(1_000 * MS);
    let mut checked = Checked::new(Session::new(settings, input.jitter), start);
    let mut fences = 0u64;
    for event in input.events {
        let event = match event {
            Event::Acquire => Checks::Acquire,
            Event::Enqueue => Checks::Enqueue,
            Event::Wait(t) => Checks::Wait(t.map(u64::from)),
            Event::Release => Checks::Release,
            Event::Renew => Checks::Renew,
            Event::Close => Checks::Close,
            Event::Connected(ok) => Checks::Connected(ok),
            Event::Line(line) => Checks::Line(line),
            Event::Grant(lease) => {
                fences += 1;
                Checks::Line(format!("ok {fences:016x}0123456789abcdef {lease}"))
            }
            Event::Disconnected => Checks::Disconnected,
            Event::Advance(ms) => Checks::Advance(u64::from(ms)),
            Event::ToDeadline => Checks::ToDeadline,
        };
        if let Err(broken) = checked.apply(event) {
            panic!("{broken}");
        }
    }
});
