//! `stats`, async: the server's tables through the low-level connection.

#[path = "support.rs"]
mod support;
#[path = "support_async.rs"]
mod support_async;

fn main() -> Result<(), dflockd_host::Error> {
    support_async::run(async {
        let rt = support::runtime();
        let (host, port) = support::servers().remove(0);
        let mut conn = rt.connect_async(&host, port, None).await?;
        let stats = conn.stats().await?;
        println!("connections: {}", stats.connections);
        println!("locks: {:?}", stats.locks);
        println!("semaphores: {:?}", stats.semaphores);
        println!(
            "idle locks: {}, idle semaphores: {}",
            stats.idle_locks.len(),
            stats.idle_semaphores.len()
        );
        Ok(())
    })
}
