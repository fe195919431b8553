//! Options with their defaults applied and every value checked, before any
//! connection exists. Pure: the component converts its WIT records into
//! these plain values and back.

use std::num::NonZeroU32;

use crate::protocol::{check_auth_token, check_key, check_lease, check_seconds};
use crate::protocol::{Error, Kind, MAX_LINE};

/// The server used when the list is empty.
pub const DEFAULT_SERVER: (&str, u16) = ("127.0.0.1", 6388);
/// Default seconds the server may keep an acquire waiting.
pub const DEFAULT_ACQUIRE_TIMEOUT_S: u64 = 10;
/// Default fraction of the lease after which it is renewed.
pub const DEFAULT_RENEW_RATIO: f64 = 0.5;
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// How long past the server's own timeout a reply may take before the
/// client gives up on the connection.
pub const REPLY_GRACE_MS: u64 = 10_000;

/// One server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Host name or IP literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Where the CA certificates that verify the server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The Mozilla root set bundled with the component (webpki-roots).
    MozillaRoots,
    /// One or more PEM-encoded CA certificates.
    Pem(String),
}

/// A client certificate chain and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain, leaf first.
    pub chain_pem: String,
    /// The private key (PKCS#8, PKCS#1 or SEC1). A secret: never printed.
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert")
            .field("chain_pem", &format!("{} bytes", self.chain_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// TLS as the caller asked for it. Verification is always on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The trust roots.
    pub trust: Trust,
    /// The name the certificate must carry; default: the host dialled.
    pub server_name: Option<String>,
    /// A client certificate, for servers behind a mutual-TLS proxy.
    pub client_cert: Option<ClientCert>,
}

/// How to open a connection.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectSettings {
    /// Connect timeout in ms (> 0).
    pub timeout_ms: u64,
    /// Auth token, checked. Never printed: see the `Debug` impl.
    pub auth_token: Option<String>,
    /// TLS as asked for; `None` for plain TCP. The guest turns it into a
    /// rustls configuration when the object is opened (bad PEM is
    /// `invalid-argument` there, before any connection).
    pub tls: Option<TlsOptions>,
}

impl std::fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("timeout_ms", &self.timeout_ms)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("tls", &self.tls)
            .finish()
    }
}

impl ConnectSettings {
    /// Applies defaults and checks the connect timeout and the auth token.
    pub fn new(
        timeout_ms: Option<u64>,
        auth_token: Option<String>,
        tls: Option<TlsOptions>,
    ) -> Result<Self, Error> {
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(invalid("connect timeout must be above 0 ms"));
        }
        if let Some(token) = &auth_token {
            check_auth_token(token)?;
        }
        Ok(Self {
            timeout_ms,
            auth_token,
            tls,
        })
    }
}

/// A lock's or semaphore's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The key, checked.
    pub key: String,
    /// Lock or semaphore.
    pub kind: Kind,
    /// The server this key routes to.
    pub server: Server,
    /// Its index in the configured list.
    pub server_index: u32,
    /// How to connect.
    pub connect: ConnectSettings,
    /// Seconds the server may keep an acquire waiting.
    pub acquire_timeout_s: u64,
    /// Requested lease, or the server's default.
    pub lease_ttl_s: Option<u64>,
    /// Renewal fraction in (0, 1).
    pub renew_ratio: f64,
}

/// The raw options, as the caller gave them.
#[derive(Debug, Clone, Default)]
pub struct RawOptions {
    /// Servers; empty means the default.
    pub servers: Vec<Server>,
    /// Connect timeout.
    pub connect_timeout_ms: Option<u64>,
    /// Auth token.
    pub auth_token: Option<String>,
    /// TLS, if asked for.
    pub tls: Option<TlsOptions>,
    /// Acquire timeout.
    pub acquire_timeout_s: Option<u64>,
    /// Lease TTL.
    pub lease_ttl_s: Option<u64>,
    /// Renew ratio.
    pub renew_ratio: Option<f64>,
    /// Custom shard choice.
    pub server_index: Option<u32>,
}

impl Settings {
    /// Checks `key`, `limit` (for a semaphore) and every option, and routes the key.
    pub fn new(key: &str, limit: Option<u32>, raw: RawOptions) -> Result<Self, Error> {
        check_key(key)?;
        let kind = match limit {
            None => Kind::Lock,
            Some(limit) => Kind::Semaphore {
                limit: NonZeroU32::new(limit)
                    .ok_or_else(|| invalid("semaphore limit must be above 0"))?,
            },
        };
        let mut servers = raw.servers;
        if servers.is_empty() {
            servers.push(Server {
                host: DEFAULT_SERVER.0.into(),
                port: DEFAULT_SERVER.1,
            });
        }
        for server in &servers {
            check_server(server)?;
        }
        let n = u32::try_from(servers.len()).map_err(|_| invalid("too many servers"))?;
        let server_index = match raw.server_index {
            Some(i) if i < n => i,
            Some(i) => {
                return Err(invalid(format!(
                    "server index {i} is not below the {n} servers"
                )))
            }
            None => crate::shard::shard_index(key, n).unwrap_or(0),
        };
        let server = servers.swap_remove(server_index as usize);
        let renew_ratio = raw.renew_ratio.unwrap_or(DEFAULT_RENEW_RATIO);
        if !(renew_ratio > 0.0 && renew_ratio < 1.0) {
            return Err(invalid("renew ratio must be strictly between 0 and 1"));
        }
        Ok(Self {
            key: key.to_owned(),
            kind,
            server,
            server_index,
            connect: ConnectSettings::new(raw.connect_timeout_ms, raw.auth_token, raw.tls)?,
            acquire_timeout_s: check_seconds(
                raw.acquire_timeout_s.unwrap_or(DEFAULT_ACQUIRE_TIMEOUT_S),
                "acquire timeout",
            )?,
            lease_ttl_s: raw.lease_ttl_s.map(check_lease).transpose()?,
            renew_ratio,
        })
    }
}

