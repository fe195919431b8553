//! TLS in the rustls sans-IO style: [`TlsSession`] turns plaintext into
//! records and records back into plaintext; the transport only moves bytes.
//! Pure (no WASI), so it is unit-tested natively against an in-process
//! rustls server.
//!
//! Verification is always on: trust roots are the Mozilla set
//! (webpki-roots) or the caller's PEM bundle, the name checked is the
//! server-name override or the host dialled (an IP literal as an IP SAN).

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

use rustls::client::ClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};

use dflockd_core::protocol::Error;
pub use dflockd_core::settings::{ClientCert, TlsOptions, Trust};

/// Checked TLS settings: the rustls configuration, built once.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsSettings {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl Eq for TlsSettings {}

fn invalid(why: impl Into<String>) -> Error {
    Error::InvalidArgument(why.into())
}

impl TlsSettings {
    /// Parses the trust roots, the server name and the client certificate:
    /// anything malformed is `invalid-argument`, before any connection.
    pub fn new(options: TlsOptions) -> Result<Self, Error> {
        let roots = match &options.trust {
            Trust::MozillaRoots => {
                RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
            }
            Trust::Pem(pem) => pem_roots(pem)?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("no usable TLS version: {e}")))?
            .with_root_certificates(roots);
        let config = match options.client_cert {
            None => builder.with_no_client_auth(),
            Some(cert) => {
                let chain = CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| invalid("the client certificate chain is not valid PEM"))?;
                if chain.is_empty() {
                    return Err(invalid("the client certificate PEM holds no certificate"));
                }
                let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
                    .map_err(|_| invalid("the client key is not a PEM private key"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| invalid(format!("the client certificate or key: {e}")))?
            }
        };
        let server_name = options.server_name.map(server_name).transpose()?;
        Ok(TlsSettings {
            config: Arc::new(config),
            server_name,
        })
    }

    /// A session for a connection to `host` (checked against the
    /// certificate unless a server name was set).
    pub fn session(&self, host: &str) -> Result<TlsSession, Error> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                let bare = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                server_name(bare.to_owned())?
            }
        };
        let conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| Error::Tls(format!("starting TLS: {e}")))?;
        Ok(TlsSession { conn })
    }
}

fn server_name(name: String) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(name)
        .map_err(|_| invalid("the TLS server name is neither a DNS name nor an IP address"))
}

fn pem_roots(pem: &str) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|_| invalid("the trusted CA PEM is not valid PEM"))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("a trusted CA certificate cannot be used: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("the trusted CA PEM holds no certificate"));
    }
    Ok(roots)
}

/// Whether the peer is still there after [`TlsSession::handle_incoming`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// The session goes on.
    Open,
    /// The server closed the session (close_notify).
    Closed,
}

/// One TLS client session. Call order: after the TCP connect, send
/// [`take_outgoing`](Self::take_outgoing) and feed what arrives to
/// [`handle_incoming`](Self::handle_incoming) until
/// [`is_handshaking`](Self::is_handshaking) is false; then
/// [`write_plain`](Self::write_plain) + `take_outgoing` for each request.
pub struct TlsSession {
    conn: ClientConnection,
}

impl TlsSession {
    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Encrypts `plain` (queued until the handshake is done).
    pub fn write_plain(&mut self, plain: &[u8]) -> Result<(), Error> {
        self.conn
            .writer()
            .write_all(plain)
            .map_err(|e| Error::Tls(format!("encrypting: {e}")))
    }

    /// The records to send now (handshake messages, alerts, data); may be empty.
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            if self.conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }

    /// Takes records read from the socket and appends the plaintext they
    /// carry to `plain`. A TLS failure (bad certificate, a peer that does
    /// not speak TLS) is `tls` naming the reason; the alert rustls queued
    /// for the server is in [`take_outgoing`](Self::take_outgoing).
    pub fn handle_incoming(
        &mut self,
        mut records: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<Incoming, Error> {
        while !records.is_empty() {
            self.conn
                .read_tls(&mut records)
                .map_err(|e| Error::Tls(format!("reading TLS records: {e}")))?;
            let state = self.conn.process_new_packets().map_err(tls_error)?;
            let mut chunk = [0u8; 4096];
            loop {
                match self.conn.reader().read(&mut chunk) {
                    Ok(0) => return Ok(Incoming::Closed),
                    Ok(n) => plain.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(Error::Tls(format!("decrypting: {e}"))),
                }
            }
            if state.peer_has_closed() {
                return Ok(Incoming::Closed);
            }
        }
        Ok(Incoming::Open)
    }
}

