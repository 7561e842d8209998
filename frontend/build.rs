//! Packs the sources that notebook and REPL cells compile against (the engine's light client
//! and the `sluice-cell` helpers, with the workspace's Cargo.lock) into the frontend, so that
//! an installed kernel or REPL needs no checkout: `client_sources.rs` unpacks them into the
//! cache, in a folder named by version and content fingerprint.
//!
//! The manifests are made standalone on the way: values inherited from the workspace are
//! written out, and targets a dependency never builds (binaries, examples, tests, benches,
//! dev-dependencies) are dropped, since their files are not packed.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

/// (crate folder, what of it to pack besides its manifest).
const CRATES: &[(&str, &[&str])] = &[
    ("engine", &["build.rs", "proto", "src", "data"]),
    ("cell", &["src"]),
];

/// Left out of a packed folder: the engine's binary is not part of the client.
const SKIPPED: &[&str] = &["engine/src/bin"];

fn main() {
    if let Err(e) = pack() {
        // A build script reports through panics; this one names what it could not read.
        panic!("packing the cells' client sources: {e}");
    }
}

fn pack() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("..");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let workspace: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))?.parse()?;
    println!("cargo:rerun-if-changed=../Cargo.toml");
    println!("cargo:rerun-if-changed=../Cargo.lock");

    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    add_file(
        &mut tar,
        "Cargo.lock",
        &std::fs::read(root.join("Cargo.lock"))?,
    )?;
    for (name, parts) in CRATES {
        let dir = root.join(name);
        println!("cargo:rerun-if-changed=../{name}/Cargo.toml");
        let manifest = standalone_manifest(
            &std::fs::read_to_string(dir.join("Cargo.toml"))?,
            &workspace,
        )?;
        add_file(&mut tar, &format!("{name}/Cargo.toml"), manifest.as_bytes())?;
        for part in *parts {
            println!("cargo:rerun-if-changed=../{name}/{part}");
            add_tree(&mut tar, &root, &format!("{name}/{part}"))?;
        }
    }
    let archive = tar.into_inner()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    archive.hash(&mut hasher);
    std::fs::write(
        out.join("client-sources.fingerprint"),
        format!("{:016x}", hasher.finish()),
    )?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&archive)?;
    std::fs::write(out.join("client-sources.tar.gz"), gz.finish()?)?;
    Ok(())
}

/// Adds `relative` (a file or a folder, walked in name order) under the same name.
fn add_tree(
    tar: &mut tar::Builder<Vec<u8>>,
    root: &Path,
    relative: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    if SKIPPED.contains(&relative) {
        return Ok(());
    }
    let path = root.join(relative);
    if path.is_file() {
        return add_file(tar, relative, &std::fs::read(&path)?);
    }
    let mut entries: Vec<_> = std::fs::read_dir(&path)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name
            .to_str()
            .ok_or("a source file name that is not UTF-8")?;
        add_tree(tar, root, &format!("{relative}/{name}"))?;
    }
    Ok(())
}

fn add_file(
    tar: &mut tar::Builder<Vec<u8>>,
    name: &str,
    bytes: &[u8],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    // A fixed, old time: cargo compares sources' times with its outputs', so unpacked
    // sources never look newer than a build made from them.
    header.set_mtime(1);
    tar.append_data(&mut header, name, bytes)?;
    Ok(())
}

/// The manifest with workspace-inherited package values written out and only the library
/// target left.
fn standalone_manifest(
    text: &str,
    workspace: &toml::Table,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut manifest: toml::Table = text.parse()?;
    let inherited = workspace
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(toml::Value::as_table)
        .ok_or("the workspace manifest has no [workspace.package]")?;
    let package = manifest
        .get_mut("package")
        .and_then(toml::Value::as_table_mut)
        .ok_or("a packed crate has no [package]")?;
    for (key, value) in package.iter_mut() {
        let from_workspace = value
            .as_table()
            .and_then(|t| t.get("workspace"))
            .and_then(toml::Value::as_bool)
            == Some(true);
        if from_workspace {
            *value = inherited
                .get(key)
                .cloned()
                .ok_or_else(|| format!("[workspace.package] has no {key}"))?;
        }
    }
    for auto in ["autobins", "autoexamples", "autotests", "autobenches"] {
        package.insert(auto.into(), toml::Value::Boolean(false));
    }
    for dropped in ["bin", "example", "test", "bench", "dev-dependencies"] {
        manifest.remove(dropped);
    }
    Ok(toml::to_string(&manifest)?)
}
