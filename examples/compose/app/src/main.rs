//! A `wasi:cli` command that imports `dflockd:client` instead of linking a
//! client library: `wac plug` fills the import with the dflockd component.
//! It takes a lock, holds it through more than two leases (renewing it by
//! the driver, as a host would), and releases it. The server is
//! `$DFLOCKD_HOST:$DFLOCKD_PORT` (default 127.0.0.1:6388).

use std::process::exit;

use bindings::dflockd::client::driver;
use bindings::dflockd::client::locks::Lock;
use bindings::dflockd::client::types::{Server, Setting};
use wasip2::clocks::monotonic_clock;

#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "wit"],
        world: "example:compose-app/app",
        with: { "wasi:io/poll@0.2.12": wasip2::io::poll },
        generate_all,
    });
}

const LEASE_S: u64 = 2;

fn main() {
    let host = std::env::var("DFLOCKD_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("DFLOCKD_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(6388);
    let settings = [
        Setting::Servers(vec![Server { host, port }]),
        Setting::LeaseTtlS(LEASE_S),
    ];
    let lock =
        Lock::open("compose-demo", &settings).unwrap_or_else(|e| fail(&format!("open: {e:?}")));
    let grant = match lock.acquire() {
        Ok(Some(grant)) => grant,
        Ok(None) => fail("not granted within the acquire timeout"),
        Err(e) => fail(&format!("acquire: {e:?}")),
    };
    println!("composed app: acquired compose-demo, fence {}", grant.fence);
    hold(2 * LEASE_S + 1);
    if !lock.is_held() {
        fail("the lease was lost while held");
    }
    match lock.release() {
        Ok(true) => println!("composed app: held through {} leases and released", 2),
        other => fail(&format!("release: {other:?}")),
    }
}

/// Waits `seconds`, letting the driver renew the lease whenever it is due.
fn hold(seconds: u64) {
    let until = monotonic_clock::now() + seconds * 1_000_000_000;
    while monotonic_clock::now() < until {
        let wakeup = driver::next_wakeup();
        let timer = monotonic_clock::subscribe_instant(until);
        wasip2::io::poll::poll(&[&wakeup, &timer]);
        if let Some(lost) = driver::drive().first() {
            fail(&format!("lease lost: {:?}", lost.reason));
        }
    }
}

fn fail(why: &str) -> ! {
    eprintln!("composed app: {why}");
    exit(1)
}
