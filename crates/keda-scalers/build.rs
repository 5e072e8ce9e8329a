//! With the `etcd` feature: compiles `proto/etcd.proto` (the slice of etcd's v3 API the scaler calls) with
//! protox (pure Rust, no `protoc`) into prost messages and tonic clients. Other builds do nothing.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "etcd")]
    {
        let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
        let proto_dir = manifest.join("../../proto");
        let proto = proto_dir.join("etcd.proto");
        println!("cargo:rerun-if-changed={}", proto.display());
        let descriptors = protox::compile([&proto], [&proto_dir])?;
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(false)
            .build_transport(false)
            .compile_fds(descriptors)?;
    }
    Ok(())
}
