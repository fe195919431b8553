//! Fencing tokens: the grant token's first 16 hex characters are a fence
//! that rises on every grant from a server (dflockd with fence-prefix
//! tokens). A downstream store keeps the highest fence per key and refuses
//! writes with a lower or equal one.

#[path = "support.rs"]
mod support;

use std::collections::HashMap;

/// A toy downstream store that checks fences.
#[derive(Default)]
struct Store {
    highest: HashMap<String, u64>,
}

impl Store {
    fn write(&mut self, key: &str, fence: u64) -> Result<(), u64> {
        let highest = self.highest.entry(key.to_string()).or_insert(0);
        if fence <= *highest {
            return Err(*highest);
        }
        *highest = fence;
        Ok(())
    }
}

fn main() -> Result<(), dflockd_host::Error> {
    let rt = support::runtime();
    let mut store = Store::default();
    let mut fences = Vec::new();
    for round in 0..3 {
        let lock = support::lock(&rt, "row:42").build()?;
        let Some(guard) = lock.acquire()? else {
            continue;
        };
        let fence = guard.fence()?.unwrap_or_default();
        fences.push(fence);
        println!(
            "round {round}: fence {fence} -> write {:?}",
            store.write("row:42", fence)
        );
    }
    if let Some(&first) = fences.first() {
        println!(
            "a late writer with the first fence {first} -> {:?}",
            store.write("row:42", first)
        );
    }
    Ok(())
}
