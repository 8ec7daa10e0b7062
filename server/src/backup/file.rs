//! Backup files: the magic line `flagwire backup\n`, then every [`BackupResponse`] of the
//! stream, length-delimited. A reader trusts a file only when it starts with a header of a
//! known format, ends with a trailer, and the trailer's count and checksum match the entries.

use super::{Checksum, FORMAT_VERSION};
use anyhow::{Context, bail};
use flagwire_proto::v1::{BackupHeader, BackupResponse, backup_response::Kind};
use prost::Message;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 16] = b"flagwire backup\n";

/// A backup read back and checked.
#[derive(Debug, Clone)]
pub struct Backup {
    /// Its header.
    pub header: BackupHeader,
    /// Every store entry, in key order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Writes the messages of a backup stream to a file, checking them as they pass.
pub struct Writer<W: Write> {
    out: BufWriter<W>,
    checksum: Checksum,
    header: bool,
    trailer: bool,
}

impl<W: Write> Writer<W> {
    /// Starts a backup file on `out` (writes the magic line).
    pub fn new(out: W) -> anyhow::Result<Self> {
        let mut out = BufWriter::new(out);
        out.write_all(MAGIC)?;
        Ok(Self {
            out,
            checksum: Checksum::default(),
            header: false,
            trailer: false,
        })
    }

    /// Appends one message; fails on anything out of order or a checksum that does not match,
    /// so a backup that reached its trailer is known good.
    pub fn push(&mut self, m: &BackupResponse) -> anyhow::Result<()> {
        match &m.kind {
            Some(Kind::Header(h)) if !self.header => {
                if h.format_version != FORMAT_VERSION {
                    bail!("the server sent backup format {}", h.format_version);
                }
                self.header = true;
            }
            Some(Kind::Entries(e)) if self.header && !self.trailer => {
                for entry in &e.entries {
                    self.checksum.update(&entry.key, &entry.value);
                }
            }
            Some(Kind::Trailer(t)) if self.header && !self.trailer => {
                let checksum = std::mem::take(&mut self.checksum);
                if t.entry_count != checksum.count() || t.sha256 != checksum.finish() {
                    bail!("the backup's checksum does not match its entries");
                }
                self.trailer = true;
            }
            _ => bail!("unexpected message in the backup stream"),
        }
        self.out.write_all(&m.encode_length_delimited_to_vec())?;
        Ok(())
    }

    /// Flushes; fails if the stream ended before its trailer.
    pub fn finish(mut self) -> anyhow::Result<W> {
        if !self.trailer {
            bail!("the backup stream ended before its trailer (incomplete backup)");
        }
        self.out.flush()?;
        self.out.into_inner().map_err(|e| e.into_error().into())
    }
}

fn read_varint(r: &mut impl Read) -> anyhow::Result<Option<u64>> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8; 1];
        if r.read(&mut byte)? == 0 {
            if i == 0 {
                return Ok(None);
            }
            bail!("truncated backup file");
        }
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    bail!("corrupt backup file (bad length)")
}

/// Reads and checks the backup file at `path`.
pub fn read(path: &Path) -> anyhow::Result<Backup> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut r = BufReader::new(file);
    let mut magic = [0u8; 16];
    r.read_exact(&mut magic)
        .ok()
        .filter(|()| &magic == MAGIC)
        .with_context(|| format!("{} is not a flagwire backup", path.display()))?;
    let mut check = Writer::new(std::io::sink())?;
    let mut header = None;
    let mut entries = Vec::new();
    while let Some(len) = read_varint(&mut r)? {
        let mut buf = vec![0u8; usize::try_from(len)?];
        r.read_exact(&mut buf).context("truncated backup file")?;
        let m = BackupResponse::decode(buf.as_slice()).context("corrupt backup file")?;
        check.push(&m)?;
        match m.kind {
            Some(Kind::Header(h)) => header = Some(h),
            Some(Kind::Entries(e)) => {
                entries.extend(e.entries.into_iter().map(|e| (e.key, e.value)))
            }
            _ => {}
        }
    }
    check.finish()?;
    Ok(Backup {
        header: header.context("backup without header")?,
        entries,
    })
}
