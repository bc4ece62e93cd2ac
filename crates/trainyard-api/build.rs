//! Points `console.rs` at the built web console (`console/dist`), which the
//! binary embeds. The folder is created empty when the console was not built,
//! so a fresh clone still compiles (and serves a page saying how to build it),
//! and watching it makes cargo embed the files again after `npm run build`.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let dist = manifest_dir.join("../../console/dist");
    std::fs::create_dir_all(&dist).expect("cannot create console/dist");
    let dist = dist.canonicalize().expect("cannot resolve console/dist");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rustc-env=TRAINYARD_CONSOLE_DIST={}", dist.display());
}