/// A server entry: a non-empty host without whitespace, and a port above 0.
pub fn check_server(server: &Server) -> Result<(), Error> {
    let host = &server.host;
    if host.is_empty()
        || host.len() > MAX_LINE
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "server host must be a non-empty name or IP literal without whitespace",
        ));
    }
    if server.port == 0 {
        return Err(invalid("server port must be above 0"));
    }
    Ok(())
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(n: u16) -> Vec<Server> {
        (0..n)
            .map(|i| Server {
                host: format!("h{i}"),
                port: 6388 + i,
            })
            .collect()
    }

    #[test]
    fn defaults_apply() {
        let s = Settings::new("k", None, RawOptions::default()).unwrap();
        assert_eq!(
            s.server,
            Server {
                host: "127.0.0.1".into(),
                port: 6388
            }
        );
        assert_eq!(
            (s.acquire_timeout_s, s.lease_ttl_s, s.renew_ratio),
            (10, None, 0.5)
        );
        assert_eq!(s.connect.timeout_ms, 10_000);
        assert_eq!(s.kind, Kind::Lock);
    }

    #[test]
    fn routes_by_crc32_or_by_explicit_index() {
        let raw = RawOptions {
            servers: servers(3),
            ..Default::default()
        };
        let s = Settings::new("user:42:profile", None, raw.clone()).unwrap();
        let want = crate::shard::shard_index("user:42:profile", 3).unwrap();
        assert_eq!(s.server_index, want);
        assert_eq!(s.server, servers(3)[want as usize]);
        let s = Settings::new(
            "k",
            None,
            RawOptions {
                server_index: Some(2),
                ..raw.clone()
            },
        )
        .unwrap();
        assert_eq!(s.server, servers(3)[2]);
        assert!(Settings::new(
            "k",
            None,
            RawOptions {
                server_index: Some(3),
                ..raw
            }
        )
        .is_err());
    }

    #[test]
    fn bad_values_are_invalid_arguments() {
        let bad = [
            Settings::new("", None, RawOptions::default()),
            Settings::new("a b", None, RawOptions::default()),
            Settings::new("k", Some(0), RawOptions::default()),
            Settings::new(
                "k",
                None,
                RawOptions {
                    renew_ratio: Some(0.0),
                    ..Default::default()
                },
            ),
            Settings::new(
                "k",
                None,
                RawOptions {
                    renew_ratio: Some(1.0),
                    ..Default::default()
                },
            ),
            Settings::new(
                "k",
                None,
                RawOptions {
                    renew_ratio: Some(f64::NAN),
                    ..Default::default()
                },
            ),
            Settings::new(
                "k",
                None,
                RawOptions {
                    lease_ttl_s: Some(0),
                    ..Default::default()
                },
            ),
            Settings::new(
                "k",
                None,
                RawOptions {
                    acquire_timeout_s: Some(u64::MAX),
                    ..Default::default()
                },
            ),
            Settings::new(
                "k",
                None,
                RawOptions {
                    connect_timeout_ms: Some(0),
                    ..Default::default()
                },
            ),
            Settings::new(
                "k",
                None,
                RawOptions {
                    auth_token: Some("a b".into()),
                    ..Default::default()
                },
            ),
            Settings::new(
                "k",
                None,
                RawOptions {
                    servers: vec![Server {
                        host: "".into(),
                        port: 1,
                    }],
                    ..Default::default()
                },
            ),
            Settings::new(
                "k",
                None,
                RawOptions {
                    servers: vec![Server {
                        host: "h".into(),
                        port: 0,
                    }],
                    ..Default::default()
                },
            ),
        ];
        for result in bad {
            assert!(
                matches!(result, Err(Error::InvalidArgument(_))),
                "{result:?}"
            );
        }
    }

    #[test]
    fn tokens_and_keys_are_not_printed() {
        let s = Settings::new(
            "k",
            Some(3),
            RawOptions {
                auth_token: Some("s3cret".into()),
                tls: Some(TlsOptions {
                    trust: Trust::MozillaRoots,
                    server_name: None,
                    client_cert: Some(ClientCert {
                        chain_pem: "chain".into(),
                        key_pem: "private-key-pem".into(),
                    }),
                }),
                ..Default::default()
            },
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("private-key-pem"), "{shown}");
    }
}
