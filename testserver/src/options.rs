//! The server's settings, and the command line that sets them: dflockd's
//! flag names and defaults (v1.10.0), plus `--dialect v1|v2`. Durations are
//! whole seconds, as dflockd takes them. Like Go's `flag` package, a flag
//! may start with `-` or `--` and take its value as the next word or after
//! `=`; a bool flag alone means true.

use std::path::PathBuf;
use std::time::Duration;

use crate::Dialect;

/// Everything the server can be told.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which dflockd to behave as.
    pub dialect: Dialect,
    /// Bind address (`--host`, default 127.0.0.1).
    pub host: String,
    /// Bind port (`--port`, default 6388; 0 picks a free one).
    pub port: u16,
    /// The lease of a request that names none (`--default-lease-ttl`, 33 s).
    pub default_lease_ttl: Duration,
    /// How often run-out leases are evicted (`--lease-sweep-interval`, 1 s).
    pub lease_sweep_interval: Duration,
    /// How often idle keys are forgotten (`--gc-interval`, 5 s).
    pub gc_interval: Duration,
    /// How long a key must be idle to be forgotten (`--gc-max-idle`, 60 s).
    pub gc_max_idle: Duration,
    /// Keys at most, idle ones included (`--max-locks`, 1024).
    pub max_locks: usize,
    /// Connections at most; 0 = unlimited (`--max-connections`).
    pub max_connections: usize,
    /// Waiters per key at most; 0 = unlimited (`--max-waiters`).
    pub max_waiters: usize,
    /// A connection that sends no line for this long gets `error` and is
    /// closed (`--read-timeout`, 23 s).
    pub read_timeout: Duration,
    /// A reply not written within this is the end of the connection
    /// (`--write-timeout`, 5 s; 0 = none).
    pub write_timeout: Duration,
    /// How long a shutdown waits for connections before closing them
    /// (`--shutdown-timeout`, 30 s; 0 = for ever).
    pub shutdown_timeout: Duration,
    /// Whether a closed connection's slots and queue places go
    /// (`--auto-release-on-disconnect`, true).
    pub auto_release_on_disconnect: bool,
    /// The shared secret of the `auth` handshake (`--auth-token`, or the
    /// first line of `--auth-token-file`).
    pub auth_token: Option<String>,
    /// Serve TLS with this certificate chain and key, PEM
    /// (`--tls-cert`, `--tls-key`).
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            dialect: Dialect::V1,
            host: "127.0.0.1".into(),
            port: 6388,
            default_lease_ttl: secs(33),
            lease_sweep_interval: secs(1),
            gc_interval: secs(5),
            gc_max_idle: secs(60),
            max_locks: 1024,
            max_connections: 0,
            max_waiters: 0,
            read_timeout: secs(23),
            write_timeout: secs(5),
            shutdown_timeout: secs(30),
            auto_release_on_disconnect: true,
            auth_token: None,
            tls: None,
        }
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Serve with these options.
    Serve(Box<Options>),
    /// Print the version and exit.
    Version,
    /// Print the usage and exit.
    Help,
}

