//! The command line: every subcommand, flag and environment variable, with
//! the help text `dflock --help` prints.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;

/// Run commands under dflockd locks, from any shell.
#[derive(Debug, Parser)]
#[command(
    name = "dflock",
    version,
    about,
    long_about = "Run a command under a dflockd lock or semaphore slot (like flock(1), but \
                  across machines), and show what a dflockd server holds.",
    after_help = "Examples:\n  \
        dflock run nightly-backup -- ./backup.sh\n  \
        dflock --servers db1:6388,db2:6388 run --no-wait deploy -- ./deploy.sh\n  \
        dflock stats --watch 2"
)]
pub struct Cli {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the servers: the same flags in every subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Servers")]
pub struct ServerArgs {
    /// The servers, HOST:PORT separated by commas; a key goes to one of
    /// them by CRC-32, as in every dflockd client.
    #[arg(
        long,
        global = true,
        env = "DFLOCKD_SERVERS",
        value_delimiter = ',',
        default_value = "127.0.0.1:6388",
        value_name = "HOST:PORT,…",
        value_parser = crate::servers::host_port
    )]
    pub servers: Vec<(String, u16)>,
    /// A file holding the servers' auth token (`--auth-token` of dflockd);
    /// never a flag, so that it stays out of `ps`.
    #[arg(
        long,
        global = true,
        env = "DFLOCKD_AUTH_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub auth_token_file: Option<PathBuf>,
    /// Speak TLS, verified against the Mozilla roots (or `--ca`).
    #[arg(long, global = true, env = "DFLOCKD_TLS")]
    pub tls: bool,
    /// Verify the servers against this CA (PEM) instead; implies `--tls`.
    #[arg(long, global = true, env = "DFLOCKD_CA", value_name = "PATH")]
    pub ca: Option<PathBuf>,
    /// The name the servers' certificates must carry (default: the host
    /// of each server); implies `--tls`.
    #[arg(long, global = true, env = "DFLOCKD_SERVER_NAME", value_name = "NAME")]
    pub server_name: Option<String>,
    /// A client certificate chain (PEM) for servers that require one;
    /// needs `--key`; implies `--tls`.
    #[arg(
        long = "cert",
        global = true,
        env = "DFLOCKD_CLIENT_CERT",
        value_name = "PATH",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long = "key",
        global = true,
        env = "DFLOCKD_CLIENT_KEY",
        value_name = "PATH",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// Give up connecting after this many milliseconds.
    #[arg(long, global = true, default_value_t = 10_000, value_name = "MS")]
    pub connect_timeout_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take a lock (or a semaphore slot), run a command while holding it,
    /// release it when the command exits.
    #[command(
        long_about = "Take a lock on KEY (a slot of a semaphore with --limit; with several \
                      keys, all of them or none, in one order whatever the order given), run \
                      CMD with its standard input, output and error while holding it, \
                      renewing the lease as it runs, and release it when CMD exits. dflock exits with \
                      CMD's exit code (128 + N when a signal N ended it). CMD sees \
                      DFLOCK_KEY and DFLOCK_FENCE (the grant's fencing number; with several \
                      keys, each list separated by spaces, in the order taken), never the \
                      lock's token. SIGINT, SIGTERM and SIGHUP sent to dflock are passed to \
                      CMD (Ctrl-C on a terminal reaches CMD directly, once). If the lease is lost (the server went away, or froze past the \
                      lease), CMD gets SIGTERM, then SIGKILL after --kill-after seconds.",
        after_help = EXIT_CODES_HELP
    )]
    Run(RunArgs),
    /// Show the servers' locks, semaphores, holders, waiters and connections.
    #[command(after_help = "Examples:\n  \
        dflock stats\n  \
        dflock stats --json | jq '.[0].locks'\n  \
        dflock --servers a:6388,b:6388 stats --watch 2")]
    Stats(StatsArgs),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  dflock completions bash > /etc/bash_completion.d/dflock")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

const EXIT_CODES_HELP: &str = "Exit status:\n  \
    CMD's  CMD ran: its exit code, or 128 + N when signal N ended it\n  \
    75     not acquired within --wait, or at once with --no-wait (--conflict-exit-code)\n  \
    2      bad arguments\n  \
    125    dflock failed: the server unreachable or refusing, auth, TLS, a file unreadable\n  \
    126    CMD cannot be run\n  \
    127    CMD not found\n\n\
    Examples:\n  \
    dflock run nightly-report -- ./report.sh         # cron: one machine at a time\n  \
    dflock run --no-wait deploy -- ./deploy.sh       # skip if a deploy runs\n  \
    dflock run --wait 600 migrate -- ./migrate.sh    # wait up to 10 minutes\n  \
    dflock run --limit 3 encode -- ./encode.sh in    # at most 3 at once\n  \
    dflock run acct:17 acct:42 -- ./transfer.sh      # both accounts, or wait";

/// The longest time the protocol can say (292 years).
pub const MAX_SECONDS: u64 = 9_223_372_036;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The lock's (or semaphore's) key; several keys make a lock set,
    /// taken all or none.
    #[arg(value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// Take one of N slots of a semaphore on KEY instead of the lock.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Wait at most this many seconds for the lock (default: as long as it takes).
    #[arg(
        long,
        value_name = "SECONDS",
        conflicts_with = "no_wait",
        value_parser = clap::value_parser!(u64).range(..=MAX_SECONDS)
    )]
    pub wait: Option<u64>,
    /// Do not wait: run only if the lock is free now.
    #[arg(long)]
    pub no_wait: bool,
    /// The lease in seconds (default: the server's); renewed while CMD runs.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub lease: Option<u64>,
    /// What to do when the lease is lost while CMD runs.
    #[arg(long, value_enum, default_value_t = OnLost::Kill)]
    pub on_lost: OnLost,
    /// After a lost lease, seconds between CMD's SIGTERM and its SIGKILL.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub kill_after: u64,
    /// The exit status when the lock was not acquired.
    #[arg(long, default_value_t = exit::NOT_ACQUIRED, value_name = "N")]
    pub conflict_exit_code: u8,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnLost {
    /// SIGTERM to CMD, SIGKILL after --kill-after.
    Kill,
    /// Only say so on stderr; CMD runs on.
    Warn,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// JSON for scripts: an array with one object per server.
    #[arg(long)]
    pub json: bool,
    /// Show them again every SECONDS until interrupted.
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<f64>,
}
