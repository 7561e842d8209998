//! Generates the gRPC code of the engine's master service from `proto/sluice.proto`, and
//! TensorFlow's event-file messages from `proto/tensorboard.proto`, with
//! protox (a protobuf compiler in Rust), so that building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/sluice.proto");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_ENGINE");
    let fds = protox::compile(["sluice.proto"], ["proto"])?;
    // The server side only in builds with the engine; the light client needs the client stub.
    let server = std::env::var_os("CARGO_FEATURE_ENGINE").is_some();
    tonic_prost_build::configure()
        .build_server(server)
        .btree_map(".")
        .bytes(".")
        .codec_path("crate::service::codec::Codec")
        .compile_fds(fds)?;

    // TensorFlow's event-file messages, for the TensorBoard writer (messages only).
    println!("cargo:rerun-if-changed=proto/tensorboard.proto");
    let events = protox::compile(["tensorboard.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_fds(events)?;
    Ok(())
}
