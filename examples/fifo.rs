//! FIFO ordering: workers competing for one key are granted in queue order.

#[path = "support.rs"]
mod support;

use std::thread;

fn main() {
    let rt = support::runtime();
    let workers: Vec<_> = (0..9)
        .map(|n| {
            let rt = rt.clone();
            thread::spawn(move || -> Result<(), dflockd_host::Error> {
                let lock = support::lock(&rt, "foo").acquire_timeout_s(30).build()?;
                if let Some(guard) = lock.acquire()? {
                    println!("acquired ({n}): {}", support::short(guard.token()));
                    support::sleep_s(0.5);
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        if let Err(e) = worker.join().expect("worker panicked") {
            eprintln!("worker failed: {e}");
            std::process::exit(1);
        }
    }
}
