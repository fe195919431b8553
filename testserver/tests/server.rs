//! The in-process server over real sockets, from a raw client: what a test
//! harness relies on (pause, shutdown, limits, the line cap) and the v2
//! peer-close watcher.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use dflockd_testserver::{Dialect, Options, TestServer};

fn server(dialect: Dialect, tweak: impl FnOnce(&mut Options)) -> TestServer {
    let mut opts = Options {
        dialect,
        port: 0,
        ..Options::default()
    };
    tweak(&mut opts);
    TestServer::start(opts).expect("start")
}

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn new(server: &TestServer) -> Client {
        let stream = TcpStream::connect(server.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, cmd: &str, key: &str, arg: &str) {
        let request = format!("{cmd}\n{key}\n{arg}\n");
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
    }

    /// The next reply line; "" once the server has closed the connection.
    fn reply(&mut self) -> String {
        let mut line = String::new();
        let _ = self.reader.read_line(&mut line);
        line.trim_end().to_string()
    }

    fn ask(&mut self, cmd: &str, key: &str, arg: &str) -> String {
        self.send(cmd, key, arg);
        self.reply()
    }
}

fn waiters(server: &TestServer, key: &str) -> u64 {
    let stats = Client::new(server).ask("stats", "_", "_");
    let json: serde_json::Value = serde_json::from_str(&stats[3..]).expect(&stats);
    json["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == key)
        .map_or(0, |l| l["waiters"].as_u64().unwrap())
}

/// Polls `probe` until true, for at most 10 s: the server's queue has no
/// event a raw client could wait on.
fn eventually(what: &str, mut probe: impl FnMut() -> bool) {
    let started = Instant::now();
    while !probe() {
        assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_waiter_that_hangs_up_leaves_the_queue_at_once_on_v2_and_at_its_timeout_on_v1() {
    for dialect in [Dialect::V1, Dialect::V2] {
        let server = server(dialect, |_| {});
        let mut holder = Client::new(&server);
        assert!(holder.ask("l", "k", "0").starts_with("ok "));
        let mut waiter = Client::new(&server);
        waiter.send("l", "k", "30");
        eventually("one waiter", || waiters(&server, "k") == 1);
        drop(waiter);
        match dialect {
            Dialect::V2 => eventually("the waiter left", || waiters(&server, "k") == 0),
            Dialect::V1 => assert_eq!(waiters(&server, "k"), 1, "v1 keeps it until 30 s"),
        }
    }
}

#[test]
fn a_paused_server_answers_nothing_until_resumed() {
    let server = server(Dialect::V1, |_| {});
    let mut client = Client::new(&server);
    assert_eq!(client.ask("l", "k", "0 1").len(), "ok  1".len() + 32);
    server.pause();
    client.send("stats", "_", "_");
    client
        .reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert_eq!(client.reply(), "", "no reply while paused");
    server.resume();
    client
        .reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(client.reply().starts_with("ok {"), "answered once resumed");
}

#[test]
fn a_v2_shutdown_answers_error_draining_and_closes() {
    let server = server(Dialect::V2, |o| o.shutdown_timeout = Duration::from_secs(2));
    let mut client = Client::new(&server);
    assert_eq!(client.ask("ping", "_", "_"), "ok");
    let addr = server.addr();
    let stopping = std::thread::spawn(move || server.shutdown());
    // The signal is asynchronous: until it lands, requests are served.
    let mut said = String::new();
    eventually("draining", || {
        said = client.ask("ping", "_", "_");
        said != "ok"
    });
    assert_eq!(said, "error_draining");
    assert_eq!(client.reply(), "", "closed after error_draining");
    stopping.join().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

#[test]
fn max_connections_closes_one_more_without_a_word() {
    let server = server(Dialect::V1, |o| o.max_connections = 1);
    let mut first = Client::new(&server);
    assert_eq!(first.ask("l", "k", "0 5").len(), "ok  5".len() + 32);
    let mut second = Client::new(&server);
    assert_eq!(second.ask("l", "j", "0"), "", "closed before any reply");
}

#[test]
fn an_over_long_line_is_error_then_closed_and_a_bad_request_only_error() {
    let server = server(Dialect::V1, |_| {});
    let mut client = Client::new(&server);
    assert_eq!(client.ask("l", "k", "zero"), "error");
    assert!(client.ask("l", "k", "0").starts_with("ok "), "still open");
    assert_eq!(client.ask("l", &"x".repeat(257), "0"), "error");
    assert_eq!(client.reply(), "", "closed");
}
