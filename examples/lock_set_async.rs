//! `lock_set`, async: six transfers on tokio, each holding both of its
//! accounts or neither.

#[path = "support.rs"]
mod support;
#[path = "support_async.rs"]
mod support_async;

fn main() {
    support_async::run(async {
        let rt = support::runtime();
        let transfers = [
            ("acct:1", "acct:2"),
            ("acct:2", "acct:1"),
            ("acct:2", "acct:3"),
            ("acct:3", "acct:1"),
            ("acct:1", "acct:3"),
            ("acct:3", "acct:2"),
        ];
        let mut workers = Vec::new();
        for (n, (from, to)) in transfers.into_iter().enumerate() {
            let rt = rt.clone();
            workers.push(tokio::spawn(async move {
                let accounts = support::lock_set(&rt, &[from, to])
                    .acquire_timeout_s(30)
                    .build_async()
                    .await?;
                if let Some(both) = accounts.acquire().await? {
                    let fences: Vec<u64> = accounts.grants().iter().map(|g| g.fence).collect();
                    println!(
                        "transfer ({n}) {from} -> {to}: holding {:?}, fences {fences:?}",
                        accounts.keys()
                    );
                    support_async::sleep_s(0.5).await;
                    both.release().await?;
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
