//! The sans-IO session driven by arbitrary events: commands, connect
//! results, reply lines (any bytes), disconnects and time. Properties: no
//! panic; never two requests on the wire; never held past the lease end it
//! knows or after its loss was reported; each lost grant reported once.
#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use dflockd_core::session::{Action, Session};
use dflockd_core::settings::{RawOptions, Settings};
use dflockd_core::Error;
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
    let mut s = Session::new(settings, input.jitter);
    let (mut now, mut fences) = (1_000 * MS, 0u64);
    let (mut connecting, mut on_wire) = (false, 0u32);
    let mut reported = HashSet::new();
    let mut last_token = String::new();
    for event in input.events {
        let _ = match event {
            Event::Acquire => s.acquire(now),
            Event::Enqueue => s.enqueue(now),
            Event::Wait(t) => s.wait(now, t.map(u64::from)),
            Event::Release => s.release(now),
            Event::Renew => s.renew(now),
            Event::Close => Ok(s.close()),
            Event::Connected(ok) if connecting => {
                connecting = false;
                if ok {
                    s.handle_connected(now);
                } else {
                    s.handle_connect_failed(Error::Connection("refused".into()));
                }
                Ok(())
            }
            Event::Connected(_) => Ok(()),
            Event::Line(line) => {
                s.handle_line(now, &line);
                on_wire = on_wire.saturating_sub(1);
                Ok(())
            }
            Event::Grant(lease) => {
                fences += 1;
                s.handle_line(now, &format!("ok {fences:016x}0123456789abcdef {lease}"));
                on_wire = on_wire.saturating_sub(1);
                Ok(())
            }
            Event::Disconnected => {
                Ok(s.handle_disconnected(now, Error::Connection("reset".into())))
            }
            Event::Advance(ms) => {
                now += u64::from(ms) * MS;
                Ok(s.handle_timeout(now))
            }
            Event::ToDeadline => {
                if let Some(at) = s.poll_timeout() {
                    assert_ne!(at, u64::MAX, "an endless deadline");
                    now = now.max(at);
                }
                Ok(s.handle_timeout(now))
            }
        };
        while let Some(action) = s.poll_action() {
            match action {
                Action::Connect => connecting = true,
                Action::Send(frame) => {
                    assert_eq!(frame.iter().filter(|&&b| b == b'\n').count(), 3);
                    on_wire += 1;
                    assert!(on_wire <= 1, "two requests on the wire");
                }
                Action::Disconnect => {
                    on_wire = 0;
                    connecting = false;
                }
            }
        }
        while let Some(lost) = s.poll_lost() {
            assert!(reported.insert(lost.fence), "a loss reported twice");
        }
        if let Some(grant) = s.grant() {
            // Arbitrary lines may grant a fence again: a new grant is new.
            if grant.token != last_token {
                last_token = grant.token.clone();
                reported.remove(&grant.fence);
            }
            assert!(!reported.contains(&grant.fence), "held after its loss");
            assert!(
                now < s.lease_expires_at().unwrap_or(0),
                "held past the lease end"
            );
        }
    }
});
