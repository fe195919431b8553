//! A mutual-TLS proxy in front of a dflockd server, named as a stand-in:
//! dflockd itself never asks for a client certificate, so this plays the
//! TLS-terminating proxy users put in front of it. It demands a client
//! certificate signed by the given CA, then relays requests (three lines)
//! and replies (one line) to the real server, in lock step.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use crate::certs::ServerCert;

/// A listening proxy; it stops with the test process.
pub struct MtlsProxy {
    /// Where clients connect (TLS, client certificate required).
    pub addr: SocketAddr,
}

/// Serves TLS with `cert`, requires client certificates from `client_ca_pem`,
/// and relays to the plain dflockd at `upstream`.
pub fn start(cert: &ServerCert, client_ca_pem: &str, upstream: SocketAddr) -> MtlsProxy {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
        roots.add(ca.expect("client CA PEM")).expect("client CA");
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("client verifier");
    let chain = CertificateDer::pem_file_iter(&cert.cert)
        .expect("server certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate PEM");
    let key = PrivateKeyDer::from_pem_file(&cert.key).expect("server key");
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let config = config.clone();
            thread::spawn(move || relay(config, client, upstream));
        }
    });
    MtlsProxy { addr }
}

/// One client: TLS in, plain out, until either side goes.
fn relay(config: Arc<ServerConfig>, client: TcpStream, upstream: SocketAddr) -> Option<()> {
    let tls = StreamOwned::new(ServerConnection::new(config).ok()?, client);
    let mut client = BufReader::new(tls);
    let mut server = BufReader::new(TcpStream::connect(upstream).ok()?);
    loop {
        let mut request = String::new();
        for _ in 0..3 {
            if client.read_line(&mut request).ok()? == 0 {
                return None;
            }
        }
        server.get_mut().write_all(request.as_bytes()).ok()?;
        let mut reply = String::new();
        if server.read_line(&mut reply).ok()? == 0 {
            return None;
        }
        client.get_mut().write_all(reply.as_bytes()).ok()?;
        client.get_mut().flush().ok()?;
    }
}
