//! Embeds the component in the crate: `$DFLOCKD_COMPONENT` when set, else
//! the one packaged beside this file (a crate from crates.io carries it:
//! `cargo xtask dist` puts it there), else this workspace's build
//! (`cargo xtask build`). Without any the crate still builds, and
//! `Runtime::new` looks for the file at run time, saying how to get one.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DFLOCKD_COMPONENT");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let candidates = [
        std::env::var_os("DFLOCKD_COMPONENT").map(PathBuf::from),
        Some(manifest.join("dflockd_component.wasm")),
        Some(manifest.join("../target/wasm32-wasip2/guest/dflockd_component.wasm")),
    ];
    let mut found = None;
    for path in candidates.into_iter().flatten() {
        println!("cargo:rerun-if-changed={}", path.display());
        if found.is_none() {
            found = std::fs::canonicalize(&path).ok().filter(|p| p.is_file());
        }
        // An explicit `$DFLOCKD_COMPONENT` is the only one looked at.
        if std::env::var_os("DFLOCKD_COMPONENT").is_some() {
            break;
        }
    }
    let code = match found {
        Some(found) => format!(
            "/// The component found at build time.\n\
             pub(crate) const EMBEDDED: Option<&[u8]> = Some(include_bytes!({:?}));\n",
            found.display().to_string()
        ),
        None => "/// No component was found at build time.\n\
                 pub(crate) const EMBEDDED: Option<&[u8]> = None;\n"
            .to_string(),
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
