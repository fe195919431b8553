//! Lock sets: transfers between accounts, each taking both of its accounts
//! or neither. Six workers name the accounts in opposite orders; the set
//! takes them in one order, so no two transfers wait on each other in a cycle.

#[path = "support.rs"]
mod support;

use std::thread;

fn main() {
    let rt = support::runtime();
    let transfers = [
        ("acct:1", "acct:2"),
        ("acct:2", "acct:1"),
        ("acct:2", "acct:3"),
        ("acct:3", "acct:1"),
        ("acct:1", "acct:3"),
        ("acct:3", "acct:2"),
    ];
    let workers: Vec<_> = transfers
        .into_iter()
        .enumerate()
        .map(|(n, (from, to))| {
            let rt = rt.clone();
            thread::spawn(move || -> Result<(), dflockd_host::Error> {
                let accounts = support::lock_set(&rt, &[from, to])
                    .acquire_timeout_s(30)
                    .build()?;
                if let Some(_both) = accounts.acquire()? {
                    let fences: Vec<u64> = accounts.grants().iter().map(|g| g.fence).collect();
                    println!(
                        "transfer ({n}) {from} -> {to}: holding {:?}, fences {fences:?}",
                        accounts.keys()
                    );
                    support::sleep_s(0.5);
                } // both released here
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
