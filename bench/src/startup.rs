//! Start-up costs, in a child process of its own (`startup` mode): compiling
//! the component, loading it from the on-disk cache, instantiating it, and
//! the first acquire of a fresh lock object.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dflockd_host::Runtime;

/// Milliseconds of each start-up step.
#[derive(Debug, Clone, Copy)]
pub struct Startup {
    /// `Runtime::new` with no cache: compile.
    pub compile_ms: f64,
    /// `Runtime::new` from a warm cache.
    pub cached_load_ms: f64,
    /// One sandboxed instance (median).
    pub instantiate_ms: f64,
    /// Build a lock, connect, acquire, release, on a fresh object (median).
    pub first_acquire_ms: f64,
}

impl Startup {
    /// One line for the parent process.
    pub fn to_line(self) -> String {
        format!(
            "compile_ms {:.1} cached_load_ms {:.2} instantiate_ms {:.3} first_acquire_ms {:.3}",
            self.compile_ms, self.cached_load_ms, self.instantiate_ms, self.first_acquire_ms
        )
    }

    /// Parses [`to_line`](Self::to_line).
    pub fn from_line(line: &str) -> Option<Startup> {
        let get = |name: &str| crate::named_value(line, name);
        Some(Startup {
            compile_ms: get("compile_ms")?,
            cached_load_ms: get("cached_load_ms")?,
            instantiate_ms: get("instantiate_ms")?,
            first_acquire_ms: get("first_acquire_ms")?,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    ms(samples[samples.len() / 2])
}

/// Measures every step against the server at `addr`.
pub fn measure(addr: SocketAddr) -> Startup {
    let t0 = Instant::now();
    Runtime::builder().no_cache().build().expect("compile");
    let compile_ms = ms(t0.elapsed());
    let cache = std::env::temp_dir().join(format!("dflockd-bench-cache-{}", std::process::id()));
    Runtime::builder()
        .cache_dir(&cache)
        .build()
        .expect("fill the cache");
    let t0 = Instant::now();
    let rt = Runtime::builder()
        .cache_dir(&cache)
        .build()
        .expect("cached load");
    let cached_load_ms = ms(t0.elapsed());
    // Bare instantiation, as the tests' bindings link it (one linker, then
    // one store and instance each time).
    let raw = host_tests::raw::Raw::new(&rt).expect("link");
    let _ = std::fs::remove_dir_all(&cache);
    let instantiate = (0..101)
        .map(|_| {
            let t0 = Instant::now();
            drop(raw.instance(&[addr]).expect("instantiate"));
            t0.elapsed()
        })
        .collect();
    let first = (0..51)
        .map(|i| {
            let t0 = Instant::now();
            let lock = rt
                .lock(format!("startup-{i}"))
                .server(addr.ip().to_string(), addr.port())
                .build()
                .expect("build");
            let guard = lock.acquire().expect("acquire").expect("granted");
            guard.release().expect("release");
            t0.elapsed()
        })
        .collect();
    Startup {
        compile_ms,
        cached_load_ms,
        instantiate_ms: median(instantiate),
        first_acquire_ms: median(first),
    }
}
