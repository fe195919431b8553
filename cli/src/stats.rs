//! `dflock stats`: each server's tables, as a table or as JSON, once or
//! every `--watch` seconds.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use dflockd_host::asynchronous::AsyncConnection;
use dflockd_host::{Runtime, Stats};

use crate::args::StatsArgs;
use crate::exit;
use crate::servers::Servers;

pub async fn stats(runtime: &Runtime, servers: &Servers, args: StatsArgs) -> u8 {
    let every = match args.watch.map(Duration::try_from_secs_f64) {
        None => None,
        Some(Ok(every)) if !every.is_zero() => Some(every),
        Some(_) => {
            eprintln!("dflock: --watch takes a number of seconds above 0");
            return 2;
        }
    };
    let mut conns: Vec<Option<AsyncConnection>> = servers.list.iter().map(|_| None).collect();
    loop {
        let mut answers = Vec::new();
        for (conn, (host, port)) in conns.iter_mut().zip(&servers.list) {
            answers.push((
                format!("{host}:{port}"),
                ask(runtime, servers, conn, host, *port).await,
            ));
        }
        let failed = answers.iter().any(|(_, a)| a.is_err());
        let text = if args.json {
            json(&answers)
        } else {
            table(&answers)
        };
        match every {
            None => {
                print!("{text}");
                return if failed { exit::FAILED } else { 0 };
            }
            Some(every) => {
                if !args.json && std::io::stdout().is_terminal() {
                    // Redraw in place: clear the screen, cursor home.
                    print!("\x1b[2J\x1b[H");
                }
                print!("{text}");
                tokio::time::sleep(every).await;
            }
        }
    }
}

/// One server's tables, over a connection kept for the next round (made
/// again after an error).
async fn ask(
    runtime: &Runtime,
    servers: &Servers,
    conn: &mut Option<AsyncConnection>,
    host: &str,
    port: u16,
) -> Result<Stats, String> {
    if conn.is_none() {
        let auth = servers.auth_token.as_deref();
        let made = runtime
            .connect_with_async(host, port, auth, servers.tls.as_ref())
            .await;
        *conn = Some(made.map_err(|e| e.to_string())?);
    }
    let Some(open) = conn else {
        unreachable!("set above")
    };
    open.stats().await.map_err(|e| {
        *conn = None;
        e.to_string()
    })
}

/// An array with an object per server: its stats with `"server"` added,
/// or `"server"` and `"error"`; one line, for `jq` and for `--watch`.
fn json(answers: &[(String, Result<Stats, String>)]) -> String {
    let all: Vec<serde_json::Value> = answers
        .iter()
        .map(|(server, answer)| {
            let mut object = match answer {
                Ok(stats) => serde_json::to_value(stats).unwrap_or_default(),
                Err(e) => serde_json::json!({ "error": e }),
            };
            if let Some(map) = object.as_object_mut() {
                map.insert("server".into(), server.clone().into());
            }
            object
        })
        .collect();
    format!("{}\n", serde_json::Value::Array(all))
}

fn table(answers: &[(String, Result<Stats, String>)]) -> String {
    let mut out = String::new();
    for (server, answer) in answers {
        let stats = match answer {
            Ok(stats) => stats,
            Err(e) => {
                let _ = writeln!(out, "{server}: {e}\n");
                continue;
            }
        };
        let _ = writeln!(out, "{server}: connections {}", stats.connections);
        let locks: Vec<[String; 4]> = stats
            .locks
            .iter()
            .map(|l| {
                [
                    l.key.clone(),
                    l.owner_conn_id.to_string(),
                    format!("{:.1} s", l.lease_expires_in_s),
                    l.waiters.to_string(),
                ]
            })
            .collect();
        columns(
            &mut out,
            ["LOCK", "HOLDER (CONNECTION)", "LEASE LEFT", "WAITING"],
            &locks,
        );
        let semaphores: Vec<[String; 3]> = stats
            .semaphores
            .iter()
            .map(|s| {
                [
                    s.key.clone(),
                    format!("{}/{}", s.holders, s.limit),
                    s.waiters.to_string(),
                ]
            })
            .collect();
        columns(&mut out, ["SEMAPHORE", "HELD", "WAITING"], &semaphores);
        let _ = writeln!(
            out,
            "  idle keys: {} locks, {} semaphores\n",
            stats.idle_locks.len(),
            stats.idle_semaphores.len()
        );
    }
    out
}

/// Rows under a header, each column as wide as its widest cell; nothing
/// when there are no rows.
fn columns<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    if rows.is_empty() {
        return;
    }
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: [&str; N]| {
        let mut text = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(text, "  {cell:<w$}");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, header);
    for row in rows {
        line(out, row.each_ref().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dflockd_host::{LockInfo, SemaphoreInfo};

    fn sample() -> Stats {
        Stats {
            connections: 3,
            locks: vec![LockInfo {
                key: "backup".into(),
                owner_conn_id: 7,
                lease_expires_in_s: 12.34,
                waiters: 1,
            }],
            semaphores: vec![SemaphoreInfo {
                key: "encoder".into(),
                limit: 3,
                holders: 2,
                waiters: 0,
            }],
            idle_locks: Vec::new(),
            idle_semaphores: Vec::new(),
            cluster: None,
        }
    }

    #[test]
    fn a_table_per_server_and_the_failed_ones_say_why() {
        let text = table(&[
            ("a:1".into(), Ok(sample())),
            ("b:2".into(), Err("connection refused".into())),
        ]);
        assert_eq!(
            text,
            "a:1: connections 3\n  \
             LOCK    HOLDER (CONNECTION)  LEASE LEFT  WAITING\n  \
             backup  7                    12.3 s      1\n  \
             SEMAPHORE  HELD  WAITING\n  \
             encoder    2/3   0\n  \
             idle keys: 0 locks, 0 semaphores\n\n\
             b:2: connection refused\n\n"
        );
    }

    #[test]
    fn json_is_an_array_of_servers() {
        let text = json(&[
            ("a:1".into(), Ok(sample())),
            ("b:2".into(), Err("refused".into())),
        ]);
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(value[0]["server"], "a:1");
        assert_eq!(value[0]["locks"][0]["key"], "backup");
        assert_eq!(value[0]["semaphores"][0]["holders"], 2);
        assert_eq!(
            value[1],
            serde_json::json!({"server": "b:2", "error": "refused"})
        );
        assert_eq!(text.lines().count(), 1);
    }
}
