//! `dflock`: run a command under a dflockd lock from any shell, and show
//! what the servers hold. A thin shell over `dflockd-host`'s async API;
//! `dflock --help` says everything it does.

mod args;
mod exit;
mod run;
mod servers;
mod signals;
mod stats;
mod waiting;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use dflockd_host::Runtime;

use crate::args::{Cli, Command};
use crate::servers::Servers;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "dflock", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let servers = match Servers::from_args(&cli.server) {
        Ok(servers) => servers,
        Err(e) => return fail(&e),
    };
    // One thread: dflock waits on a lock and on a child process; the
    // library's own driver threads do the protocol.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("starting the runtime: {e}")),
    };
    let runtime = match Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("loading the dflockd component: {e}")),
    };
    let code = rt.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(&runtime, &servers, args).await,
            Command::Stats(args) => stats::stats(&runtime, &servers, args).await,
            Command::Completions { .. } => unreachable!("answered above"),
        }
    });
    ExitCode::from(code)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("dflock: {message}");
    ExitCode::from(exit::FAILED)
}
