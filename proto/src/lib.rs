//! The `flagwire.v1` gRPC contract, generated from `proto/flagwire/v1/*.proto`.
//!
//! # Layout
//! - [`v1`]: messages, enums, and the client and server stubs of `AdminService`,
//!   `FlagService`, `MetricsService` and `RolloutService`.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for server reflection.
//!
//! The .proto files are the single source of truth for the wire; nothing here is hand-written.

/// Generated code for package `flagwire.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("flagwire.v1");
}

/// Encoded `FileDescriptorSet` of every Flagwire .proto file and its imports, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/flagwire_descriptor.bin"));
