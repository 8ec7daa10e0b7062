//! The `flagwire.v1` contract, generated from `proto/flagwire/v1/*.proto`.
//!
//! # Layout
//! - [`v1`]: messages and enums; no gRPC runtime needed, so the pure engine can use them.
//! - `grpc` (feature `grpc`, on by default): the client and server stubs of `AdminService`,
//!   `FlagService`, `MetricsService` and `RolloutService`.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for server reflection.
//! - `flagd` (feature `grpc`): messages and stubs of the flagd protos vendored from
//!   open-feature/flagd-schemas under `proto/vendor/`, and `FLAGD_FILE_DESCRIPTOR_SET`.
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

/// The flagd protocols (`flagd.evaluation.v1`, `flagd.evaluation.v2`, `flagd.sync.v1`), generated
/// from the files vendored under `proto/vendor/` (Apache-2.0, open-feature/flagd-schemas).
#[cfg(feature = "grpc")]
#[allow(missing_docs, deprecated, clippy::all, clippy::pedantic)]
pub mod flagd {
    /// `flagd.evaluation.v1`: the RPC-mode evaluation service.
    pub mod evaluation {
        /// Version 1 (deprecated upstream, still what most providers call).
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/flagd/flagd.evaluation.v1.rs"));
        }
        /// Version 2: optional values, no `ResolveAll`.
        pub mod v2 {
            include!(concat!(env!("OUT_DIR"), "/flagd/flagd.evaluation.v2.rs"));
        }
    }
    /// `flagd.sync.v1`: the flag-definition sync service of in-process providers.
    pub mod sync {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/flagd/flagd.sync.v1.rs"));
        }
    }
}

/// Encoded `FileDescriptorSet` of the vendored flagd protos, for reflection.
#[cfg(feature = "grpc")]
pub const FLAGD_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/flagd_descriptor.bin"));
