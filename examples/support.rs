//! What every example shares: the runtime and the server list.
//!
//! `DFLOCKD_SERVERS` = `host:port[,host:port...]` (default `127.0.0.1:6388`).
//! `DFLOCKD_DEMO_SCALE` (default 1.0) scales the examples' sleeps, so the
//! demo and the tests can run them quickly.

#![allow(dead_code)]

use std::time::Duration;

use dflockd_host::{AllOf, Builder, Counting, Exclusive, Runtime};

pub fn runtime() -> Runtime {
    Runtime::new()
        .unwrap_or_else(|e| panic!("loading the component: {e} (run `cargo xtask build`)"))
}

pub fn servers() -> Vec<(String, u16)> {
    let list = std::env::var("DFLOCKD_SERVERS").unwrap_or_else(|_| "127.0.0.1:6388".into());
    list.split(',')
        .map(|s| {
            let (host, port) = s
                .rsplit_once(':')
                .expect("DFLOCKD_SERVERS entries are host:port");
            (host.to_string(), port.parse().expect("a port number"))
        })
        .collect()
}

pub fn lock(rt: &Runtime, key: &str) -> Builder<Exclusive> {
    rt.lock(key).servers(servers())
}

pub fn semaphore(rt: &Runtime, key: &str, limit: u32) -> Builder<Counting> {
    rt.semaphore(key, limit).servers(servers())
}

pub fn lock_set(rt: &Runtime, keys: &[&str]) -> Builder<AllOf> {
    rt.lock_set(keys.iter().copied()).servers(servers())
}

/// Sleeps `seconds` × `DFLOCKD_DEMO_SCALE`; returns how long that was.
pub fn sleep_s(seconds: f64) -> Duration {
    let scale: f64 = std::env::var("DFLOCKD_DEMO_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let slept = Duration::from_secs_f64(seconds * scale);
    std::thread::sleep(slept);
    slept
}

/// The first characters of a token: tokens are secrets, never print them whole.
pub fn short(token: Option<String>) -> String {
    token
        .map(|t| format!("{}…", t.get(..8).unwrap_or("")))
        .unwrap_or_else(|| "-".into())
}
