//! Cross-client interop on one server: the component through `dflockd-host`
//! (blocking threads and tokio tasks), the Python client 2.1.1, and the
//! component in Node (jco) and in Python (wasmtime-py) contend on the same
//! keys at once. Each logs its critical sections on CLOCK_MONOTONIC; no two
//! sections on one key may overlap, and each client must complete its
//! share. The component and the Python client route keys with the same
//! CRC-32.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::thread;

use host_tests::interop::{monotonic_ns, node_host, python_client, python_host};
use host_tests::server::dflockd;
use host_tests::{instance, lock_on};

const KEYS: [&str; 3] = ["interop:a", "interop:b", "interop:c"];
const WORKERS: usize = 2;
const ROUNDS: usize = 160;

/// One critical section: who, which key, when (CLOCK_MONOTONIC ns).
#[derive(Debug, Clone)]
struct Section {
    client: &'static str,
    key: String,
    start: i64,
    end: i64,
}

/// Starts a contender with `workers` workers and waits for its "ready" line.
fn start(mut cmd: std::process::Command, addr: std::net::SocketAddr, workers: usize) -> Child {
    let mut child = cmd
        .args([
            "contend",
            "--server",
            &addr.to_string(),
            "--keys",
            &KEYS.join(","),
        ])
        .args([
            "--workers",
            &workers.to_string(),
            "--rounds",
            &ROUNDS.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a contender");
    let mut ready = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready", "{cmd:?}");
    child
}

fn finish(mut child: Child, client: &'static str) -> Vec<Section> {
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{client}: {status}: {err}");
    out.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 3, "{client}: {line:?}");
            Section {
                client,
                key: f[0].into(),
                start: f[1].parse().unwrap(),
                end: f[2].parse().unwrap(),
            }
        })
        .collect()
}

/// The component's async contenders: WORKERS tokio tasks, one lock object
/// per key each.
fn component_async_sections(addr: std::net::SocketAddr) -> Vec<Section> {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async move {
        let tasks: Vec<_> = (0..WORKERS)
            .map(|w| {
                tokio::spawn(async move {
                    let mut locks = Vec::new();
                    for k in KEYS {
                        let lock = lock_on(addr, k)
                            .acquire_timeout_s(60)
                            .lease_ttl_s(10)
                            .build_async()
                            .await
                            .unwrap();
                        locks.push(lock);
                    }
                    let mut sections = Vec::new();
                    for i in 0..ROUNDS {
                        let lock = &locks[(w + i) % KEYS.len()];
                        let guard = lock.acquire().await.unwrap().expect("granted");
                        let start = monotonic_ns();
                        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                        let end = monotonic_ns();
                        assert_eq!(guard.release().await, Ok(true));
                        sections.push(Section {
                            client: "component async",
                            key: lock.key().into(),
                            start,
                            end,
                        });
                    }
                    sections
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    })
}

/// The component's contenders: WORKERS threads, one lock object per key each.
fn component_sections(addr: std::net::SocketAddr) -> Vec<Section> {
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            thread::spawn(move || {
                let locks: Vec<_> = KEYS
                    .iter()
                    .map(|k| {
                        lock_on(addr, k)
                            .acquire_timeout_s(60)
                            .lease_ttl_s(10)
                            .build()
                            .unwrap()
                    })
                    .collect();
                let mut sections = Vec::new();
                for i in 0..ROUNDS {
                    let lock = &locks[(w + i) % KEYS.len()];
                    let guard = lock.acquire().unwrap().expect("granted within 60 s");
                    let start = monotonic_ns();
                    thread::sleep(std::time::Duration::from_micros(200)); // the work
                    let end = monotonic_ns();
                    assert_eq!(guard.release(), Ok(true));
                    sections.push(Section {
                        client: "component",
                        key: lock.key().into(),
                        start,
                        end,
                    });
                }
                sections
            })
        })
        .collect();
    workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect()
}

#[test]
fn five_kinds_of_client_exclude_each_other_on_shared_keys() {
    let server = dflockd(&[]);
    // Each other client and how many workers it runs (the Node side,
    // contend.mjs, is one caller).
    let others = [
        ("python", python_client(), WORKERS),
        ("python host", python_host(), WORKERS),
        ("node host", node_host(), 1),
    ];
    let mut expected = BTreeMap::from([
        ("component", WORKERS * ROUNDS),
        ("component async", WORKERS * ROUNDS),
    ]);
    let mut children = Vec::new();
    for (name, cmd, workers) in others {
        children.push((name, start(cmd, server.addr, workers)));
        expected.insert(name, workers * ROUNDS);
    }
    for (_, child) in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let addr = server.addr;
    let asynchronous = thread::spawn(move || component_async_sections(addr));
    let mut all = component_sections(server.addr);
    all.extend(asynchronous.join().unwrap());
    for (name, child) in children {
        all.extend(finish(child, name));
    }

    let mut per_client = BTreeMap::new();
    for s in &all {
        *per_client.entry(s.client).or_insert(0) += 1;
    }
    for (client, want) in &expected {
        let done = per_client.get(client).copied().unwrap_or(0);
        assert_eq!(
            done, *want,
            "{client} completed {done} sections: {per_client:?}"
        );
    }
    for key in KEYS {
        let mut on_key: Vec<&Section> = all.iter().filter(|s| s.key == key).collect();
        on_key.sort_by_key(|s| s.start);
        let mut handovers = 0;
        for pair in on_key.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(a.start <= a.end, "{a:?}");
            assert!(a.end < b.start, "{key}: sections overlap: {a:?} and {b:?}");
            handovers += usize::from(a.client != b.client);
        }
        assert!(
            handovers > 0,
            "{key}: no client ever handed the key to another"
        );
    }
}

#[test]
fn the_component_and_the_python_client_route_a_thousand_keys_to_the_same_server() {
    let keys: Vec<String> = (0..1000)
        .map(|i| match i % 4 {
            0 => format!("key-{i}"),
            1 => format!("user:{i}:profile"),
            2 => format!("ключ-{i}"),
            _ => format!("🔒/{i}/{}", "x".repeat(i % 50)),
        })
        .collect();
    let input = keys.join("\n") + "\n";
    for n in [3u32, 7] {
        let mut inst = instance(&[]);
        let ours: Vec<u32> = keys
            .iter()
            .map(|k| {
                inst.client
                    .dflockd_client_sharding()
                    .call_shard_index(&mut inst.store, k, n)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        for (name, mut cmd) in [("python", python_client())] {
            let mut child = cmd
                .args(["shard", "--n", &n.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{name}");
            let theirs: Vec<u32> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| l.parse().unwrap())
                .collect();
            assert_eq!(theirs.len(), keys.len(), "{name}");
            for ((key, a), b) in keys.iter().zip(&ours).zip(&theirs) {
                assert_eq!(a, b, "{name} routes {key:?} elsewhere (n = {n})");
            }
        }
    }
}
