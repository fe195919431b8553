//! Log lines on stderr in the shape dflockd's (Go `slog` text) has:
//! `time=… level=INFO msg=listening addr=127.0.0.1:6388`. Harnesses wait
//! for `msg=listening`, the same with a real dflockd.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn line(level: &str, msg: &str, attrs: &[(&str, &str)]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = format!(
        "time={}.{:03} level={level} msg={}",
        now.as_secs(),
        now.subsec_millis(),
        quoted(msg)
    );
    for (key, value) in attrs {
        out.push_str(&format!(" {key}={}", quoted(value)));
    }
    out.push('\n');
    // One write per line, so that lines of concurrent tasks never interleave.
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

fn quoted(text: &str) -> String {
    if text.is_empty() || text.contains([' ', '"', '=']) {
        format!("{text:?}")
    } else {
        text.to_string()
    }
}

/// An `INFO` line.
pub fn info(msg: &str, attrs: &[(&str, &str)]) {
    line("INFO", msg, attrs);
}

/// A `WARN` line.
pub fn warn(msg: &str, attrs: &[(&str, &str)]) {
    line("WARN", msg, attrs);
}
