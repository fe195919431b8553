//! `auth`, async: a server started with `--auth-token` wants the same token.

#[path = "support.rs"]
mod support;
#[path = "support_async.rs"]
mod support_async;

fn main() -> Result<(), dflockd_host::Error> {
    support_async::run(async {
        let rt = support::runtime();
        let token = std::env::var("DFLOCKD_AUTH_TOKEN").unwrap_or_else(|_| "shared-secret".into());
        let lock = support::lock(&rt, "my-key")
            .auth_token(token)
            .build_async()
            .await?;
        match lock.acquire().await {
            Ok(Some(guard)) => println!(
                "authenticated and acquired; released = {}",
                guard.release().await?
            ),
            Ok(None) => println!("authenticated; not acquired within the timeout"),
            Err(dflockd_host::Error::Auth) => {
                println!("a wrong or missing token surfaces as Error::Auth")
            }
            Err(e) => return Err(e),
        }
        Ok(())
    })
}
