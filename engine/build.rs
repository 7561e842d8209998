//! Generates the gRPC code of the engine's master service from `proto/sluice.proto`, with
//! protox (a protobuf compiler in Rust), so that building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/sluice.proto");
    let fds = protox::compile(["sluice.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .btree_map(".")
        .bytes(".")
        .codec_path("crate::service::codec::Codec")
        .compile_fds(fds)?;
    Ok(())
}
