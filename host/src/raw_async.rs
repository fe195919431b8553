//! The WIT bindings with async exports, generated from `wit/` (the single
//! source of truth), and the one place where their types turn into the
//! core's: the typed API of this crate shows no generated type. The
//! driver (`driver/`) runs them, on its instance's runtime or the
//! application's.

use std::num::NonZeroU32;

use dflockd_core::{Enqueued, Grant, Kind, LeaseLost, Loss, LossCause};

wasmtime::component::bindgen!({
    path: "wit",
    world: "client",
    with: { "wasi:io/poll": wasmtime_wasi::p2::bindings::io::poll },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub(crate) use exports::dflockd::client::connection::{
    AcquireRequest, Answer as WitAnswer, ConnectionCommand, EnqueueRequest, ReleaseRequest,
    RenewRequest, SemAcquireRequest, SemEnqueueRequest, WaitRequest,
};
pub(crate) use exports::dflockd::client::driver::{Completion, ConnectionCompletion, Event};
pub(crate) use exports::dflockd::client::types::{
    ClientCert, Command, Enqueued as WitEnqueued, Grant as WitGrant, Outcome, Server, Setting,
    TlsSetting,
};
use exports::dflockd::client::{driver, types as wt};

pub(crate) fn grant(g: WitGrant) -> Grant {
    Grant {
        token: g.token,
        lease_s: g.lease_s,
        fence: g.fence,
    }
}

pub(crate) fn enqueued(e: WitEnqueued) -> Enqueued {
    match e {
        WitEnqueued::Acquired(g) => Enqueued::Acquired(grant(g)),
        WitEnqueued::Queued => Enqueued::Queued,
    }
}

pub(crate) fn loss(l: wt::Loss) -> Loss {
    let cause = match l.cause {
        wt::LossCause::RenewalRefused => LossCause::RenewalRefused,
        wt::LossCause::ReleaseRefused => LossCause::ReleaseRefused,
        wt::LossCause::ConnectionLost => LossCause::ConnectionLost,
        wt::LossCause::NoReply => LossCause::NoReply,
        wt::LossCause::NotRenewed => LossCause::NotRenewed,
        wt::LossCause::Expired => LossCause::Expired,
    };
    Loss::new(cause, l.detail)
}

fn kind(k: wt::Kind) -> Kind {
    match k {
        wt::Kind::Lock => Kind::Lock,
        // A limit of 0 is refused at open, so it never comes back.
        wt::Kind::Semaphore(limit) => {
            NonZeroU32::new(limit).map_or(Kind::Lock, |limit| Kind::Semaphore { limit })
        }
    }
}

pub(crate) fn lease_lost(l: driver::LeaseLost) -> LeaseLost {
    LeaseLost {
        key: l.key,
        kind: kind(l.kind),
        fence: l.fence,
        reason: loss(l.reason),
    }
}

pub(crate) fn counters(c: driver::Counters) -> dflockd_core::Counters {
    dflockd_core::Counters {
        connects: c.connects,
        renewals_sent: c.renewals_sent,
        renewals_confirmed: c.renewals_confirmed,
        renew_latency_ns_total: c.renew_latency_ns_total,
        renew_latency_ns_max: c.renew_latency_ns_max,
        leases_lost: c.leases_lost,
    }
}
