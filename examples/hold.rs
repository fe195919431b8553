//! Hold a lock with auto-renewal: the lease renews in the background for as
//! long as the guard lives; the lock is released when it drops.

#[path = "support.rs"]
mod support;

fn main() -> Result<(), dflockd_host::Error> {
    let rt = support::runtime();
    let lease: u64 = std::env::var("HOLD_LEASE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let lock = support::lock(&rt, "foo")
        .acquire_timeout_s(10)
        .lease_ttl_s(lease)
        .build()?;
    let Some(guard) = lock.acquire()? else {
        println!("not acquired within 10 s");
        return Ok(());
    };
    println!(
        "acquired key={} token={} lease={:?}",
        guard.key(),
        support::short(guard.token()),
        guard.lease_s()
    );
    let held = support::sleep_s(45.0); // the lease renews automatically
    println!(
        "after holding {:.1} s with a {lease} s lease: still held = {}",
        held.as_secs_f64(),
        guard.is_held()
    );
    // What the runtime's instance counted (see `Runtime::counters`).
    let c = rt.counters();
    println!(
        "renewals sent={} confirmed={} mean round trip={:?} us; connects={} lost={}",
        c.renewals_sent,
        c.renewals_confirmed,
        c.renew_latency_ns_mean().map(|ns| ns / 1_000),
        c.connects,
        c.leases_lost
    );
    println!("released = {}", guard.release()?);
    Ok(())
}
