//! Runs every example, blocking and async, against a dialect-v1 server (and
//! `fencing` in both dialects; see `host_tests::server`) and checks what
//! each prints.

use std::process::Command;

use host_tests::server::{dflockd, Server};

fn run(example: &str, servers: &[&Server], env: &[(&str, &str)]) -> String {
    let list: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    let exe = match example {
        "hold" => env!("CARGO_BIN_EXE_hold"),
        "hold_async" => env!("CARGO_BIN_EXE_hold_async"),
        "fifo" => env!("CARGO_BIN_EXE_fifo"),
        "fifo_async" => env!("CARGO_BIN_EXE_fifo_async"),
        "two_phase" => env!("CARGO_BIN_EXE_two_phase"),
        "two_phase_async" => env!("CARGO_BIN_EXE_two_phase_async"),
        "errors" => env!("CARGO_BIN_EXE_errors"),
        "errors_async" => env!("CARGO_BIN_EXE_errors_async"),
        "sharding" => env!("CARGO_BIN_EXE_sharding"),
        "sharding_async" => env!("CARGO_BIN_EXE_sharding_async"),
        "fencing" => env!("CARGO_BIN_EXE_fencing"),
        "fencing_async" => env!("CARGO_BIN_EXE_fencing_async"),
        "semaphore" => env!("CARGO_BIN_EXE_semaphore"),
        "semaphore_async" => env!("CARGO_BIN_EXE_semaphore_async"),
        "lock_set" => env!("CARGO_BIN_EXE_lock_set"),
        "lock_set_async" => env!("CARGO_BIN_EXE_lock_set_async"),
        "auth" => env!("CARGO_BIN_EXE_auth"),
        "auth_async" => env!("CARGO_BIN_EXE_auth_async"),
        "stats" => env!("CARGO_BIN_EXE_stats"),
        "stats_async" => env!("CARGO_BIN_EXE_stats_async"),
        "tls" => env!("CARGO_BIN_EXE_tls"),
        "tls_async" => env!("CARGO_BIN_EXE_tls_async"),
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

/// Runs the blocking example and its async twin; both outputs.
fn both(example: &str, servers: &[&Server], env: &[(&str, &str)]) -> [String; 2] {
    [
        run(example, servers, env),
        run(&format!("{example}_async"), servers, env),
    ]
}

#[test]
fn hold_keeps_the_lock_past_its_lease() {
    let server = dflockd(&[]);
    // 45 s × 0.1 = 4.5 s of holding with a 2 s lease.
    for out in both("hold", &[&server], &[("HOLD_LEASE_S", "2")]) {
        assert!(out.contains("acquired key=foo"), "{out}");
        assert!(
            out.contains("after holding 4.5 s with a 2 s lease: still held = true"),
            "{out}"
        );
        // At 1 s, 2 s, 3 s and 4 s: at least three confirmed by the last pass.
        let confirmed: u64 = out
            .split("confirmed=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counters in {out}"));
        assert!(confirmed >= 3, "{out}");
        assert!(out.contains("connects=1 lost=0"), "{out}");
        assert!(out.contains("released = true"), "{out}");
    }
}

#[test]
fn fifo_grants_all_nine_workers() {
    let server = dflockd(&[]);
    for out in both("fifo", &[&server], &[]) {
        for n in 0..9 {
            assert!(
                out.contains(&format!("acquired ({n}): ")),
                "worker {n}: {out}"
            );
        }
    }
}

#[test]
fn two_phase_takes_the_fast_path_on_a_free_key() {
    let server = dflockd(&[]);
    for out in both("two_phase", &[&server], &[]) {
        assert!(out.contains("enqueue -> acquired"), "{out}");
        assert!(out.contains("released = true"), "{out}");
    }
}

#[test]
fn errors_branch_on_typed_cases() {
    let server = dflockd(&[]);
    for out in both("errors", &[&server], &[]) {
        assert!(out.contains("acquired; released = true"), "{out}");
    }
    let mut gone = dflockd(&[]);
    gone.kill();
    for out in both("errors", &[&gone], &[]) {
        assert!(out.contains("cannot reach the server"), "{out}");
    }
}

#[test]
fn sharding_routes_keys_with_the_crc32_formula() {
    let servers = [dflockd(&[]), dflockd(&[]), dflockd(&[])];
    for out in both("sharding", &servers.iter().collect::<Vec<_>>(), &[]) {
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
}

#[test]
fn fencing_refuses_a_late_writer_and_says_whether_fences_rose() {
    for dialect in host_tests::server::dialects() {
        let server = host_tests::server::dflockd_in(dialect, &[]);
        fencing_on(&server, dialect);
    }
}

fn fencing_on(server: &host_tests::server::Server, dialect: host_tests::server::Dialect) {
    use host_tests::server::Dialect;
    for out in both("fencing", &[server], &[]) {
        assert_eq!(
            out.lines().filter(|l| l.starts_with("round ")).count(),
            8,
            "{out}"
        );
        let said = match dialect {
            Dialect::V1 => "fences did not rise: this server issues random tokens (dflockd 1.x)",
            Dialect::V2 => "fences rose on all 8 grants: this server issues fence-prefix tokens",
        };
        assert!(out.contains(said), "{dialect}: {out}");
        assert!(
            out.contains("a late writer with the first fence") && out.contains("-> Err("),
            "{out}"
        );
    }
}

#[test]
fn semaphore_serves_nine_workers_three_at_a_time() {
    let server = dflockd(&[]);
    for out in both("semaphore", &[&server], &[]) {
        for n in 0..9 {
            assert!(
                out.contains(&format!("acquired ({n}): ")),
                "worker {n}: {out}"
            );
        }
    }
}

#[test]
fn lock_set_runs_every_transfer_holding_both_accounts() {
    let server = dflockd(&[]);
    for out in both("lock_set", &[&server], &[]) {
        for n in 0..6 {
            assert!(
                out.contains(&format!("transfer ({n}) ")),
                "transfer {n}: {out}"
            );
        }
        assert_eq!(out.matches("holding [").count(), 6, "{out}");
    }
}

#[test]
fn auth_works_with_the_right_token_and_is_typed_with_a_wrong_one() {
    let server = dflockd(&["--auth-token", "example-secret"]);
    let right = both(
        "auth",
        &[&server],
        &[("DFLOCKD_AUTH_TOKEN", "example-secret")],
    );
    for right in right {
        assert!(
            right.contains("authenticated and acquired; released = true"),
            "{right}"
        );
    }
    let wrong = both(
        "auth",
        &[&server],
        &[("DFLOCKD_AUTH_TOKEN", "not-the-secret")],
    );
    for wrong in wrong {
        assert!(
            wrong.contains("a wrong or missing token surfaces as Error::Auth"),
            "{wrong}"
        );
    }
}

#[test]
fn stats_prints_the_server_tables() {
    let server = dflockd(&[]);
    for out in both("stats", &[&server], &[]) {
        assert!(out.contains("connections: 1"), "{out}");
        assert!(
            out.contains("locks: []") && out.contains("semaphores: []"),
            "{out}"
        );
    }
}

#[test]
fn tls_with_auth_against_a_server_with_a_throwaway_ca() {
    let pki = host_tests::certs::Pki::new("example-ca");
    let ca = pki.ca_file();
    let server =
        host_tests::server::dflockd_tls(&pki.localhost(), &["--auth-token", "example-secret"]);
    let env = [
        ("DFLOCKD_TLS_CA", ca.to_str().unwrap()),
        ("DFLOCKD_AUTH_TOKEN", "example-secret"),
    ];
    for out in both("tls", &[&server], &env) {
        assert!(out.contains("acquired over TLS: token "), "{out}");
        assert!(out.contains("released = true"), "{out}");
    }
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
