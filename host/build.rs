//! Embeds the component in the crate: `$DFLOCKD_COMPONENT` when set, else
//! the one packaged beside this file (a crate from crates.io carries it:
//! `cargo xtask dist` puts it there), else this workspace's build
//! (`cargo xtask build`). Without any the crate still builds, and
//! `Runtime::new` looks for the file at run time, saying how to get one.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DFLOCKD_COMPONENT");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let packaged = manifest.join("dflockd_component.wasm");
    let workspace = manifest.join("../target/wasm32-wasip2/guest/dflockd_component.wasm");
    let found = match std::env::var_os("DFLOCKD_COMPONENT") {
        Some(path) => existing(Path::new(&path)),
        None => existing(&packaged).or_else(|| {
            // A copy appearing beside this file must win: watch the folder
            // (watching a missing file would rerun this script every build).
            println!("cargo:rerun-if-changed={}", manifest.display());
            existing(&workspace)
        }),
    };
    match &found {
        Some(found) => println!("cargo:rerun-if-changed={}", found.display()),
        // Until one exists; then once more, to embed it.
        None => println!("cargo:rerun-if-changed={}", workspace.display()),
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

/// The file's canonical path, if it is one.
fn existing(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok().filter(|p| p.is_file())
}
