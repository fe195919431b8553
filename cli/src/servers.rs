//! From the flags and environment to what the host library takes: the
//! server list, the auth token (read from its file) and TLS. Everything is
//! read and checked before anything connects.

use std::path::Path;

use dflockd_host::{Builder, Tls};

use crate::args::ServerArgs;

/// Where and how to connect, checked.
pub struct Servers {
    pub list: Vec<(String, u16)>,
    pub auth_token: Option<String>,
    pub tls: Option<Tls>,
    pub connect_timeout_ms: u64,
}

impl Servers {
    pub fn from_args(args: &ServerArgs) -> Result<Servers, String> {
        let list = args.servers.clone();
        let auth_token = match &args.auth_token_file {
            None => None,
            Some(path) => Some(auth_token(path)?),
        };
        let wants_tls = args.tls || args.ca.is_some() || args.server_name.is_some();
        let tls = if wants_tls || args.client_cert.is_some() {
            let mut tls = match &args.ca {
                Some(path) => Tls::ca_pem(read(path, "the CA")?),
                None => Tls::mozilla_roots(),
            };
            if let Some(name) = &args.server_name {
                tls = tls.server_name(name);
            }
            if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
                tls = tls.client_cert(
                    read(cert, "the client certificate")?,
                    read(key, "the client key")?,
                );
            }
            Some(tls)
        } else {
            None
        };
        Ok(Servers {
            list,
            auth_token,
            tls,
            connect_timeout_ms: args.connect_timeout_ms,
        })
    }

    /// Applies every connection option to a lock's or semaphore's builder.
    pub fn apply<K>(&self, mut builder: Builder<K>) -> Builder<K> {
        builder = builder
            .servers(self.list.iter().cloned())
            .connect_timeout_ms(self.connect_timeout_ms);
        if let Some(token) = &self.auth_token {
            builder = builder.auth_token(token);
        }
        if let Some(tls) = &self.tls {
            builder = builder.tls(tls.clone());
        }
        builder
    }
}

/// `host:port`, `[v6]:port`: clap's parser of `--servers`.
pub fn host_port(text: &str) -> Result<(String, u16), String> {
    let text = text.trim();
    let bad = || "expected HOST:PORT (IPv6 as [ADDR]:PORT)".to_string();
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains(':') && !text.starts_with('[') {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// The token: the file's first line. Its text never appears in an error.
fn auth_token(path: &Path) -> Result<String, String> {
    let text = read(path, "the auth token")?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(format!("the auth token file {} is empty", path.display()));
    }
    Ok(token)
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("reading {what} from {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn servers_are_host_colon_port() {
        assert_eq!(host_port("db1:6388"), Ok(("db1".into(), 6388)));
        assert_eq!(host_port("[::1]:7000"), Ok(("::1".into(), 7000)));
        for bad in ["db1", "db1:", ":6388", "db1:99999", "::1:6388", "db1:x"] {
            assert!(host_port(bad).is_err(), "{bad} was taken");
        }
    }
}
