//! The same WIT bindings with async exports, for the tokio API
//! ([`crate::asynchronous`]) and the blocking one (each blocking instance
//! runs them on a current-thread runtime of its own: see `runtime.rs`). wasmtime's `with` does not reach exported
//! interfaces, so these types are distinct from [`crate::raw`]'s.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "client",
    with: { "wasi:io/poll": wasmtime_wasi::p2::bindings::io::poll },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub use exports::dflockd::client::connection::{Enqueued, Stats};
pub use exports::dflockd::client::driver::LeaseLost;
pub use exports::dflockd::client::types::{
    ClientCert, ConnectOptions, EnqueueStatus, Error, Grant, Options, Server, TlsOptions,
};

impl From<crate::raw::TlsOptions> for TlsOptions {
    fn from(t: crate::raw::TlsOptions) -> Self {
        TlsOptions {
            ca_pem: t.ca_pem,
            server_name: t.server_name,
            client_cert: t.client_cert.map(|c| ClientCert {
                cert_chain_pem: c.cert_chain_pem,
                private_key_pem: c.private_key_pem,
            }),
        }
    }
}

impl From<crate::raw::Options> for Options {
    fn from(o: crate::raw::Options) -> Self {
        let tls = o.connect.tls.map(TlsOptions::from);
        Options {
            servers: o
                .servers
                .into_iter()
                .map(|s| Server {
                    host: s.host,
                    port: s.port,
                })
                .collect(),
            connect: ConnectOptions {
                connect_timeout_ms: o.connect.connect_timeout_ms,
                auth_token: o.connect.auth_token,
                tls,
            },
            acquire_timeout_s: o.acquire_timeout_s,
            lease_ttl_s: o.lease_ttl_s,
            renew_ratio: o.renew_ratio,
            server_index: o.server_index,
        }
    }
}
