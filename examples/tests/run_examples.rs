//! Runs the examples against real dflockd processes and checks what they
//! print. The server is the Python dflockd 0.5.0 (see `host_tests::server`),
//! which has no semaphores, auth or stats: the `semaphore`, `auth` and
//! `stats` examples need the Go server and are only compiled here.

use std::process::Command;

use host_tests::server::{python_dflockd, Server};

fn run(example: &str, servers: &[&Server], env: &[(&str, &str)]) -> String {
    let list: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    let exe = match example {
        "hold" => env!("CARGO_BIN_EXE_hold"),
        "fifo" => env!("CARGO_BIN_EXE_fifo"),
        "two_phase" => env!("CARGO_BIN_EXE_two_phase"),
        "errors" => env!("CARGO_BIN_EXE_errors"),
        "sharding" => env!("CARGO_BIN_EXE_sharding"),
        "fencing" => env!("CARGO_BIN_EXE_fencing"),
        other => panic!("no example {other}"),
    };
    let out = Command::new(exe)
        .env("DFLOCKD_SERVERS", list.join(","))
        .env("DFLOCKD_DEMO_SCALE", "0.1")
        .env("DFLOCKD_COMPONENT", host_tests::component_path())
        .envs(env.iter().copied())
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{example}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn hold_keeps_the_lock_past_its_lease() {
    let server = python_dflockd(&["--lease-sweep-interval", "1"]);
    // 45 s × 0.1 = 4.5 s of holding with a 2 s lease.
    let out = run("hold", &[&server], &[("HOLD_LEASE_S", "2")]);
    assert!(out.contains("acquired key=foo"), "{out}");
    assert!(out.contains("still held = true"), "{out}");
    assert!(out.contains("released = true"), "{out}");
}

#[test]
fn fifo_grants_all_nine_workers() {
    let server = python_dflockd(&[]);
    let out = run("fifo", &[&server], &[]);
    for n in 0..9 {
        assert!(
            out.contains(&format!("acquired ({n}): ")),
            "worker {n}: {out}"
        );
    }
}

#[test]
fn two_phase_takes_the_fast_path_on_a_free_key() {
    let server = python_dflockd(&[]);
    let out = run("two_phase", &[&server], &[]);
    assert!(out.contains("enqueue -> Acquired"), "{out}");
    assert!(out.contains("released = true"), "{out}");
}

#[test]
fn errors_branch_on_typed_cases() {
    let server = python_dflockd(&[]);
    assert!(run("errors", &[&server], &[]).contains("acquired; released = true"));
    let mut gone = python_dflockd(&[]);
    gone.kill();
    assert!(run("errors", &[&gone], &[]).contains("cannot reach the server"));
}

#[test]
fn sharding_routes_keys_with_the_crc32_formula() {
    let servers = [
        python_dflockd(&[]),
        python_dflockd(&[]),
        python_dflockd(&[]),
    ];
    let out = run("sharding", &servers.iter().collect::<Vec<_>>(), &[]);
    for key in ["user:42:profile", "orders", "row:42"] {
        let index = crc32(key) % 3;
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .expect(key);
        assert!(
            line.contains(&format!(
                "server {index} ({})",
                servers[index as usize].addr
            )),
            "{line}"
        );
        assert!(line.ends_with("released = true"), "{line}");
    }
}

#[test]
fn fencing_refuses_a_late_writer() {
    let server = python_dflockd(&[]);
    let out = run("fencing", &[&server], &[]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("round ")).count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("a late writer with the first fence") && out.contains("-> Err("),
        "{out}"
    );
}

/// CRC-32 (IEEE), bit by bit: an independent check of the routing formula.
fn crc32(key: &str) -> u32 {
    let mut crc = !0u32;
    for byte in key.bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
