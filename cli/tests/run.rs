//! `dflock run` against the test server: exit codes, what the command
//! sees, signals, a lost lease, and two runs on one key.

mod common;

use common::{dflock, held, output, Running};
use host_tests::server::dflockd;
use nix::sys::signal::Signal;

#[test]
fn exits_with_the_commands_code_and_passes_its_output_through() {
    let server = dflockd(&[]);
    let (code, stdout, stderr) = output(dflock(
        server.addr,
        &[
            "run",
            "k",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
    ));
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (7, "out\n", "err\n")
    );
    // Released: the key is free at once.
    drop(held(server.addr, "k"));
}

#[test]
fn stdin_goes_to_the_command() {
    let server = dflockd(&[]);
    let mut cmd = dflock(server.addr, &["run", "k", "--", "cat"]);
    let out = host_tests::within(common::HANG, move || {
        use std::io::Write;
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(b"to the command\n")
            .expect("write");
        child.wait_with_output().expect("wait")
    });
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to the command\n");
}

#[test]
fn the_command_sees_the_key_and_fence_and_never_the_token() {
    // Fences rise from grant to grant in dflockd 2.x.
    let server = host_tests::server::dflockd_in(host_tests::server::newest_dialect(), &[]);
    let (code, stdout, _) = output(dflock(server.addr, &["run", "k", "--", "env"]));
    assert_eq!(code, 0);
    assert!(stdout.lines().any(|l| l == "DFLOCK_KEY=k"), "{stdout}");
    let fence: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DFLOCK_FENCE="))
        .expect("DFLOCK_FENCE")
        .parse()
        .expect("a number");
    assert!(fence > 0);
    assert!(!stdout.contains("TOKEN"), "{stdout}");
    // A later grant of the key has a higher fence.
    let later = held(server.addr, "k");
    assert!(later.fence().expect("held") > fence);
}

#[test]
fn not_acquired_is_its_own_exit_code_with_one_line_why() {
    let server = dflockd(&[]);
    let _holder = held(server.addr, "k");
    let (code, stdout, stderr) = output(dflock(
        server.addr,
        &["run", "--no-wait", "k", "--", "echo", "ran"],
    ));
    assert_eq!((code, stdout.as_str()), (75, ""));
    assert_eq!(stderr, "dflock: k is held elsewhere (--no-wait): not run\n");
    let (code, _, stderr) = output(dflock(
        server.addr,
        &[
            "run",
            "--wait",
            "1",
            "--conflict-exit-code",
            "9",
            "k",
            "--",
            "echo",
            "ran",
        ],
    ));
    assert_eq!(code, 9);
    assert_eq!(stderr, "dflock: k not acquired within 1 s: not run\n");
}

