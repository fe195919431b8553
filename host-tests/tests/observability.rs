//! What a host can watch: `Runtime::counters()` (connects, renewals sent
//! and confirmed with their round trips, leases lost) and the `tracing`
//! events for connect and renewal (the runtime's instance's, so without a
//! key), grant, loss and release (each with its key and fence), never a
//! token. Alone in its binary, so that its
//! subscriber sees only its own events.

use std::sync::{mpsc, Mutex};
use std::time::Duration;

use dflockd_host::Runtime;
use host_tests::eventually;
use host_tests::server::dflockd;

#[test]
fn counters_and_events_follow_a_lease_from_grant_through_renewals_to_its_loss() {
    let logs = host_tests::logs::capture(tracing::Level::DEBUG);
    let mut server = dflockd(&[]);
    // A runtime of its own: its counters are this test's alone.
    let runtime = Runtime::builder()
        .component(host_tests::component_path())
        .build()
        .unwrap();
    assert_eq!(runtime.counters(), dflockd_host::Counters::default());
    let (tx, lost) = mpsc::channel();
    let tx = Mutex::new(tx);
    let lock = runtime
        .lock("observed")
        .server(server.addr.ip().to_string(), server.addr.port())
        .lease_ttl_s(2)
        .on_lost(move |l| {
            let _ = tx.lock().unwrap().send(l.clone());
        })
        .build()
        .unwrap();
    assert_eq!(
        lock.acquire().unwrap().expect("granted").release(),
        Ok(true)
    );
    assert_eq!(
        runtime.counters().connects,
        1,
        "counted by the time the call that connected returns"
    );
    let guard = lock.acquire().unwrap().expect("granted");
    let (token, fence) = (guard.token().unwrap(), guard.fence().unwrap());
    std::mem::forget(guard);
    let renewed = eventually("two renewals confirmed", Duration::from_secs(15), || {
        let c = runtime.counters();
        (c.renewals_confirmed >= 2).then_some(c)
    });
    assert_eq!(renewed.connects, 1);
    assert!(renewed.renewals_sent >= renewed.renewals_confirmed);
    assert!(renewed.renew_latency_ns_max > 0);
    assert!(renewed.renew_latency_ns_mean().unwrap() <= renewed.renew_latency_ns_max);
    assert_eq!(renewed.leases_lost, 0);
    server.kill();
    lost.recv_timeout(Duration::from_secs(10))
        .expect("the loss is reported");
    eventually("the loss is counted", Duration::from_secs(10), || {
        (runtime.counters().leases_lost == 1).then_some(())
    });
    drop(lock);

    let text = logs.text();
    let fence = format!("fence={fence}");
    for (event, with_key, with_fence) in [
        ("connected", false, false),
        ("granted", true, true),
        ("renewed", false, false),
        ("lease lost", true, true),
        ("release", true, false),
    ] {
        let found = text.lines().any(|l| {
            l.contains(event)
                && (!with_key || l.contains("observed"))
                && (!with_fence || l.contains(&fence))
        });
        assert!(
            found,
            "no {event:?} event with the key (and {fence}) in:\n{text}"
        );
    }
    assert!(!text.contains(&token), "a lock token in the log:\n{text}");
}
