//! What TLS costs through the component, against the test server (or
//! `DFLOCKD_BIN`): connect + handshake, and one acquire+release round trip
//! on an open connection, medians of N samples.
//! Run it in release: `cargo run --release -p host-tests --bin tls_cost`.

use std::time::{Duration, Instant};

use dflockd_host::Tls;
use host_tests::certs::Pki;
use host_tests::runtime;
use host_tests::server::{dflockd, dflockd_tls};

const ROUNDS: usize = 200;

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

/// Connect (a fresh instance each time) and round trip, through the component.
fn component(port: u16, tls: Option<&Tls>) -> (f64, f64) {
    let rt = runtime();
    let mut connects = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let conn = rt
            .connect_with("127.0.0.1", port, None, tls)
            .expect("connect");
        connects.push(started.elapsed());
        drop(conn);
    }
    let mut conn = rt
        .connect_with("127.0.0.1", port, None, tls)
        .expect("connect");
    let mut trips = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let grant = conn
            .lock("tlscost", 10, None)
            .expect("lock")
            .expect("granted");
        conn.unlock("tlscost", &grant.token).expect("unlock");
        trips.push(started.elapsed());
    }
    (median(connects), median(trips))
}

fn main() {
    let pki = Pki::new("cost-ca");
    let tls_server = dflockd_tls(&pki.localhost(), &[]);
    let plain_server = dflockd(&[]);
    let tls = Tls::ca_pem(pki.ca_pem.clone());
    // Warm up: the compile cache, the page cache, the server.
    component(tls_server.addr.port(), Some(&tls));

    let (plain_connect, plain_trip) = component(plain_server.addr.port(), None);
    let (tls_connect, tls_trip) = component(tls_server.addr.port(), Some(&tls));
    println!(
        "{} on loopback, medians of {ROUNDS} (µs)",
        host_tests::server::describe(plain_server.dialect)
    );
    println!("| | connect (+ TLS handshake) | acquire+release round trip |");
    println!("|---|---|---|");
    println!("| component, plain TCP (new instance per connect) | {plain_connect:.0} | {plain_trip:.0} |");
    println!("| component, TLS (new instance per connect) | {tls_connect:.0} | {tls_trip:.0} |");
}
