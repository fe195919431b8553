//! TLS settings for locks, semaphores and connections. The TLS itself runs
//! inside the component (rustls), so it behaves the same on every host.

use crate::raw_async::{ClientCert, TlsSetting};

/// TLS for a connection. Verification is always on; there is no way to
/// turn it off.
///
/// ```no_run
/// # fn main() -> Result<(), dflockd_host::Error> {
/// use dflockd_host::{Runtime, Tls};
/// let ca = std::fs::read_to_string("ca.pem").expect("the CA");
/// let lock = Runtime::new()?
///     .lock("my-key")
///     .server("10.0.0.5", 6388)
///     .tls(Tls::ca_pem(ca))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Tls {
    ca_pem: Option<String>,
    server_name: Option<String>,
    client_cert: Option<(String, String)>,
}

impl Tls {
    /// Verifies the server against the Mozilla root set bundled in the
    /// component: for certificates from a public CA.
    pub fn mozilla_roots() -> Self {
        Tls {
            ca_pem: None,
            server_name: None,
            client_cert: None,
        }
    }

    /// Verifies the server against these PEM CA certificates (a private
    /// CA). PEM with no usable certificate is `Error::InvalidArgument` when
    /// the object is built, before any connection.
    pub fn ca_pem(pem: impl Into<String>) -> Self {
        Tls {
            ca_pem: Some(pem.into()),
            ..Self::mozilla_roots()
        }
    }

    /// The name the server's certificate must carry. Default: the host
    /// dialled (an IP literal is checked against the certificate's IP SANs).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// A client certificate chain (PEM, leaf first) and its private key
    /// (PEM), for servers behind a mutual-TLS proxy.
    pub fn client_cert(mut self, chain_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        self.client_cert = Some((chain_pem.into(), key_pem.into()));
        self
    }

    /// The WIT `tls` setting's list.
    pub(crate) fn to_wit(&self) -> Vec<TlsSetting> {
        let mut list = Vec::new();
        list.extend(self.ca_pem.clone().map(TlsSetting::CaPem));
        list.extend(self.server_name.clone().map(TlsSetting::ServerName));
        list.extend(self.client_cert.as_ref().map(|(chain, key)| {
            TlsSetting::ClientCert(ClientCert {
                cert_chain_pem: chain.clone(),
                private_key_pem: key.clone(),
            })
        }));
        list
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field(
                "ca_pem",
                &self.ca_pem.as_ref().map(|p| format!("{} bytes", p.len())),
            )
            .field("server_name", &self.server_name)
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|_| "<chain and key>"),
            )
            .finish()
    }
}