/// The usage text.
pub const USAGE: &str = "usage: dflockd-testserver [flags]
  --dialect v1|v2              v1 = dflockd 1.10.0 (default), v2 = dflockd 2.1
  --host ADDR                  bind address (127.0.0.1)
  --port N                     bind port (6388; 0 = any free port)
  --default-lease-ttl S        lease when a request names none (33)
  --lease-sweep-interval S     run-out lease eviction interval (1)
  --gc-interval S              idle key collection interval (5)
  --gc-max-idle S              idle seconds before a key is forgotten (60)
  --max-locks N                keys at most (1024)
  --max-connections N          connections at most, 0 = unlimited (0)
  --max-waiters N              waiters per key, 0 = unlimited (0)
  --read-timeout S             idle connection timeout (23)
  --write-timeout S            reply write timeout, 0 = none (5)
  --shutdown-timeout S         drain time on SIGTERM, 0 = for ever (30)
  --auto-release-on-disconnect[=BOOL]  release a closed connection's locks (true)
  --auth-token T | --auth-token-file F  require `auth` first
  --tls-cert F --tls-key F     serve TLS (PEM)
  --debug                      accepted, no effect
  --version                    print the version";

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut o = Options::default();
    let (mut cert, mut key, mut token_file) = (None, None, None);
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let Some(flag) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
            return Err(format!("unexpected argument {word:?}"));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        match name {
            "version" => return Ok(Command::Version),
            "help" | "h" => return Ok(Command::Help),
            "debug" => {
                bool_value(name, inline)?;
                continue;
            }
            "auto-release-on-disconnect" => {
                o.auto_release_on_disconnect = bool_value(name, inline)?;
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => words
                .next()
                .cloned()
                .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
        };
        match name {
            "dialect" => o.dialect = value.parse()?,
            "host" => o.host = value,
            "port" => o.port = number(name, &value)?,
            "default-lease-ttl" => o.default_lease_ttl = positive(name, &value)?,
            "lease-sweep-interval" => o.lease_sweep_interval = positive(name, &value)?,
            "gc-interval" => o.gc_interval = positive(name, &value)?,
            "gc-max-idle" => o.gc_max_idle = positive(name, &value)?,
            "max-locks" => o.max_locks = number(name, &value)?,
            "max-connections" => o.max_connections = number(name, &value)?,
            "max-waiters" => o.max_waiters = number(name, &value)?,
            "read-timeout" => o.read_timeout = positive(name, &value)?,
            "write-timeout" => o.write_timeout = secs(number(name, &value)?),
            "shutdown-timeout" => o.shutdown_timeout = secs(number(name, &value)?),
            "auth-token" => o.auth_token = Some(value).filter(|t| !t.is_empty()),
            "auth-token-file" => token_file = Some(value),
            "tls-cert" => cert = Some(PathBuf::from(value)),
            "tls-key" => key = Some(PathBuf::from(value)),
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
    }
    if o.max_locks == 0 {
        return Err("--max-locks must be > 0 (got 0)".into());
    }
    if o.auth_token.is_none() {
        if let Some(path) = token_file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading auth token file {path:?}: {e}"))?;
            o.auth_token = Some(text.trim().to_string()).filter(|t| !t.is_empty());
        }
    }
    o.tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("both --tls-cert and --tls-key must be provided together".into()),
    };
    Ok(Command::Serve(Box::new(o)))
}

fn bool_value(name: &str, inline: Option<String>) -> Result<bool, String> {
    match inline.as_deref() {
        None | Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(format!("invalid boolean value {v:?} for -{name}")),
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("invalid value {value:?} for flag -{name}"))
}

fn positive(name: &str, value: &str) -> Result<Duration, String> {
    match number::<u64>(name, value)? {
        0 => Err(format!("--{name} must be > 0")),
        n => Ok(secs(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Options {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&args) {
            Ok(Command::Serve(o)) => *o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_take_gos_forms() {
        let o = serve(&[
            "--port",
            "7",
            "-max-locks=3",
            "--auto-release-on-disconnect=false",
            "--dialect",
            "v2",
            "--auth-token",
            "s",
        ]);
        assert_eq!(o.port, 7);
        assert_eq!(o.max_locks, 3);
        assert!(!o.auto_release_on_disconnect);
        assert_eq!(o.dialect, Dialect::V2);
        assert_eq!(o.auth_token.as_deref(), Some("s"));
        assert!(serve(&["--auto-release-on-disconnect"]).auto_release_on_disconnect);
    }

    #[test]
    fn bad_command_lines_say_why() {
        for args in [
            &["--nope", "1"][..],
            &["--port"],
            &["--read-timeout", "0"],
            &["--tls-cert", "a"],
            &["--dialect", "v3"],
            &["--max-locks", "-1"],
        ] {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            assert!(parse(&args).is_err(), "{args:?}");
        }
    }
}
