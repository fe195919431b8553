//! Server stats over the low-level connection.

#[path = "support.rs"]
mod support;

fn main() -> Result<(), dflockd_host::Error> {
    let rt = support::runtime();
    let (host, port) = support::servers().remove(0);
    let mut conn = rt.connect(&host, port, None)?;
    let stats = conn.stats()?;
    println!("connections: {}", stats.connections);
    println!("locks: {:?}", stats.locks);
    println!("semaphores: {:?}", stats.semaphores);
    println!(
        "idle locks: {}, idle semaphores: {}",
        stats.idle_locks.len(),
        stats.idle_semaphores.len()
    );
    Ok(())
}
