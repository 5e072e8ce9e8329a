//! Compiles `proto/metrics.proto` and `proto/externalscaler.proto` with protox (pure Rust, no `protoc`
//! needed) and generates the prost messages plus the tonic clients and servers for packages `api` and
//! `externalscaler`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest.join("../../proto");
    let protos = [
        proto_dir.join("metrics.proto"),
        proto_dir.join("externalscaler.proto"),
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    let descriptors = protox::compile(&protos, [&proto_dir])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
