//! Authentication: connect to a server started with `--auth-token`.
//! `DFLOCKD_AUTH_TOKEN` (default `shared-secret`) is the token.

#[path = "support.rs"]
mod support;

fn main() -> Result<(), dflockd_host::Error> {
    let rt = support::runtime();
    let token = std::env::var("DFLOCKD_AUTH_TOKEN").unwrap_or_else(|_| "shared-secret".into());
    let lock = support::lock(&rt, "my-key").auth_token(token).build()?;
    match lock.acquire() {
        Ok(Some(guard)) => println!(
            "authenticated and acquired; released = {}",
            guard.release()?
        ),
        Ok(None) => println!("authenticated; not acquired within the timeout"),
        Err(dflockd_host::Error::Auth) => {
            println!("a wrong or missing token surfaces as Error::Auth")
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
