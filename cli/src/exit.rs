//! dflock's own exit statuses (`dflock run --help` lists them); otherwise
//! `run` exits with its command's. The wrapper ones follow GNU `timeout`
//! and `env`: 125 the tool failed, 126 the command cannot run, 127 it is
//! not there.

/// Not acquired within `--wait`: EX_TEMPFAIL of sysexits.h, "try again
/// later" (`--conflict-exit-code` changes it, as `flock -E` does).
pub const NOT_ACQUIRED: u8 = 75;
/// Bad arguments (clap's own status for them).
pub const USAGE: u8 = 2;
/// dflock itself failed: the servers, auth, TLS, a file it had to read.
pub const FAILED: u8 = 125;
/// The command was found but cannot be run.
pub const CANNOT_RUN: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;
/// A signal N ended the command (or dflock while it waited): 128 + N.
pub const SIGNALLED: u8 = 128;
