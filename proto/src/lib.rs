//! The `flagwire.v1` contract, generated from `proto/flagwire/v1/*.proto`.
//!
//! # Layout
//! - [`v1`]: messages and enums; no gRPC runtime needed, so the pure engine can use them.
//! - `grpc` (feature `grpc`, on by default): the client and server stubs of `AdminService`,
//!   `FlagService`, `MetricsService` and `RolloutService`.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for server reflection.
//!
//! The .proto files are the single source of truth for the wire; nothing here is hand-written.

/// Messages and enums of package `flagwire.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/messages/flagwire.v1.rs"));
}

/// gRPC client and server stubs of package `flagwire.v1`.
#[cfg(feature = "grpc")]
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod grpc {
    include!(concat!(env!("OUT_DIR"), "/grpc/flagwire.v1.rs"));
}

/// Encoded `FileDescriptorSet` of every Flagwire .proto file and its imports, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/flagwire_descriptor.bin"));
