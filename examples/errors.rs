//! Handling specific errors: every server answer is its own `Error` case, so
//! callers branch with `match` instead of parsing strings. A server-side
//! timeout is not an error: `acquire` returns `None`.

#[path = "support.rs"]
mod support;

use dflockd_host::Error;

fn main() {
    let rt = support::runtime();
    let outcome = support::lock(&rt, "my-key").build().and_then(|lock| {
        let Some(guard) = lock.acquire()? else {
            return Ok("server-side timeout: no slot opened in the acquire timeout".to_string());
        };
        Ok(format!("acquired; released = {}", guard.release()?))
    });
    let message = match outcome {
        Ok(message) => message,
        Err(Error::MaxLocks) => "the server's unique-key cap is reached".into(),
        Err(Error::Draining) => "the server is shutting down".into(),
        Err(Error::Auth) => "the auth token was rejected".into(),
        Err(Error::Connection(why)) => format!("cannot reach the server: {why}"),
        Err(other) => format!("other error: {other}"),
    };
    println!("{message}");
}
