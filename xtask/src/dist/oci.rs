//! The component as a Wasm OCI artifact in an OCI image layout (the CNCF
//! TAG Runtime "Wasm OCI Artifact" layout that `wkg oci push`, Spin and
//! wasmCloud read): one config of media type
//! `application/vnd.wasm.config.v0+json`, one layer `application/wasm`,
//! the metadata as `org.opencontainers.image.*` annotations. Three small
//! JSON documents, written with serde_json: the OCI client crates bring an
//! HTTP stack this needs none of.

use std::path::Path;

use serde_json::{json, Value};

use super::{read, sha256_hex, write, Project, COMPONENT_PACKAGE};
use crate::Step;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.wasm.config.v0+json";
const LAYER: &str = "application/wasm";

/// Writes `bytes` as a blob; returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Result<Value, String> {
    let hex = sha256_hex(bytes);
    write(&dir.join("blobs/sha256").join(&hex), bytes)?;
    Ok(json!({ "mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len() }))
}

/// The imports and exports of the component's world, by interface name.
fn world(wasm: &[u8]) -> Result<Value, String> {
    let decoded =
        wit_component::decode(wasm).map_err(|e| format!("decoding the component: {e:#}"))?;
    let wit_component::DecodedWasm::Component(resolve, world) = decoded else {
        return Err("the component decodes as a WIT package".into());
    };
    let world = &resolve.worlds[world];
    let names = |items: &mut dyn Iterator<Item = &wit_parser::WorldKey>| -> Vec<String> {
        items
            .map(|key| match key {
                wit_parser::WorldKey::Interface(id) => resolve.id_of(*id).unwrap_or_default(),
                wit_parser::WorldKey::Name(name) => name.clone(),
            })
            .collect()
    };
    Ok(json!({
        "exports": names(&mut world.exports.keys()),
        "imports": names(&mut world.imports.keys()),
        "target": Value::Null,
    }))
}

pub fn write_layout(dir: &Path, wasm: &[u8], project: &Project) -> Step {
    std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| e.to_string())?;
    let layer = blob(dir, LAYER, wasm)?;
    let config = json!({
        "created": project.created,
        "author": project.authors,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer["digest"]],
        "component": world(wasm)?,
    });
    let config = blob(dir, CONFIG, &to_vec(&config)?)?;
    let annotations = json!({
        "org.opencontainers.image.title": COMPONENT_PACKAGE,
        "org.opencontainers.image.version": project.version,
        "org.opencontainers.image.description": project.description,
        "org.opencontainers.image.licenses": project.license,
        "org.opencontainers.image.source": project.repository,
        "org.opencontainers.image.url": project.homepage,
        "org.opencontainers.image.revision": project.revision,
        "org.opencontainers.image.created": project.created,
    });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": CONFIG,
        "config": config,
        "layers": [layer],
        "annotations": annotations,
    });
    let mut manifest_desc = blob(dir, MANIFEST, &to_vec(&manifest)?)?;
    manifest_desc["annotations"] = json!({ "org.opencontainers.image.ref.name": project.version });
    let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc] });
    write(&dir.join("index.json"), &to_vec(&index)?)?;
    write(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
}

fn to_vec(value: &Value) -> Result<Vec<u8>, String> {
    serde_json::to_vec_pretty(value).map_err(|e| e.to_string())
}

/// Reads a blob named by `descriptor`, checking its digest and size.
fn follow(dir: &Path, descriptor: &Value, media_type: &str) -> Result<Vec<u8>, String> {
    if descriptor["mediaType"] != media_type {
        return Err(format!(
            "expected {media_type}, found {}",
            descriptor["mediaType"]
        ));
    }
    let digest = descriptor["digest"].as_str().unwrap_or_default();
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or(format!("digest {digest}"))?;
    let bytes = read(&dir.join("blobs/sha256").join(hex))?;
    if sha256_hex(&bytes) != hex || descriptor["size"] != bytes.len() {
        return Err(format!("blob {digest} does not match its descriptor"));
    }
    Ok(bytes)
}

fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Reads the layout back: index → manifest → config → layer, each by
/// digest, and the layer must be the component itself.
pub fn check_layout(dir: &Path, wasm: &[u8]) -> Step {
    let index = parse(&read(&dir.join("index.json"))?)?;
    let manifest = parse(&follow(dir, &index["manifests"][0], MANIFEST)?)?;
    let config = parse(&follow(dir, &manifest["config"], CONFIG)?)?;
    let layer = follow(dir, &manifest["layers"][0], LAYER)?;
    if layer != wasm {
        return Err("the OCI layer is not the dist component".into());
    }
    if config["layerDigests"][0] != manifest["layers"][0]["digest"] || config["os"] != "wasip2" {
        return Err(format!(
            "the OCI config does not describe its layer: {config}"
        ));
    }
    eprintln!(
        "oci: {} ({})",
        dir.display(),
        index["manifests"][0]["digest"]
    );
    Ok(())
}
