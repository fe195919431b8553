//! `dflockd-testserver`: the test server with dflockd's flags (see
//! `--help`), stopped gracefully by SIGTERM or SIGINT.

use dflockd_testserver::options::{self, Command};
use dflockd_testserver::Stop;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match options::parse(&args) {
        Ok(Command::Serve(opts)) => *opts,
        Ok(Command::Version) => {
            println!("dflockd-testserver {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Ok(Command::Help) => {
            println!("{}", options::USAGE);
            return;
        }
        Err(e) => {
            eprintln!("configuration error: {e}\n{}", options::USAGE);
            std::process::exit(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
            .await
            .map_err(|e| format!("listen: {e}"))?;
        dflockd_testserver::serve(opts, listener, signalled()).await
    });
    if let Err(e) = result {
        eprintln!("server error: {e}");
        std::process::exit(1);
    }
}

/// SIGTERM or SIGINT: a graceful stop, as dflockd does.
async fn signalled() -> Stop {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
    Stop::Graceful
}
