//! Conversions between the WIT types and the pure core's types.

use super::api::{connection as wc, driver, types as wt};
use super::events::Event;
use crate::counters::Counters;
use crate::protocol::{Answer, Enqueued, Error, Grant, Kind, Loss, LossCause};
use crate::session::{LeaseLost, Outcome};
use crate::settings::{ClientCert, ConnectSettings, RawOptions, Server, TlsOptions, Trust};

impl From<Loss> for wt::Loss {
    fn from(l: Loss) -> Self {
        let cause = match l.cause {
            LossCause::RenewalRefused => wt::LossCause::RenewalRefused,
            LossCause::ReleaseRefused => wt::LossCause::ReleaseRefused,
            LossCause::ConnectionLost => wt::LossCause::ConnectionLost,
            LossCause::NoReply => wt::LossCause::NoReply,
            LossCause::NotRenewed => wt::LossCause::NotRenewed,
            LossCause::Expired => wt::LossCause::Expired,
            // Non-exhaustive across crates; every cause is listed above.
            _ => wt::LossCause::ConnectionLost,
        };
        wt::Loss {
            cause,
            detail: l.detail,
        }
    }
}

impl From<Kind> for wt::Kind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Lock => wt::Kind::Lock,
            Kind::Semaphore { limit } => wt::Kind::Semaphore(limit.get()),
        }
    }
}

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
            Error::LockLost(loss) => wt::Error::LockLost(loss.into()),
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

/// A settings list as the caller gave it (later entries win).
pub fn raw_options(settings: Vec<wt::Setting>) -> RawOptions {
    let mut raw = RawOptions::default();
    for setting in settings {
        match setting {
            wt::Setting::Servers(list) => raw.servers = list.into_iter().map(Into::into).collect(),
            wt::Setting::ConnectTimeoutMs(ms) => raw.connect_timeout_ms = Some(ms),
            wt::Setting::AuthToken(token) => raw.auth_token = Some(token),
            wt::Setting::Tls(tls) => raw.tls = Some(tls_options(tls)),
            wt::Setting::AcquireTimeoutS(s) => raw.acquire_timeout_s = Some(s),
            wt::Setting::LeaseTtlS(s) => raw.lease_ttl_s = Some(s),
            wt::Setting::RenewRatio(r) => raw.renew_ratio = Some(r),
            wt::Setting::ServerIndex(i) => raw.server_index = Some(i),
        }
    }
    raw
}

/// A connection's settings: the connect ones only.
pub fn connect_settings(settings: Vec<wt::Setting>) -> Result<ConnectSettings, Error> {
    let lock_only = settings.iter().find_map(|s| match s {
        wt::Setting::Servers(_) => Some("servers"),
        wt::Setting::AcquireTimeoutS(_) => Some("acquire-timeout-s"),
        wt::Setting::LeaseTtlS(_) => Some("lease-ttl-s"),
        wt::Setting::RenewRatio(_) => Some("renew-ratio"),
        wt::Setting::ServerIndex(_) => Some("server-index"),
        _ => None,
    });
    if let Some(name) = lock_only {
        return Err(Error::InvalidArgument(format!(
            "{name} is not a connection setting (the connection's commands take it)"
        )));
    }
    let raw = raw_options(settings);
    ConnectSettings::new(raw.connect_timeout_ms, raw.auth_token, raw.tls)
}

/// TLS settings as the caller gave them (later entries win).
fn tls_options(settings: Vec<wt::TlsSetting>) -> TlsOptions {
    let mut tls = TlsOptions {
        trust: Trust::MozillaRoots,
        server_name: None,
        client_cert: None,
    };
    for setting in settings {
        match setting {
            wt::TlsSetting::CaPem(pem) => tls.trust = Trust::Pem(pem),
            wt::TlsSetting::ServerName(name) => tls.server_name = Some(name),
            wt::TlsSetting::ClientCert(c) => {
                tls.client_cert = Some(ClientCert {
                    chain_pem: c.cert_chain_pem,
                    key_pem: c.private_key_pem,
                })
            }
        }
    }
    tls
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

impl From<Enqueued> for wt::Enqueued {
    fn from(e: Enqueued) -> Self {
        match e {
            Enqueued::Acquired(g) => wt::Enqueued::Acquired(g.into()),
            Enqueued::Queued => wt::Enqueued::Queued,
        }
    }
}

impl From<LeaseLost> for driver::LeaseLost {
    fn from(l: LeaseLost) -> Self {
        driver::LeaseLost {
            key: l.key,
            kind: l.kind.into(),
            fence: l.fence,
            reason: l.reason.into(),
        }
    }
}

impl From<Outcome> for wt::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Acquired(grant) => wt::Outcome::Acquired(grant.map(Into::into)),
            Outcome::Enqueued(answer) => wt::Outcome::Enqueued(answer.into()),
            Outcome::Released(released) => wt::Outcome::Released(released),
            Outcome::Renewed(remaining) => wt::Outcome::Renewed(remaining),
        }
    }
}

impl From<Answer> for wc::Answer {
    fn from(a: Answer) -> Self {
        match a {
            Answer::Connected => wc::Answer::Connected,
            Answer::Acquired(grant) => wc::Answer::Acquired(grant.map(Into::into)),
            Answer::Done => wc::Answer::Done,
            Answer::Renewed(remaining) => wc::Answer::Renewed(remaining),
            Answer::Enqueued(answer) => wc::Answer::Enqueued(answer.into()),
            Answer::Stats(json) => wc::Answer::Stats(json),
        }
    }
}

impl From<Event> for driver::Event {
    fn from(e: Event) -> Self {
        match e {
            Event::Done { ticket, outcome } => driver::Event::Done(driver::Completion {
                ticket,
                outcome: outcome.map(Into::into).map_err(Into::into),
            }),
            Event::Answered { ticket, answer } => {
                driver::Event::Answered(driver::ConnectionCompletion {
                    ticket,
                    answer: answer.map(Into::into).map_err(Into::into),
                })
            }
            Event::Lost(lost) => driver::Event::Lost(lost.into()),
        }
    }
}

impl From<Counters> for driver::Counters {
    fn from(c: Counters) -> Self {
        driver::Counters {
            connects: c.connects,
            renewals_sent: c.renewals_sent,
            renewals_confirmed: c.renewals_confirmed,
            renew_latency_ns_total: c.renew_latency_ns_total,
            renew_latency_ns_max: c.renew_latency_ns_max,
            leases_lost: c.leases_lost,
        }
    }
}
