//! `cargo xtask dist`: every artifact a user installs, for the one version
//! of the workspace (`[workspace.package] version`), in `target/dist/`:
//! the component with its metadata, its WIT package as a binary, an OCI
//! image layout of the component, the crates, the npm tarball and the
//! wheel, and `SHA256SUMS`. How to publish them: `docs/publishing.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use wasm_metadata::{AddMetadata, AddMetadataField};

use crate::{root, run, Step};

mod oci;

/// The component's package name in a registry (`wkg publish` reads it
/// from the metadata); the WIT package it implements is `dflockd:client`.
pub const COMPONENT_PACKAGE: &str = "dflockd:component";
pub const COMPONENT_FILE: &str = "dflockd_component.wasm";
pub const WIT_FILE: &str = "dflockd-client.wit.wasm";

/// What the manifests say about the project (from `cargo metadata`).
pub struct Project {
    pub version: String,
    pub description: String,
    pub license: String,
    pub repository: String,
    pub homepage: String,
    pub authors: String,
    /// The commit built, with `-dirty` when the work tree differs.
    pub revision: String,
    /// The commit's time (RFC 3339): the OCI `created`, so that a rebuild of
    /// one commit gives the same digests.
    pub created: String,
}

pub fn dir() -> PathBuf {
    root().join("target/dist")
}

