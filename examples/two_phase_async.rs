//! `two_phase`, async: join the queue, run your own logic, then wait.

#[path = "support.rs"]
mod support;
#[path = "support_async.rs"]
mod support_async;

use dflockd_host::Enqueued;

fn notify_external_system(status: &Enqueued) {
    let status = if status.is_queued() {
        "queued"
    } else {
        "acquired"
    };
    println!("enqueue -> {status} (telemetry, notifications... go here)");
}

fn main() -> Result<(), dflockd_host::Error> {
    support_async::run(async {
        let rt = support::runtime();
        let lock = support::lock(&rt, "my-key")
            .acquire_timeout_s(10)
            .lease_ttl_s(20)
            .build_async()
            .await?;
        let status = lock.enqueue().await?; // Acquired (fast path) or Queued
        notify_external_system(&status);
        if let Some(guard) = lock.wait(Some(10)).await? {
            println!("holding my-key, fence {:?}", guard.fence());
            println!("released = {}", guard.release().await?);
        } else {
            println!("not granted within 10 s");
        }
        Ok(())
    })
}
