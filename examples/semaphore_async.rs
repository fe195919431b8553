//! `semaphore`, async: nine tasks share a pool of 3 slots.

#[path = "support.rs"]
mod support;
#[path = "support_async.rs"]
mod support_async;

fn main() {
    support_async::run(async {
        let rt = support::runtime();
        let mut workers = Vec::new();
        for n in 0..9 {
            let rt = rt.clone();
            workers.push(tokio::spawn(async move {
                let sem = support::semaphore(&rt, "pool", 3)
                    .acquire_timeout_s(30)
                    .build_async()
                    .await?;
                if let Some(guard) = sem.acquire().await? {
                    println!("acquired ({n}): {}", support::short(guard.token()));
                    support_async::sleep_s(1.0).await;
                    guard.release().await?;
                }
                Ok::<_, dflockd_host::Error>(())
            }));
        }
        for worker in workers {
            if let Err(e) = worker.await.expect("worker panicked") {
                eprintln!("worker failed: {e}");
                std::process::exit(1);
            }
        }
    })
}
