//! While `dflock run` waits on a terminal: a spinner with the time waited
//! and, from the key's server's `stats`, who holds it and how many wait.
//! Nothing at all when stderr is not a terminal (cron, CI, pipes).

use std::io::IsTerminal;
use std::time::Duration;

use dflockd_host::asynchronous::AsyncConnection;
use dflockd_host::{Runtime, Stats};
use indicatif::{ProgressBar, ProgressStyle};

use crate::servers::Servers;

/// How often the spinner asks the server for its tables.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// Shows the wait until dropped (it never ends by itself).
pub async fn show(
    runtime: &Runtime,
    label: &str,
    watched: Option<(&str, u32)>,
    servers: &Servers,
    limit: Option<u32>,
) {
    if !std::io::stderr().is_terminal() {
        return std::future::pending().await;
    }
    let spinner = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {elapsed} waiting for {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(label.to_string());
    spinner.enable_steady_tick(Duration::from_millis(100));
    let _clear = Clear(spinner.clone());
    // A lock set's members wait one after the other: only its label shows.
    let mut observer = match watched {
        Some((_, server_index)) => observer(runtime, server_index, servers).await,
        None => None,
    };
    loop {
        if let (Some(conn), Some((key, _))) = (&mut observer, watched) {
            match conn.stats().await {
                Ok(stats) => spinner.set_message(describe(&stats, key, limit)),
                // The wait goes on; only the detail is gone.
                Err(_) => observer = None,
            }
        }
        tokio::time::sleep(STATS_EVERY).await;
    }
}

/// A connection to the key's server for `stats`, if one can be made.
async fn observer(
    runtime: &Runtime,
    server_index: u32,
    servers: &Servers,
) -> Option<AsyncConnection> {
    let (host, port) = servers.list.get(server_index as usize)?;
    let tls = servers.tls.as_ref();
    runtime
        .connect_with_async(host, *port, servers.auth_token.as_deref(), tls)
        .await
        .ok()
}

/// "KEY (held, 2 waiting)", "KEY (3/3 held, 1 waiting)".
fn describe(stats: &Stats, key: &str, limit: Option<u32>) -> String {
    if limit.is_some() {
        if let Some(s) = stats.semaphores.iter().find(|s| s.key == key) {
            return format!(
                "{key} ({}/{} held, {} waiting)",
                s.holders, s.limit, s.waiters
            );
        }
    } else if let Some(l) = stats.locks.iter().find(|l| l.key == key) {
        return format!("{key} (held, {} waiting)", l.waiters);
    }
    key.to_string()
}

/// Wipes the spinner's line when the wait ends, however it ends.
struct Clear(ProgressBar);

impl Drop for Clear {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::describe;
    use dflockd_host::{LockInfo, SemaphoreInfo, Stats};

    #[test]
    fn describes_the_key_it_waits_for() {
        let stats = Stats {
            locks: vec![LockInfo {
                key: "a".into(),
                owner_conn_id: 1,
                lease_expires_in_s: 3.0,
                waiters: 2,
            }],
            semaphores: vec![SemaphoreInfo {
                key: "s".into(),
                limit: 3,
                holders: 3,
                waiters: 1,
            }],
            connections: 3,
            idle_locks: Vec::new(),
            idle_semaphores: Vec::new(),
            cluster: None,
        };
        assert_eq!(describe(&stats, "a", None), "a (held, 2 waiting)");
        assert_eq!(describe(&stats, "s", Some(3)), "s (3/3 held, 1 waiting)");
        assert_eq!(describe(&stats, "b", None), "b");
    }
}
