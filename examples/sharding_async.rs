//! `sharding`, async: each key routes to one of several servers by CRC-32,
//! as in the Go, Python and TypeScript clients.

#[path = "support.rs"]
mod support;
#[path = "support_async.rs"]
mod support_async;

fn main() -> Result<(), dflockd_host::Error> {
    support_async::run(async {
        let rt = support::runtime();
        let servers = support::servers();
        for key in ["user:42:profile", "orders", "row:42"] {
            let lock = rt.lock(key).servers(servers.clone()).build_async().await?;
            let index = lock.server_index() as usize;
            let (host, port) = &servers[index];
            let outcome = match lock.acquire().await? {
                Some(guard) => format!("released = {}", guard.release().await?),
                None => "timed out".to_string(),
            };
            println!("{key:>16} -> server {index} ({host}:{port}); {outcome}");
        }
        Ok(())
    })
}
