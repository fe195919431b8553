//! Two-phase acquisition: join the queue, run your own logic, then wait.

#[path = "support.rs"]
mod support;

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
    let rt = support::runtime();
    let lock = support::lock(&rt, "my-key")
        .acquire_timeout_s(10)
        .lease_ttl_s(20)
        .build()?;
    let status = lock.enqueue()?; // Acquired (fast path) or Queued
    notify_external_system(&status);
    if let Some(guard) = lock.wait(Some(10))? {
        println!("holding my-key, fence {:?}", guard.fence());
        println!("released = {}", guard.release()?);
    } else {
        println!("not granted within 10 s");
    }
    Ok(())
}
