//! The built artifact keeps the contract: only standard WASI 0.2 imports,
//! and every interface of `wit/` exported.

#[test]
fn imports_only_wasi_0_2_and_exports_the_whole_api() {
    let (imports, exports) = host_tests::component_names();
    assert!(!imports.is_empty());
    for name in &imports {
        assert!(
            name.starts_with("wasi:") && name.contains("@0.2."),
            "non-WASI-0.2 import: {name}"
        );
    }
    for forbidden in ["wasi:filesystem", "wasi:http", "wasi:sockets/udp"] {
        assert!(
            !imports.iter().any(|n| n.starts_with(forbidden)),
            "{forbidden} imported: {imports:?}"
        );
    }
    for interface in [
        "types",
        "locks",
        "connection",
        "fencing",
        "sharding",
        "driver",
    ] {
        let name = format!("dflockd:client/{interface}@0.3.0");
        assert!(exports.contains(&name), "{name} not exported: {exports:?}");
    }
}
