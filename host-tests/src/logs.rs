//! Every `tracing` event of the test process, captured as text, for tests
//! that check what the host logs (and that it logs no secret).

use std::io::Write;
use std::sync::{Arc, Mutex};

/// The captured log lines.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Installs the process's subscriber, at `level` and above; once per test
/// binary (a second call panics), so such a test is alone in its binary.
pub fn capture(level: tracing::Level) -> Captured {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(move || writer.clone())
        .init();
    logs
}
