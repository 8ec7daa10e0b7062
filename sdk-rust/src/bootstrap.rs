//! The bootstrap file: the last applied snapshot, encoded as a `flagwire.v1.Snapshot` protobuf,
//! so a service can start (and evaluate) while the server is unreachable, or run offline.

use crate::error::Error;
use flagwire_core::Snapshot;
use prost::Message;
use std::path::Path;

/// Reads a bootstrap file.
pub(crate) fn load(path: &Path) -> Result<Snapshot, Error> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::Bootstrap(format!("{}: {e}", path.display())))?;
    let proto = flagwire_proto::v1::Snapshot::decode(bytes.as_slice())
        .map_err(|e| Error::Bootstrap(format!("{}: not a snapshot: {e}", path.display())))?;
    Ok(Snapshot::from_proto(proto))
}

/// Writes `snapshot` to `path` atomically (a temporary file renamed over it), so a crash
/// mid-write leaves the previous file intact.
pub(crate) fn save(path: &Path, snapshot: &Snapshot) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let bytes = snapshot.to_proto().encode_to_vec();
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::Bootstrap(format!("{}: {e}", path.display())))
}
