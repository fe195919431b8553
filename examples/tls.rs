//! TLS (with authentication): the counterpart of the Python client's
//! `SyncDistributedLock("my-key", auth_token=..., ssl_context=ssl.create_default_context())`.
//! The TLS runs inside the component (rustls) and always verifies the server.
//!
//! `DFLOCKD_TLS_CA` = a PEM file of the CA that signed the server's
//! certificate (default: the Mozilla roots, for a certificate from a public
//! CA); `DFLOCKD_AUTH_TOKEN` = the shared secret, if the server wants one.

#[path = "support.rs"]
mod support;

use dflockd_host::Tls;

fn main() -> Result<(), dflockd_host::Error> {
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
    let lock = lock.build()?;
    match lock.acquire()? {
        Some(guard) => {
            println!("acquired over TLS: token {}", support::short(guard.token()));
            println!("released = {}", guard.release()?);
        }
        None => println!("not acquired within the timeout"),
    }
    Ok(())
}
