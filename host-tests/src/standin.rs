//! A stand-in server, named as such: it produces only faults the real
//! dflockd never does (garbage replies, over-long lines, silence, abrupt
//! closes) and records the exact bytes a client sent. It is never used for
//! behaviour the real server has.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

/// What the stand-in does with each request it reads.
#[derive(Clone)]
pub enum Fault {
    /// Answers every request with this raw text (may lack a newline).
    Reply(Vec<u8>),
    /// Reads, never answers, keeps the connection open until the client goes.
    Silent,
    /// Closes the connection after reading one request.
    Close,
}

/// A listening stand-in; `requests` yields every request (three lines) it read.
pub struct StandIn {
    pub addr: SocketAddr,
    pub requests: mpsc::Receiver<String>,
    pub connections: mpsc::Receiver<()>,
}

/// Starts a stand-in on a free loopback port, serving connections one at a time.
pub fn start(fault: Fault) -> StandIn {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind stand-in");
    let addr = listener.local_addr().expect("addr");
    let (req_tx, requests) = mpsc::channel();
    let (conn_tx, connections) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            if conn_tx.send(()).is_err() {
                return;
            }
            let (fault, req_tx) = (fault.clone(), req_tx.clone());
            thread::spawn(move || serve(stream, fault, req_tx));
        }
    });
    StandIn {
        addr,
        requests,
        connections,
    }
}

fn serve(mut stream: TcpStream, fault: Fault, requests: mpsc::Sender<String>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(request) = take_request(&mut pending) {
            let _ = requests.send(request);
            match &fault {
                Fault::Reply(bytes) => {
                    if stream.write_all(bytes).is_err() {
                        return;
                    }
                }
                Fault::Silent => {}
                Fault::Close => return,
            }
        }
    }
}

/// Takes one complete three-line request off the front of `pending`.
fn take_request(pending: &mut Vec<u8>) -> Option<String> {
    let mut newlines = pending
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i);
    let end = newlines.nth(2)? + 1;
    let request: Vec<u8> = pending.drain(..end).collect();
    Some(String::from_utf8_lossy(&request).into_owned())
}
