//! The pinned dflockd server and the upstream Go client's interop program,
//! both at fixed paths under `target/dflockd/<version>/`.
//!
//! The server comes from, in order: `DFLOCKD_BIN` (a binary the user already
//! has), `DFLOCKD_SRC` (a source tree: `go build`), `../shared/dflockd` beside
//! the checkout (this project's machines and CI), then `go install` from the
//! public Go module proxy. The Go interop program (`interop/go`) is built
//! against the same source, or the proxy's copy of the module.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, run, Step};

/// The pinned version, from `dflockd.version` (its one place).
pub fn version() -> &'static str {
    include_str!("../../dflockd.version").trim()
}

/// Where the tests, the demo and the bench find the server.
pub fn dir() -> PathBuf {
    root().join("target/dflockd").join(version())
}

const MODULE: &str = "github.com/mtingers/dflockd";

pub fn setup() -> Step {
    let dir = dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let server = dir.join("dflockd");
    let interop = dir.join("dflockd-interop");
    let bench = dir.join("dflockd-bench");
    let source = source()?;
    if !reports_version(&server) {
        install_server(&server, source.as_deref())?;
    }
    if !bench.exists() {
        install_go_bench(&bench, source.as_deref())?;
    }
    if !interop.exists() || newer(&root().join("interop/go/main.go"), &interop) {
        build_interop(&interop, source.as_deref())?;
    }
    Ok(())
}

/// `DFLOCKD_SRC`, else `../shared/dflockd` when it exists; checked to be the
/// pinned release.
fn source() -> Result<Option<PathBuf>, String> {
    let explicit = std::env::var_os("DFLOCKD_SRC").map(PathBuf::from);
    let beside = root().join("../shared/dflockd");
    let Some(src) = explicit.or_else(|| beside.exists().then_some(beside)) else {
        return Ok(None);
    };
    let changelog = std::fs::read_to_string(src.join("CHANGELOG.md"))
        .map_err(|e| format!("DFLOCKD_SRC={}: no CHANGELOG.md ({e})", src.display()))?;
    let newest = changelog.lines().find(|l| l.starts_with("## ["));
    let want = format!("## [{}]", version());
    if !newest.is_some_and(|l| l.starts_with(&want)) {
        return Err(format!(
            "DFLOCKD_SRC={} is not dflockd {} (its newest CHANGELOG entry: {newest:?})",
            src.display(),
            version()
        ));
    }
    let src = src
        .canonicalize()
        .map_err(|e| format!("{}: {e}", src.display()))?;
    Ok(Some(src))
}

fn install_server(dest: &Path, source: Option<&Path>) -> Step {
    let ldflags = format!("-X main.version={}", version());
    if let Some(bin) = std::env::var_os("DFLOCKD_BIN").map(PathBuf::from) {
        eprintln!("dflockd: using DFLOCKD_BIN={}", bin.display());
        if !reports_version(&bin) && !go_build_info_has_version(&bin) {
            return Err(format!(
                "DFLOCKD_BIN={} is not dflockd {} (neither `--version` nor `go version -m` says so)",
                bin.display(),
                version()
            ));
        }
        std::fs::copy(&bin, dest).map_err(|e| format!("copying {}: {e}", bin.display()))?;
        return Ok(());
    }
    let go = go()?;
    if let Some(src) = source {
        eprintln!("dflockd: building {} from {}", version(), src.display());
        // GOWORK=off: a go.work in a parent folder must not capture the build.
        run(Command::new(&go)
            .current_dir(src)
            .env("GOWORK", "off")
            .args(["build", "-ldflags", &ldflags, "-o"])
            .arg(dest)
            .arg("./cmd/dflockd"))?;
    } else {
        eprintln!("dflockd: go install {MODULE}/cmd/dflockd@{}", version());
        let gobin = dest.parent().unwrap_or(dest);
        run(Command::new(&go)
            .env("GOBIN", gobin)
            .env("GOWORK", "off")
            .args(["install", "-ldflags", &ldflags])
            .arg(format!("{MODULE}/cmd/dflockd@{}", version())))
        .map_err(|e| {
            format!(
                "{e}; or point DFLOCKD_SRC at a dflockd {} source tree, or DFLOCKD_BIN at a binary",
                version()
            )
        })?;
    }
    if reports_version(dest) {
        Ok(())
    } else {
        Err(format!("{} does not report {}", dest.display(), version()))
    }
}

/// The upstream benchmark (`cmd/bench`, on the Go client), for `cargo xtask bench`.
fn install_go_bench(dest: &Path, source: Option<&Path>) -> Step {
    let go = go()?;
    match source {
        Some(src) => run(Command::new(&go)
            .current_dir(src)
            .env("GOWORK", "off")
            .args(["build", "-o"])
            .arg(dest)
            .arg("./cmd/bench")),
        None => {
            let gobin = std::env::temp_dir().join(format!("dflockd-gobin-{}", std::process::id()));
            run(Command::new(&go)
                .env("GOBIN", &gobin)
                .env("GOWORK", "off")
                .arg("install")
                .arg(format!("{MODULE}/cmd/bench@{}", version())))?;
            std::fs::rename(gobin.join("bench"), dest)
                .map_err(|e| format!("{}: {e}", dest.display()))
        }
    }
}

/// Builds `interop/go` with the Go client from `source` (a Go workspace
/// that uses it), or from the module proxy when there is no source.
fn build_interop(dest: &Path, source: Option<&Path>) -> Step {
    let go = go()?;
    let module = root().join("interop/go");
    let mut cmd = Command::new(&go);
    cmd.current_dir(&module)
        .args(["build", "-o"])
        .arg(dest)
        .arg(".");
    if let Some(src) = source {
        let work = dir().join("go.work");
        let text = format!(
            "go 1.23\n\nuse (\n\t{}\n\t{}\n)\n",
            module.display(),
            src.display()
        );
        std::fs::write(&work, text).map_err(|e| format!("{}: {e}", work.display()))?;
        cmd.env("GOWORK", &work).env("GOFLAGS", "");
    } else {
        cmd.env("GOWORK", "off").env("GOFLAGS", "-mod=mod");
    }
    run(&mut cmd).map_err(|e| {
        format!(
            "{e}; the Go interop client needs the upstream client package: point DFLOCKD_SRC \
             at a dflockd {} source tree",
            version()
        )
    })
}

fn go() -> Result<PathBuf, String> {
    let candidates = [PathBuf::from("go"), PathBuf::from("/usr/local/go/bin/go")];
    candidates
        .into_iter()
        .find(|go| {
            Command::new(go)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or_else(|| {
            format!(
                "Go is needed to build dflockd {} and the Go interop client: install Go ≥ 1.23 \
                 (Debian: apt-get install -y golang-go), or set DFLOCKD_BIN to a dflockd binary \
                 (the interop tests still need Go)",
                version()
            )
        })
}

fn reports_version(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == version())
}

fn go_build_info_has_version(bin: &Path) -> bool {
    let Ok(go) = go() else { return false };
    Command::new(go)
        .args(["version", "-m"])
        .arg(bin)
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.split_whitespace().take(3).eq(["mod", MODULE, version()]))
        })
}

/// Whether `a` was modified after `b`.
fn newer(a: &Path, b: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(a), modified(b)), (Some(a), Some(b)) if a > b)
}
