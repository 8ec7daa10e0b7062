//! Generates the Rust types and gRPC stubs from `flagwire/v1/*.proto` with protox, so no system
//! `protoc` is needed, and writes the encoded descriptor set that server reflection serves.
//!
//! Two passes: messages alone (used by the pure `flagwire-core`, which must not depend on tonic),
//! then the service stubs, which refer back to those messages through an extern path.

use prost::Message;
use std::{env, fs, io, path::PathBuf};

/// The flagd protos vendored from open-feature/flagd-schemas (see `vendor/README.md`), compiled
/// only with the `grpc` feature: only the server serves them.
const FLAGD_PROTOS: &[&str] = &[
    "flagd/evaluation/v1/evaluation.proto",
    "flagd/evaluation/v2/evaluation.proto",
    "flagd/sync/v1/sync.proto",
];

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
        .compile_fds(fds)?;
    if env::var_os("CARGO_FEATURE_GRPC").is_some() {
        flagd(&out)?;
    }
    Ok(())
}

/// Messages and stubs of the vendored flagd protos, and their descriptor set for reflection.
fn flagd(out: &std::path::Path) -> io::Result<()> {
    for proto in FLAGD_PROTOS {
        println!("cargo:rerun-if-changed=vendor/{proto}");
    }
    let fds =
        protox::compile(FLAGD_PROTOS, ["vendor"]).map_err(|e| io::Error::other(e.to_string()))?;
    fs::write(out.join("flagd_descriptor.bin"), fds.encode_to_vec())?;
    let dir = out.join("flagd");
    fs::create_dir_all(&dir)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&dir)
        .compile_fds(fds)
}
