//! Embeds the component in the crate when one exists at build time:
//! `$DFLOCKD_COMPONENT`, else this workspace's build (`cargo xtask build`).
//! Without one the crate still builds, and `Runtime::new` looks for the
//! file at run time, saying how to get one.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DFLOCKD_COMPONENT");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let path = std::env::var_os("DFLOCKD_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target/wasm32-wasip2/guest/dflockd_component.wasm"));
    println!("cargo:rerun-if-changed={}", path.display());
    let code = match std::fs::canonicalize(&path) {
        Ok(found) if found.is_file() => format!(
            "/// The component found at build time.\n\
             pub(crate) const EMBEDDED: Option<&[u8]> = Some(include_bytes!({:?}));\n",
            found.display().to_string()
        ),
        _ => "/// No component was found at build time.\n\
              pub(crate) const EMBEDDED: Option<&[u8]> = None;\n"
            .to_string(),
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
