//! The reactor: every blocking wait in the instance goes through [`wait`],
//! which also keeps the leases of all held locks renewed.

use wasip2::io::poll::{poll, Pollable};

use super::{clock, session};

/// Blocks until `own` is ready, `deadline` passes, or a held lease needs
/// attention; then does what the leases need. Callers loop on it.
pub fn wait(own: Option<&Pollable>, deadline: u64) {
    {
        let timer = clock::timer(deadline);
        let mut others = Vec::new();
        session::collect_wakeups(&mut others);
        let mut all: Vec<&Pollable> = Vec::with_capacity(others.len() + 2);
        all.extend(own);
        all.push(&timer);
        all.extend(others.iter());
        poll(&all);
        // The pollables drop here, before any lease work may close their sockets.
    }
    session::drive_all(clock::now());
}
