//! Writes one vector case file (`tests/vectors/*.json`) into a fresh sled data directory, with
//! an admin and an sdk token of the given secrets (see [`flagwire_server::vector_case`]), so
//! suites that drive the real binary (the Python and TypeScript SDKs', the official OFREP and
//! flagd providers') serve exactly the case file's flags, invalid ones included.
//!
//! `vector_store <case-file.json> <data-dir> <admin-secret> <sdk-secret>`

use anyhow::bail;
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, dir, admin, sdk] = args.as_slice() else {
        bail!("usage: vector_store <case-file.json> <data-dir> <admin-secret> <sdk-secret>");
    };
    flagwire_server::vector_case::write_sled(Path::new(file), Path::new(dir), admin, sdk)
}
