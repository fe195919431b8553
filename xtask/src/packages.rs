//! The npm tarball and the wheel, each carrying the component it is given.

use std::path::Path;
use std::process::Command;

use crate::{python, root, run, Step};

/// `npm pack` of `hosts/node`, with `component` transpiled by jco into it.
pub fn npm(component: &Path, out: &Path) -> Step {
    let dir = root().join("hosts/node");
    run(Command::new("node")
        .arg(dir.join("transpile.mjs"))
        .arg(component))?;
    run(Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(out)
        .current_dir(&dir))
}

/// The wheel of `hosts/python`, with `component` inside; built in an
/// isolated environment by `python -m build` (the build venv holds only
/// `build`: `python::BUILD`).
pub fn wheel(component: &Path, out: &Path) -> Step {
    let package = root().join("hosts/python/dflockd_component");
    let inside = package.join("dflockd_component.wasm");
    std::fs::copy(component, &inside).map_err(|e| format!("{}: {e}", inside.display()))?;
    let built = python::install(&python::BUILD).and_then(|()| {
        run(Command::new(python::BUILD.python())
            .args(["-m", "build", "--wheel", "--outdir"])
            .arg(out)
            .arg(root().join("hosts/python")))
    });
    // A copy left in the checkout would shadow the next component build.
    let _ = std::fs::remove_file(&inside);
    built
}
