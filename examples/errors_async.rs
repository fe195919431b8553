//! `errors`, async: every failure is one typed `Error`.

#[path = "support.rs"]
mod support;
#[path = "support_async.rs"]
mod support_async;

use dflockd_host::Error;

async fn attempt(rt: &dflockd_host::Runtime) -> Result<String, Error> {
    let lock = support::lock(rt, "my-key").build_async().await?;
    let Some(guard) = lock.acquire().await? else {
        return Ok("server-side timeout: no slot opened in the acquire timeout".to_string());
    };
    Ok(format!("acquired; released = {}", guard.release().await?))
}

fn main() {
    support_async::run(async {
        let rt = support::runtime();
        let message = match attempt(&rt).await {
            Ok(message) => message,
            Err(Error::MaxLocks) => "the server's unique-key cap is reached".into(),
            Err(Error::Draining) => "the server is shutting down".into(),
            Err(Error::Auth) => "the auth token was rejected".into(),
            Err(Error::Connection(why)) => format!("cannot reach the server: {why}"),
            Err(other) => format!("other error: {other}"),
        };
        println!("{message}");
    })
}
