//! Conversions between the WIT types and the pure core's types.

use super::api::{connection as wc, driver, types as wt};
use crate::protocol::{stats, Enqueued, Error, Grant, Kind};
use crate::session::LeaseLost;
use crate::settings::{ClientCert, ConnectSettings, RawOptions, Server, TlsOptions, Trust};

impl From<Error> for wt::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Timeout => wt::Error::Timeout,
            Error::Auth => wt::Error::Auth,
            Error::MaxLocks => wt::Error::MaxLocks,
            Error::MaxWaiters => wt::Error::MaxWaiters,
            Error::LimitMismatch => wt::Error::LimitMismatch,
            Error::NotEnqueued => wt::Error::NotEnqueued,
            Error::AlreadyEnqueued => wt::Error::AlreadyEnqueued,
            Error::LeaseExpired => wt::Error::LeaseExpired,
            Error::Draining => wt::Error::Draining,
            Error::NotLeader(leader) => wt::Error::NotLeader(leader),
            Error::LockLost(why) => wt::Error::LockLost(why),
            Error::Server(why) => wt::Error::Server(why),
            Error::Protocol(why) => wt::Error::Protocol(why),
            Error::Connection(why) => wt::Error::Connection(why),
            Error::Tls(why) => wt::Error::Tls(why),
            Error::InvalidArgument(why) => wt::Error::InvalidArgument(why),
            // `Runtime` is a host's own case, which the component never
            // produces; the error is non-exhaustive across crates.
            other => wt::Error::Connection(other.to_string()),
        }
    }
}

impl From<wt::Server> for Server {
    fn from(s: wt::Server) -> Self {
        Server {
            host: s.host,
            port: s.port,
        }
    }
}

impl From<wt::Options> for RawOptions {
    fn from(o: wt::Options) -> Self {
        RawOptions {
            servers: o.servers.into_iter().map(Into::into).collect(),
            connect_timeout_ms: o.connect.connect_timeout_ms,
            auth_token: o.connect.auth_token,
            tls: o.connect.tls.map(Into::into),
            acquire_timeout_s: o.acquire_timeout_s,
            lease_ttl_s: o.lease_ttl_s,
            renew_ratio: o.renew_ratio,
            server_index: o.server_index,
        }
    }
}

pub fn connect_settings(o: wt::ConnectOptions) -> Result<ConnectSettings, Error> {
    ConnectSettings::new(o.connect_timeout_ms, o.auth_token, o.tls.map(Into::into))
}

impl From<wt::TlsOptions> for TlsOptions {
    fn from(t: wt::TlsOptions) -> Self {
        TlsOptions {
            trust: t.ca_pem.map_or(Trust::MozillaRoots, Trust::Pem),
            server_name: t.server_name,
            client_cert: t.client_cert.map(|c| ClientCert {
                chain_pem: c.cert_chain_pem,
                key_pem: c.private_key_pem,
            }),
        }
    }
}

impl From<Grant> for wt::Grant {
    fn from(g: Grant) -> Self {
        wt::Grant {
            token: g.token,
            lease_s: g.lease_s,
            fence: g.fence,
        }
    }
}

impl From<Enqueued> for wt::EnqueueStatus {
    fn from(e: Enqueued) -> Self {
        match e {
            Enqueued::Acquired(_) => wt::EnqueueStatus::Acquired,
            Enqueued::Queued => wt::EnqueueStatus::Queued,
        }
    }
}

impl From<Enqueued> for wc::Enqueued {
    fn from(e: Enqueued) -> Self {
        match e {
            Enqueued::Acquired(g) => wc::Enqueued::Acquired(g.into()),
            Enqueued::Queued => wc::Enqueued::Queued,
        }
    }
}

impl From<stats::Stats> for wc::Stats {
    fn from(s: stats::Stats) -> Self {
        let idle = |list: Vec<stats::IdleInfo>| {
            list.into_iter()
                .map(|i| wc::IdleInfo {
                    key: i.key,
                    idle_s: i.idle_s,
                })
                .collect()
        };
        wc::Stats {
            connections: s.connections,
            locks: s
                .locks
                .into_iter()
                .map(|l| wc::LockInfo {
                    key: l.key,
                    owner_conn_id: l.owner_conn_id,
                    lease_expires_in_s: l.lease_expires_in_s,
                    waiters: l.waiters,
                })
                .collect(),
            semaphores: s
                .semaphores
                .into_iter()
                .map(|m| wc::SemaphoreInfo {
                    key: m.key,
                    limit: m.limit,
                    holders: m.holders,
                    waiters: m.waiters,
                })
                .collect(),
            idle_locks: idle(s.idle_locks),
            idle_semaphores: idle(s.idle_semaphores),
            cluster: s.cluster.map(|c| c.to_string()),
        }
    }
}

impl From<LeaseLost> for driver::LeaseLost {
    fn from(l: LeaseLost) -> Self {
        driver::LeaseLost {
            key: l.key,
            semaphore: matches!(l.kind, Kind::Semaphore { .. }),
            fence: l.fence,
            reason: l.reason.into(),
        }
    }
}
