//! What the async examples add to `support.rs`: a tokio runtime and a
//! scaled async sleep.

#![allow(dead_code)]

use std::time::Duration;

/// Runs `main` on a multi-thread tokio runtime.
pub fn run<F: std::future::Future>(main: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(main)
}

/// Sleeps `seconds` × `DFLOCKD_DEMO_SCALE` without blocking the runtime.
pub async fn sleep_s(seconds: f64) -> Duration {
    let scale: f64 = std::env::var("DFLOCKD_DEMO_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let slept = Duration::from_secs_f64(seconds * scale);
    tokio::time::sleep(slept).await;
    slept
}
