//! Bounded concurrency: up to 3 holders run at once; the rest queue in FIFO order.

#[path = "support.rs"]
mod support;

use std::thread;

fn main() {
    let rt = support::runtime();
    let workers: Vec<_> = (0..9)
        .map(|n| {
            let rt = rt.clone();
            thread::spawn(move || -> Result<(), dflockd_host::Error> {
                let sem = support::semaphore(&rt, "pool", 3)
                    .acquire_timeout_s(30)
                    .build()?;
                if let Some(guard) = sem.acquire()? {
                    println!("acquired ({n}): {}", support::short(guard.token()));
                    support::sleep_s(1.0);
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
