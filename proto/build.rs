//! Generates the Rust types and gRPC stubs from `flagwire/v1/*.proto` with protox, so no system
//! `protoc` is needed, and writes the encoded descriptor set that server reflection serves.
//!
//! Two passes: messages alone (used by the pure `flagwire-core`, which must not depend on tonic),
//! then the service stubs, which refer back to those messages through an extern path.

use prost::Message;
use std::{env, fs, io, path::PathBuf};

const PROTOS: &[&str] = &[
    "flagwire/v1/flag.proto",
    "flagwire/v1/evaluation.proto",
    "flagwire/v1/flag_service.proto",
    "flagwire/v1/admin.proto",
    "flagwire/v1/metrics.proto",
    "flagwire/v1/rollout.proto",
    "flagwire/v1/release.proto",
    "flagwire/v1/bundle.proto",
    "flagwire/v1/backup.proto",
];

fn main() -> io::Result<()> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."]).map_err(|e| io::Error::other(e.to_string()))?;
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("flagwire_descriptor.bin"), fds.encode_to_vec())?;

    let messages = out.join("messages");
    let grpc = out.join("grpc");
    fs::create_dir_all(&messages)?;
    fs::create_dir_all(&grpc)?;
    // Ordered maps: a context has a handful of attributes, where a B-tree beats SipHash, and
    // per-environment configs then serialise in a stable order.
    tonic_prost_build::configure()
        .btree_map(".flagwire.v1.EvaluationContext.attributes")
        .btree_map(".flagwire.v1.Flag.environments")
        .build_client(false)
        .build_server(false)
        .out_dir(&messages)
        .compile_fds(fds.clone())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".flagwire.v1", "crate::v1")
        .out_dir(&grpc)
        .compile_fds(fds)
}
