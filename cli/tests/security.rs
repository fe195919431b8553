//! `dflock` with an auth token (from a file, never a flag) and with TLS:
//! a private CA, a client certificate, and the errors when they are wrong.

mod common;

use std::path::PathBuf;

use common::{dflock, output};
use host_tests::certs::Pki;
use host_tests::server::{dflockd, dflockd_tls};

const SECRET: &str = "cli-secret-4f1d";

/// `text` in a file of the test's own, under `dir`.
fn file(dir: &Pki, name: &str, text: &str) -> PathBuf {
    let path = dir.ca_file().with_file_name(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn the_auth_token_comes_from_a_file_and_never_shows() {
    let pki = Pki::new("cli-auth"); // only for its folder
    let server = dflockd(&["--auth-token", SECRET]);
    let right = file(&pki, "token", &format!("{SECRET}\n"));
    let right = right.display().to_string();
    let (code, out, err) = output(dflock(
        server.addr,
        &["--auth-token-file", &right, "run", "k", "--", "echo", "ran"],
    ));
    assert_eq!((code, out.as_str()), (0, "ran\n"), "{err}");
    // The same from the environment.
    let mut cmd = dflock(server.addr, &["run", "k", "--", "echo", "ran"]);
    cmd.env("DFLOCKD_AUTH_TOKEN_FILE", &right);
    assert_eq!(output(cmd).0, 0);
    let wrong = file(&pki, "wrong", "not-the-secret-9a7c");
    let wrong = wrong.display().to_string();
    let (code, _, err) = output(dflock(
        server.addr,
        &["--auth-token-file", &wrong, "run", "k", "--", "true"],
    ));
    assert_eq!(code, 125);
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("not-the-secret"), "the token shows: {err}");
    let (code, _, err) = output(dflock(
        server.addr,
        &[
            "--auth-token-file",
            "/no/such/file",
            "run",
            "k",
            "--",
            "true",
        ],
    ));
    assert_eq!(code, 125);
    assert!(err.contains("/no/such/file"), "{err}");
}

#[test]
fn tls_verifies_against_the_given_ca_and_refuses_otherwise() {
    let pki = Pki::new("cli-tls");
    let server = dflockd_tls(&pki.localhost(), &[]);
    let ca = pki.ca_file().display().to_string();
    let (code, out, err) = output(dflock(
        server.addr,
        &["--ca", &ca, "run", "k", "--", "echo", "ran"],
    ));
    assert_eq!((code, out.as_str()), (0, "ran\n"), "{err}");
    let (code, out, err) = output(dflock(server.addr, &["--ca", &ca, "stats", "--json"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"connections\""), "{out}");
    // The Mozilla roots do not know this CA.
    let (code, _, err) = output(dflock(server.addr, &["--tls", "run", "k", "--", "true"]));
    assert_eq!(code, 125);
    assert!(err.contains("TLS") || err.contains("tls"), "{err}");
}

#[test]
fn a_client_certificate_passes_a_mutual_tls_proxy() {
    let pki = Pki::new("cli-mtls");
    let server = dflockd(&[]);
    let proxy = host_tests::mtls::start(&pki.localhost(), &pki.ca_pem, server.addr);
    let ca = pki.ca_file().display().to_string();
    let (chain, key) = pki.client_cert("a client");
    let chain = file(&pki, "client.pem", &chain).display().to_string();
    let key = file(&pki, "client.key", &key).display().to_string();
    let (code, _, err) = output(dflock(
        proxy.addr,
        &[
            "--ca", &ca, "--cert", &chain, "--key", &key, "run", "k", "--", "true",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = output(dflock(proxy.addr, &["--ca", &ca, "run", "k", "--", "true"]));
    assert_eq!(code, 125, "{err}");
    // --cert without --key is a bad argument.
    let (code, _, _) = output(dflock(
        proxy.addr,
        &["--cert", &chain, "run", "k", "--", "true"],
    ));
    assert_eq!(code, 2);
}