#[test]
fn bad_arguments_and_commands_that_cannot_run() {
    let server = dflockd(&[]);
    for args in [
        &["run", "k"][..],                           // no command
        &["run", "--limit", "0", "k", "--", "true"], // no slots
        &["run", "--wait", "1", "--no-wait", "k", "--", "true"],
        &["run", "--wait", "9223372037", "k", "--", "true"], // above the protocol's
        &["run", "--lease", "0", "k", "--", "true"],
        &["--servers", "nohost", "run", "k", "--", "true"], // no port
    ] {
        let (code, _, stderr) = output(dflock(server.addr, args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
    let (code, _, stderr) = output(dflock(
        server.addr,
        &["run", "k", "--", "no-such-command-here"],
    ));
    assert_eq!(code, 127, "{stderr}");
    let (code, _, _) = output(dflock(server.addr, &["run", "k", "--", "/dev/null"]));
    assert_eq!(code, 126);
    // Either way the lock was released.
    drop(held(server.addr, "k"));
    // No server: dflock's own failure, saying which server.
    let closed = host_tests::closed_port();
    let (code, _, stderr) = output(dflock(closed, &["run", "k", "--", "true"]));
    assert_eq!(code, 125, "{stderr}");
    let why = format!(
        "dflock: acquiring k: connection failed: connecting to {closed}: connection-refused\n"
    );
    assert_eq!(stderr, why);
}

#[test]
fn a_semaphore_lets_limit_commands_run_at_once() {
    let server = dflockd(&[]);
    // Runs until a signal ends it (not reading stdin, which `wait` closes).
    let script = "echo started; while :; do sleep 0.05; done";
    let slow = |server| {
        dflock(
            server,
            &["run", "--limit", "2", "s", "--", "sh", "-c", script],
        )
    };
    let first = Running::start(slow(server.addr));
    let second = Running::start(slow(server.addr));
    assert_eq!(
        (first.line(), second.line()),
        ("started".into(), "started".into())
    );
    let (code, _, stderr) = output(dflock(
        server.addr,
        &["run", "--limit", "2", "--no-wait", "s", "--", "true"],
    ));
    assert_eq!(code, 75, "{stderr}");
    first.signal(Signal::SIGTERM);
    second.signal(Signal::SIGTERM);
    assert_eq!(first.finish().0, 128 + 15);
    assert_eq!(second.finish().0, 128 + 15);
}

/// A command that says when it starts and exits 3 on SIGTERM.
const TRAPS_TERM: &str = "trap 'echo got TERM; exit 3' TERM; echo started; \
                          while :; do sleep 0.05; done";

#[test]
fn signals_to_dflock_go_to_the_command_and_the_lock_is_released() {
    let server = dflockd(&[]);
    let running = Running::start(dflock(
        server.addr,
        &["run", "k", "--", "sh", "-c", TRAPS_TERM],
    ));
    assert_eq!(running.line(), "started");
    running.signal(Signal::SIGTERM);
    assert_eq!(running.line(), "got TERM");
    assert_eq!(running.finish().0, 3);
    drop(held(server.addr, "k"));
}

#[test]
fn a_signal_while_waiting_ends_dflock_and_leaves_the_queue() {
    // dflock 1.x reads nothing from a waiting connection, so it notices
    // the closed waiter only when the wait ends: the newest dialect.
    let server = host_tests::server::dflockd_in(host_tests::server::newest_dialect(), &[]);
    let _holder = held(server.addr, "k");
    let waiting = Running::start(dflock(server.addr, &["run", "k", "--", "echo", "ran"]));
    host_tests::matrix::waiters_become(server.addr, "k", 1);
    waiting.signal(Signal::SIGINT);
    let (code, stderr) = waiting.finish();
    assert_eq!(code, 128 + 2, "{stderr}");
    assert_eq!(stderr, "dflock: SIGINT while waiting for k\n");
    host_tests::matrix::waiters_become(server.addr, "k", 0);
}

#[test]
fn the_command_is_stopped_when_the_server_dies() {
    let mut server = dflockd(&[]);
    let running = Running::start(dflock(
        server.addr,
        &["run", "--lease", "2", "k", "--", "sh", "-c", TRAPS_TERM],
    ));
    assert_eq!(running.line(), "started");
    server.kill();
    assert_eq!(running.line(), "got TERM");
    let (code, stderr) = running.finish();
    assert_eq!(code, 3);
    assert!(
        stderr.contains("dflock: the lease on k was lost"),
        "{stderr}"
    );
}

#[test]
fn a_frozen_server_stops_the_command_at_the_end_of_the_lease_and_sigkill_follows() {
    let server = dflockd(&[]);
    // Ignores SIGTERM: only the SIGKILL after --kill-after ends it.
    let script = "trap 'echo got TERM' TERM; echo started; while :; do sleep 0.05; done";
    let running = Running::start(dflock(
        server.addr,
        &[
            "run",
            "--lease",
            "2",
            "--kill-after",
            "1",
            "k",
            "--",
            "sh",
            "-c",
            script,
        ],
    ));
    assert_eq!(running.line(), "started");
    server.pause();
    assert_eq!(running.line(), "got TERM");
    let (code, stderr) = running.finish();
    server.resume();
    assert_eq!(code, 128 + 9, "{stderr}");
    assert!(stderr.contains("SIGKILL"), "{stderr}");
}

#[test]
fn on_lost_warn_lets_the_command_finish() {
    let mut server = dflockd(&[]);
    let script = "echo started; read line; echo finished";
    let mut cmd = dflock(
        server.addr,
        &[
            "run",
            "--lease",
            "2",
            "--on-lost",
            "warn",
            "k",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    cmd.stdin(std::process::Stdio::piped());
    let mut running = Running::start(cmd);
    assert_eq!(running.line(), "started");
    server.kill();
    // The warning comes; then the command is told to go on.
    let mut stdin = running.child.stdin.take().expect("piped");
    let stderr = running.child.stderr.take().expect("piped");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let warning = lines.next().expect("a line").expect("text");
    assert!(
        warning.contains("was lost") && warning.contains("runs on"),
        "{warning}"
    );
    std::io::Write::write_all(&mut stdin, b"go on\n").expect("write");
    assert_eq!(running.line(), "finished");
    let status = host_tests::within(common::HANG, move || running.child.wait().expect("wait"));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn two_runs_on_one_key_never_overlap() {
    let server = dflockd(&[]);
    let dir = std::env::temp_dir().join(format!("dflock-overlap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("log");
    let _ = std::fs::remove_file(&log);
    // Each command writes its start and end, with the time, around a pause.
    let script = format!(
        "for i in 1 2 3; do echo \"start $$ $(date +%s%N)\" >> {0}; sleep 0.1; \
         echo \"end $$ $(date +%s%N)\" >> {0}; done",
        log.display()
    );
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let cmd = dflock(server.addr, &["run", "k", "--", "sh", "-c", &script]);
            std::thread::spawn(move || output(cmd))
        })
        .collect();
    for run in runs {
        let (code, _, stderr) = run.join().expect("thread");
        assert_eq!(code, 0, "{stderr}");
    }
    let text = std::fs::read_to_string(&log).expect("log");
    let entries: Vec<(String, String, u128)> = text
        .lines()
        .map(|l| {
            let mut f = l.split(' ');
            let what = f.next().unwrap_or_default().to_string();
            let pid = f.next().unwrap_or_default().to_string();
            (
                what,
                pid,
                f.next().and_then(|t| t.parse().ok()).unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(entries.len(), 18, "{text}");
    // Whole runs one after another: three start/end pairs of one
    // process, and each start after the previous end.
    for (i, run) in entries.chunks(6).enumerate() {
        for (j, (what, pid, _)) in run.iter().enumerate() {
            assert_eq!(what, if j % 2 == 0 { "start" } else { "end" }, "{text}");
            assert_eq!(pid, &run[0].1, "run {i} interleaved: {text}");
        }
    }
    for pair in entries.windows(2) {
        assert!(pair[0].2 <= pair[1].2, "time went back: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn several_keys_are_taken_all_or_none() {
    let server = dflockd(&[]);
    let holder = held(server.addr, "b");
    let (code, stdout, stderr) = output(dflock(
        server.addr,
        &["run", "--no-wait", "a", "b", "--", "echo", "ran"],
    ));
    assert_eq!((code, stdout.as_str()), (75, ""));
    assert_eq!(
        stderr,
        "dflock: {a, b} is held elsewhere (--no-wait): not run\n"
    );
    // `a` was taken first and given back.
    drop(held(server.addr, "a"));
    drop(holder);
    let (code, stdout, stderr) = output(dflock(server.addr, &["run", "c", "a", "--", "env"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.lines().any(|l| l == "DFLOCK_KEY=a c"),
        "in the order taken: {stdout}"
    );
    let fences = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DFLOCK_FENCE="))
        .expect("DFLOCK_FENCE");
    assert_eq!(
        fences
            .split(' ')
            .filter(|f| f.parse::<u64>().is_ok())
            .count(),
        2,
        "{fences}"
    );
    let (code, _, stderr) = output(dflock(
        server.addr,
        &["run", "--limit", "2", "a", "b", "--", "true"],
    ));
    assert_eq!(code, 2, "{stderr}");
}
