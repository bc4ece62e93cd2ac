//! Packs the Python SDK (`sdk/python/trainyard/*.py`) into a tar that the
//! executor copies into every run's container, so `from trainyard import Run`
//! works whatever the image.

use std::path::Path;

fn main() {
    let sdk = Path::new("../../sdk/python/trainyard");
    println!("cargo:rerun-if-changed={}", sdk.display());
    let mut files: Vec<_> = std::fs::read_dir(sdk)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "py"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut builder = tar::Builder::new(Vec::new());
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path).expect("reading an SDK file");
        let name = path.file_name().expect("a file name").to_string_lossy();
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                format!("opt/trainyard/python/trainyard/{name}"),
                &bytes[..],
            )
            .expect("packing the SDK");
    }
    let archive = builder.into_inner().expect("packing the SDK");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo");
    std::fs::write(Path::new(&out).join("python-sdk.tar"), archive).expect("writing the SDK tar");
}