/// A rustls failure as a `tls` error that says what to do about it.
fn tls_error(e: rustls::Error) -> Error {
    use rustls::Error as E;
    let why = match &e {
        E::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted CA (unknown issuer)".to_string()
        }
        E::InvalidCertificate(CertificateError::BadSignature) => {
            "the server's certificate does not verify against the trusted CA of its issuer's \
             name (bad signature: another CA of the same name?)"
                .to_string()
        }
        E::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's certificate has expired".to_string(),
        E::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "the server's certificate is not valid yet".to_string(),
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is not valid for the name dialled (set server-name?)"
            .to_string(),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            format!("the server does not speak TLS (a plain dflockd?): {e}")
        }
        E::AlertReceived(alert) => format!("the server refused the TLS session: alert {alert:?}"),
        other => other.to_string(),
    };
    Error::Tls(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::{ServerConfig, ServerConnection};

    /// A CA and a leaf it signed for `names`, valid from `not_before` to `not_after` (years).
    struct Pki {
        ca_pem: String,
        leaf_der: CertificateDer<'static>,
        leaf_key: Vec<u8>,
    }

    fn pki(ca_name: &str, names: &[&str], years: (i32, i32)) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        leaf.not_before = rcgen::date_time_ymd(2000 + years.0, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2000 + years.1, 1, 1);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            leaf_der: leaf_cert.der().clone(),
            leaf_key: leaf_key.serialize_der(),
        }
    }

    fn server(pki: &Pki) -> ServerConnection {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![pki.leaf_der.clone()],
                PrivatePkcs8KeyDer::from(pki.leaf_key.clone()).into(),
            )
            .unwrap();
        ServerConnection::new(Arc::new(config)).unwrap()
    }

    fn client(ca_pem: &str, server_name: Option<&str>, host: &str) -> TlsSession {
        TlsSettings::new(TlsOptions {
            trust: Trust::Pem(ca_pem.into()),
            server_name: server_name.map(Into::into),
            client_cert: None,
        })
        .unwrap()
        .session(host)
        .unwrap()
    }

    /// Moves records both ways until the client's handshake ends or fails.
    fn pump(client: &mut TlsSession, server: &mut ServerConnection) -> Result<(), Error> {
        for _ in 0..10 {
            let out = client.take_outgoing();
            server.read_tls(&mut out.as_slice()).unwrap();
            // A server-side failure still queues an alert for the client.
            let _ = server.process_new_packets();
            let mut back = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut back).unwrap();
            }
            client.handle_incoming(&back, &mut Vec::new())?;
            if !client.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not end")
    }

    #[test]
    fn a_trusted_server_serves_lines_both_ways() {
        let pki = pki("CA", &["localhost", "127.0.0.1"], (20, 90));
        for host in ["localhost", "127.0.0.1"] {
            let mut c = client(&pki.ca_pem, None, host);
            let mut s = server(&pki);
            pump(&mut c, &mut s).unwrap();
            c.write_plain(b"stats\n_\n_\n").unwrap();
            s.read_tls(&mut c.take_outgoing().as_slice()).unwrap();
            s.process_new_packets().unwrap();
            let mut request = [0u8; 10];
            s.reader().read_exact(&mut request).unwrap();
            assert_eq!(&request, b"stats\n_\n_\n");
            s.writer().write_all(b"ok {}\n").unwrap();
            let mut records = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut records).unwrap();
            }
            let mut plain = Vec::new();
            assert_eq!(c.handle_incoming(&records, &mut plain), Ok(Incoming::Open));
            assert_eq!(plain, b"ok {}\n");
        }
    }

    fn failure(pki_server: &Pki, ca_pem: &str, name: Option<&str>) -> String {
        let mut c = client(ca_pem, name, "localhost");
        let mut s = server(pki_server);
        match pump(&mut c, &mut s) {
            Err(Error::Tls(why)) => why,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_issuer_wrong_name_and_expiry_are_named() {
        let good = pki("CA", &["localhost"], (20, 90));
        let other = pki("another CA", &["localhost"], (20, 90));
        let twin = pki("CA", &["localhost"], (20, 90));
        let why = failure(&good, &other.ca_pem, None);
        assert!(why.contains("unknown issuer"), "{why}");
        let why = failure(&good, &twin.ca_pem, None);
        assert!(why.contains("bad signature"), "{why}");
        assert!(failure(&good, &good.ca_pem, Some("db.example")).contains("not valid for the name"));
        let expired = pki("CA", &["localhost"], (1, 2));
        assert!(failure(&expired, &expired.ca_pem, None).contains("expired"));
    }

    #[test]
    fn a_plain_answer_is_not_tls() {
        let pki = pki("CA", &["localhost"], (20, 90));
        let mut c = client(&pki.ca_pem, None, "localhost");
        assert!(!c.take_outgoing().is_empty(), "a ClientHello");
        let Err(Error::Tls(why)) = c.handle_incoming(b"error\n", &mut Vec::new()) else {
            panic!("a plain line must fail the handshake")
        };
        assert!(why.contains("does not speak TLS"), "{why}");
        assert!(!c.take_outgoing().is_empty(), "an alert for the server");
    }

    #[test]
    fn malformed_pem_and_names_are_invalid_arguments_and_keys_are_not_printed() {
        let options = |trust, name: Option<&str>, client_cert| TlsOptions {
            trust,
            server_name: name.map(Into::into),
            client_cert,
        };
        let bad = [
            options(Trust::Pem("not a certificate".into()), None, None),
            options(
                Trust::Pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into()),
                None,
                None,
            ),
            options(Trust::MozillaRoots, Some("not a name!"), None),
            options(
                Trust::MozillaRoots,
                None,
                Some(ClientCert {
                    chain_pem: "nothing".into(),
                    key_pem: "SECRET-KEY".into(),
                }),
            ),
        ];
        for o in bad {
            let shown = format!("{o:?}");
            assert!(!shown.contains("SECRET-KEY"), "{shown}");
            assert!(
                matches!(TlsSettings::new(o), Err(Error::InvalidArgument(_))),
                "{shown}"
            );
        }
        assert!(TlsSettings::new(options(Trust::MozillaRoots, None, None)).is_ok());
        assert!(TlsSettings::new(options(Trust::MozillaRoots, Some("10.0.0.1"), None)).is_ok());
    }
}
