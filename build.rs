//! Compiles `src/ann/cxx/filtered_search.cpp`, the one FAISS call the C API lacks (search with an id
//! selector and a per-call nprobe), against the FAISS sources that `faiss-sys` builds, so the headers and
//! the library always come from the same FAISS.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/ann/cxx/filtered_search.cpp");
    println!("cargo:rerun-if-changed=build.rs");
    let faiss_src = faiss_sys_dir().join("faiss");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .include(&faiss_src)
        .include(faiss_src.join("c_api"))
        .file("src/ann/cxx/filtered_search.cpp")
        .warnings(false)
        .compile("fiq_faiss_shim");
}

/// The directory of the `faiss-sys` package this build uses, as cargo resolved it.
fn faiss_sys_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // Only the target's packages: those the outer build has already downloaded, so no network is needed.
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &target,
        ])
        .arg("--manifest-path")
        .arg(PathBuf::from(&manifest).join("Cargo.toml"))
        .output()
        .expect("running `cargo metadata` to find faiss-sys's FAISS sources");
    assert!(
        output.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"]
        .as_array()
        .expect("metadata lists packages");
    let faiss_sys = packages
        .iter()
        .find(|p| p["name"] == "faiss-sys")
        .expect("faiss-sys is a dependency of fiq");
    let manifest_path = faiss_sys["manifest_path"]
        .as_str()
        .expect("a package has a manifest path");
    PathBuf::from(manifest_path)
        .parent()
        .expect("a manifest sits in its package directory")
        .to_path_buf()
}
