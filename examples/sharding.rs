//! Multi-server sharding: each key routes to one server by CRC-32 of the
//! key, the same server the Go, Python and TypeScript clients pick.

#[path = "support.rs"]
mod support;

fn main() -> Result<(), dflockd_host::Error> {
    let rt = support::runtime();
    let servers = support::servers();
    for key in ["user:42:profile", "orders", "row:42"] {
        let lock = rt.lock(key).servers(servers.clone()).build()?;
        let index = lock.server_index() as usize;
        let (host, port) = &servers[index];
        let outcome = match lock.acquire()? {
            Some(guard) => format!("released = {}", guard.release()?),
            None => "timed out".to_string(),
        };
        println!("{key:>16} -> server {index} ({host}:{port}); {outcome}");
    }
    Ok(())
}
