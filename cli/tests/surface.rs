//! What `dflock` shows: help, `stats`, completions, and the spinner that
//! appears only on a terminal.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::{dflock, held, output, Running};
use host_tests::server::dflockd;

#[test]
fn every_subcommand_has_complete_help() {
    let server = host_tests::closed_port();
    let (code, top, _) = output(dflock(server, &["--help"]));
    assert_eq!(code, 0);
    for needle in [
        "run",
        "stats",
        "completions",
        "--servers",
        "DFLOCKD_SERVERS",
        "Examples",
    ] {
        assert!(top.contains(needle), "--help lacks {needle}: {top}");
    }
    let (_, run, _) = output(dflock(server, &["run", "--help"]));
    for needle in [
        "--wait",
        "--no-wait",
        "--limit",
        "--lease",
        "--kill-after",
        "--on-lost",
        "DFLOCK_FENCE",
        "Exit status",
        "75",
        "125",
        "127",
        "Examples",
        "DFLOCKD_AUTH_TOKEN_FILE",
    ] {
        assert!(run.contains(needle), "run --help lacks {needle}: {run}");
    }
    let (_, stats, _) = output(dflock(server, &["stats", "--help"]));
    for needle in ["--json", "--watch", "Examples"] {
        assert!(
            stats.contains(needle),
            "stats --help lacks {needle}: {stats}"
        );
    }
    let (code, bash, _) = output(dflock(server, &["completions", "bash"]));
    assert_eq!(code, 0);
    assert!(
        bash.contains("_dflock()") && bash.contains("--no-wait"),
        "{bash}"
    );
}

#[test]
fn stats_shows_holders_and_waiters_as_a_table_and_as_json() {
    let server = dflockd(&[]);
    let _holder = held(server.addr, "busy");
    let waiting = Running::start(dflock(server.addr, &["run", "busy", "--", "true"]));
    host_tests::matrix::waiters_become(server.addr, "busy", 1);
    let (code, table, stderr) = output(dflock(server.addr, &["stats"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(table.starts_with(&format!("{}: ", server.addr)), "{table}");
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("busy"))
        .expect("a row");
    assert!(row.trim_end().ends_with(" 1"), "one waiter: {table}");
    let (code, json, _) = output(dflock(server.addr, &["stats", "--json"]));
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(value[0]["server"], server.addr.to_string());
    assert_eq!(value[0]["locks"][0]["key"], "busy");
    assert_eq!(value[0]["locks"][0]["waiters"], 1);
    waiting.signal(nix::sys::signal::Signal::SIGTERM);
    let _ = waiting.finish();
    // A server that is not there: said, and dflock's own failure.
    let closed = host_tests::closed_port();
    let (code, table, _) = output(dflock(closed, &["stats"]));
    assert_eq!(code, 125);
    assert!(table.starts_with(&format!("{closed}: ")), "{table}");
}

#[test]
fn stats_watch_prints_a_json_line_per_round_until_interrupted() {
    let server = dflockd(&[]);
    let watching = Running::start(dflock(server.addr, &["stats", "--json", "--watch", "0.1"]));
    for _ in 0..3 {
        let line = watching.line();
        let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        assert_eq!(value[0]["server"], server.addr.to_string());
    }
    watching.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(watching.finish().0, -1, "ended by the signal");
}

#[test]
fn the_wait_is_shown_on_a_terminal_and_not_elsewhere() {
    let server = dflockd(&[]);
    let _holder = held(server.addr, "k");
    let args = ["run", "--wait", "3", "k", "--", "true"];
    // Not a terminal: one line, the reason.
    let (code, _, stderr) = output(dflock(server.addr, &args));
    assert_eq!(code, 75);
    assert_eq!(stderr, "dflock: k not acquired within 3 s: not run\n");
    // A terminal (a pty of 80 × 24): the spinner, with the server's count.
    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let mut cmd = dflock(server.addr, &args);
    cmd.stderr(Stdio::from(pty.slave));
    let mut child = cmd.spawn().expect("start");
    drop(cmd);
    let mut master = std::fs::File::from(pty.master);
    let shown = host_tests::within(common::HANG, move || {
        let mut all = Vec::new();
        let mut chunk = [0u8; 4096];
        // Until the pty closes (EIO once dflock is gone).
        while let Ok(n @ 1..) = master.read(&mut chunk) {
            all.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    assert_eq!(child.wait().expect("wait").code(), Some(75));
    assert!(shown.contains("waiting for k"), "{shown:?}");
    assert!(shown.contains("(held, 1 waiting)"), "{shown:?}");
    assert!(
        shown.contains("dflock: k not acquired within 3 s"),
        "{shown:?}"
    );
}
