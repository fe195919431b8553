//! `tls`, async: the same lock over TLS (verified; there is no way to
//! turn verification off).

#[path = "support.rs"]
mod support;
#[path = "support_async.rs"]
mod support_async;

use dflockd_host::Tls;

fn main() -> Result<(), dflockd_host::Error> {
    support_async::run(async {
        let rt = support::runtime();
        let tls = match std::env::var("DFLOCKD_TLS_CA") {
            Ok(path) => Tls::ca_pem(
                std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("reading the CA file {path}: {e}")),
            ),
            Err(_) => Tls::mozilla_roots(),
        };
        let mut lock = support::lock(&rt, "my-key").tls(tls);
        if let Ok(token) = std::env::var("DFLOCKD_AUTH_TOKEN") {
            lock = lock.auth_token(token);
        }
        let lock = lock.build_async().await?;
        match lock.acquire().await? {
            Some(guard) => {
                println!("acquired over TLS: token {}", support::short(guard.token()));
                println!("released = {}", guard.release().await?);
            }
            None => println!("not acquired within the timeout"),
        }
        Ok(())
    })
}