fn git(args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root())
        .output()
        .map_err(|e| format!("git {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Project {
    pub fn read() -> Result<Self, String> {
        let out = crate::cargo()
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .output()
            .map_err(|e| format!("cargo metadata: {e}"))?;
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("cargo metadata's JSON: {e}"))?;
        let host = meta["packages"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "dflockd-host"))
            .ok_or("cargo metadata names no dflockd-host")?;
        let field = |name: &str| -> Result<String, String> {
            host[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("dflockd-host has no `{name}` in Cargo.toml"))
        };
        let authors = host["authors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let commit = git(&["rev-parse", "HEAD"])?;
        let dirty = !git(&["status", "--porcelain", "--untracked-files=no"])?.is_empty();
        Ok(Project {
            version: field("version")?,
            description: "A dflockd client (distributed FIFO locks and counting semaphores) as a \
                          WebAssembly component: WASI 0.2, TLS, leases renewed for you"
                .into(),
            license: field("license")?,
            repository: field("repository")?,
            homepage: field("homepage")?,
            authors,
            revision: if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            },
            created: git(&["log", "-1", "--format=%cI"])?,
        })
    }

    /// The component or WIT package with this project's metadata.
    fn stamp(&self, wasm: &[u8], name: &str) -> Result<Vec<u8>, String> {
        let mut add = AddMetadata::default();
        add.name = AddMetadataField::Set(name.to_string());
        add.version = AddMetadataField::Set(wasm_metadata::Version::new(self.version.clone()));
        add.description =
            AddMetadataField::Set(wasm_metadata::Description::new(self.description.clone()));
        add.licenses = AddMetadataField::Set(
            wasm_metadata::Licenses::new(&self.license).map_err(|e| format!("licence: {e}"))?,
        );
        add.source = AddMetadataField::Set(
            wasm_metadata::Source::new(&self.repository).map_err(|e| format!("source: {e}"))?,
        );
        add.homepage = AddMetadataField::Set(
            wasm_metadata::Homepage::new(&self.homepage).map_err(|e| format!("homepage: {e}"))?,
        );
        add.revision = AddMetadataField::Set(wasm_metadata::Revision::new(self.revision.clone()));
        add.authors = AddMetadataField::Set(wasm_metadata::Authors::new(self.authors.clone()));
        add.to_wasm(wasm)
            .map_err(|e| format!("adding metadata: {e}"))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write(path: &Path, bytes: &[u8]) -> Step {
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The version every other manifest states must be the workspace's.
fn check_versions(version: &str) -> Step {
    let root = root();
    let text = |p: &str| std::fs::read_to_string(root.join(p)).map_err(|e| format!("{p}: {e}"));
    let checks = [
        (
            "wit/world.wit",
            format!("package dflockd:client@{version};"),
        ),
        (
            "hosts/node/package.json",
            format!("\"version\": \"{version}\""),
        ),
        (
            "hosts/python/pyproject.toml",
            format!("version = \"{version}\""),
        ),
    ];
    for (file, wanted) in checks {
        if !text(file)?.contains(&wanted) {
            return Err(format!(
                "{file} does not say `{wanted}`: the version lives in Cargo.toml's \
                 [workspace.package]; make {file} agree"
            ));
        }
    }
    Ok(())
}

/// The WIT package `dflockd:client` as a binary, from `wit/`.
fn wit_package() -> Result<Vec<u8>, String> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(root().join("wit"))
        .map_err(|e| format!("parsing wit/: {e:#}"))?;
    wit_component::encode(&resolve, package).map_err(|e| format!("encoding wit/: {e:#}"))
}

pub fn dist(component: &Path) -> Step {
    crate::hosts::tools()?;
    let project = Project::read()?;
    check_versions(&project.version)?;
    let out = dir();
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    let wasm = project.stamp(&read(component)?, COMPONENT_PACKAGE)?;
    write(&out.join(COMPONENT_FILE), &wasm)?;
    show_metadata(&wasm, &project)?;
    let wit = project.stamp(&wit_package()?, "dflockd:client")?;
    write(&out.join(WIT_FILE), &wit)?;
    oci::write_layout(&out.join("oci"), &wasm, &project)?;
    oci::check_layout(&out.join("oci"), &wasm)?;

    crates(&out.join(COMPONENT_FILE), &project.version, &out)?;
    crate::packages::npm(&out.join(COMPONENT_FILE), &out)?;
    crate::packages::wheel(&out.join(COMPONENT_FILE), &out)?;
    checksums(&out)?;
    eprintln!("dist: {} (version {})", out.display(), project.version);
    Ok(())
}

/// Reads the metadata back as `wasm-tools metadata show` does, and checks
/// that it names the component, its version, licence and source.
fn show_metadata(wasm: &[u8], project: &Project) -> Step {
    let payload = wasm_metadata::Payload::from_binary(wasm).map_err(|e| format!("{e:#}"))?;
    let meta = payload.metadata();
    fn shown<T: ToString>(field: &Option<T>) -> String {
        field.as_ref().map(T::to_string).unwrap_or_default()
    }
    let found = [
        ("name", shown(&meta.name), COMPONENT_PACKAGE),
        ("version", shown(&meta.version), &project.version),
        ("licenses", shown(&meta.licenses), &project.license),
        ("source", shown(&meta.source), &project.repository),
    ];
    for (field, got, wanted) in found {
        if got.trim_end_matches('/') != wanted.trim_end_matches('/') {
            return Err(format!(
                "the dist component's {field} is {got:?}, not {wanted:?}"
            ));
        }
        eprintln!("metadata {field}: {got}");
    }
    Ok(())
}

/// The crates a user installs from crates.io: `dflockd-host` depends on
/// `dflockd-core`, the `dflock` command on both.
pub const CRATES: [&str; 3] = ["dflockd-core", "dflockd-host", "dflock"];

/// `cargo package` of the crates, the host crate carrying `component`.
fn crates(component: &Path, version: &str, out: &Path) -> Step {
    let packaged = root().join("host").join(COMPONENT_FILE);
    std::fs::copy(component, &packaged).map_err(|e| format!("{}: {e}", packaged.display()))?;
    let result = run(crate::cargo().args([
        "package",
        "-p",
        "dflockd-core",
        "-p",
        "dflockd-host",
        "-p",
        "dflock",
        // Verified by the consumption test instead (`consume::rust`), which
        // builds the packed crates outside the workspace with its build cache.
        "--no-verify",
        "--allow-dirty",
        "--quiet",
    ]));
    let _ = std::fs::remove_file(&packaged);
    result?;
    for name in CRATES {
        let file = format!("{name}-{version}.crate");
        let from = root().join("target/package").join(&file);
        std::fs::copy(&from, out.join(&file)).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    // The host crate must carry the component: a user's build has no other.
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(out.join(format!("dflockd-host-{version}.crate")))
        .output()
        .map_err(|e| format!("tar: {e}"))?;
    let listing = String::from_utf8_lossy(&listing.stdout);
    if !listing
        .lines()
        .any(|l| l.ends_with(&format!("/{COMPONENT_FILE}")))
    {
        return Err(format!(
            "the packaged dflockd-host lacks {COMPONENT_FILE}:\n{listing}"
        ));
    }
    Ok(())
}

/// `SHA256SUMS` of every file in `out` (not the OCI layout, whose blobs
/// are named by their digests), in `sha256sum -c` format.
fn checksums(out: &Path) -> Step {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| e.to_string())?
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    names.sort();
    let mut sums = String::new();
    for name in names {
        sums.push_str(&format!(
            "{}  {name}\n",
            sha256_hex(&read(&out.join(&name))?)
        ));
    }
    write(&out.join("SHA256SUMS"), sums.as_bytes())
}
