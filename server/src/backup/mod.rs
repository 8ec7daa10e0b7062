//! Backups: a consistent snapshot of the whole store as a stream of
//! [`BackupResponse`] messages (header, entry batches, trailer with a checksum), the file that
//! holds them, and restoring one into an empty data directory.
//!
//! Every key and value is copied verbatim, so a restored server has the same flags, versions,
//! segments, environments and revisions, the same change log (SDKs resume their Watch), audit
//! log and rollout records, and the same tokens: they are stored as hashes, so every secret
//! that worked before works after.
//!
//! - [`file`]: writing and reading backup files, with every check a reader makes.
//! - [`restore`]: loading a backup into a fresh sled store.

pub mod file;
pub mod restore;

use crate::catalog::snapshot::StoreSnapshot;
use flagwire_proto::v1::{
    BackupEntries, BackupEntry, BackupHeader, BackupResponse, BackupTrailer, backup_response,
};
use sha2::{Digest, Sha256};

/// The backup format this server writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The running SHA-256 of a backup's entries (see `BackupTrailer.sha256`).
#[derive(Default)]
pub struct Checksum {
    hasher: Sha256,
    count: u64,
}

impl Checksum {
    /// Adds one entry.
    pub fn update(&mut self, key: &[u8], value: &[u8]) {
        for part in [key, value] {
            self.hasher.update((part.len() as u64).to_be_bytes());
            self.hasher.update(part);
        }
        self.count += 1;
    }

    /// Entries added so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest.
    pub fn finish(self) -> Vec<u8> {
        self.hasher.finalize().to_vec()
    }
}

fn message(kind: backup_response::Kind) -> BackupResponse {
    BackupResponse { kind: Some(kind) }
}

/// The messages of a backup of `snapshot`: header, batches of at most `batch` entries, trailer.
pub fn responses(
    snapshot: StoreSnapshot,
    batch: usize,
) -> impl Iterator<Item = BackupResponse> + Send {
    let mut checksum = Checksum::default();
    for (k, v) in &snapshot.entries {
        checksum.update(k, v);
    }
    let trailer = BackupTrailer {
        entry_count: checksum.count(),
        sha256: checksum.finish(),
    };
    let header = BackupHeader {
        format_version: FORMAT_VERSION,
        create_time: Some(std::time::SystemTime::now().into()),
        server_version: env!("CARGO_PKG_VERSION").into(),
        revisions: snapshot.revisions.into_iter().collect(),
    };
    let mut entries = snapshot.entries.into_iter().peekable();
    let batches = std::iter::from_fn(move || {
        entries.peek()?;
        let chunk = entries
            .by_ref()
            .take(batch.max(1))
            .map(|(key, value)| BackupEntry { key, value })
            .collect();
        Some(message(backup_response::Kind::Entries(BackupEntries {
            entries: chunk,
        })))
    });
    std::iter::once(message(backup_response::Kind::Header(header)))
        .chain(batches)
        .chain(std::iter::once(message(backup_response::Kind::Trailer(
            trailer,
        ))))
}
