//! Writes one vector case file (`tests/vectors/*.json`) into a fresh data directory, with an
//! admin and an sdk token of the given secrets, so tests that drive the real binary (the
//! official OpenFeature clients of `scripts/test-ofrep`) can serve exactly the case file's
//! flags. It writes the store directly, as a restore does, because some vector flags are
//! deliberately invalid and the admin API rightly refuses them.
//!
//! `vector_store <case-file.json> <data-dir> <admin-secret> <sdk-secret>`

use anyhow::{Context, bail};
use flagwire_proto::v1::{ApiToken, Environment, Flag, Role, Segment};
use flagwire_server::catalog::tokens::StoredToken;
use flagwire_server::protojson::from_json;
use flagwire_server::store::{Batch, Store, keys, sled_store::SledStore};
use prost::Message;
use sha2::{Digest, Sha256};
use std::path::Path;

fn token(id: &str, secret: &str, role: Role, environment: &str) -> StoredToken {
    StoredToken {
        token: Some(ApiToken {
            id: id.into(),
            name: id.into(),
            role: role as i32,
            environment: environment.into(),
            ..Default::default()
        }),
        hash: Sha256::digest(secret.as_bytes()).to_vec(),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, dir, admin, sdk] = args.as_slice() else {
        bail!("usage: vector_store <case-file.json> <data-dir> <admin-secret> <sdk-secret>");
    };
    let text = std::fs::read_to_string(file).with_context(|| file.clone())?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| file.clone())?;
    let env = json["environment"].as_str().context("no environment")?;
    let list = |key: &str| json[key].as_array().cloned().unwrap_or_default();
    let mut batch = Batch::default();
    let environment = Environment {
        key: env.into(),
        revision: 1,
        ..Default::default()
    };
    batch.put(keys::environment(env), environment.encode_to_vec());
    for f in list("flags") {
        let flag: Flag = from_json(&f.to_string()).map_err(anyhow::Error::msg)?;
        batch.put(keys::flag(&flag.key), flag.encode_to_vec());
    }
    for s in list("segments") {
        let mut segment: Segment = from_json(&s.to_string()).map_err(anyhow::Error::msg)?;
        if segment.environment.is_empty() {
            segment.environment = env.into();
        }
        let key = keys::segment(&segment.environment, &segment.key);
        batch.put(key, segment.encode_to_vec());
    }
    for (id, secret, role, bound) in [
        ("admin", admin, Role::Admin, ""),
        ("sdk", sdk, Role::Sdk, env),
    ] {
        batch.put(
            keys::token(id),
            token(id, secret, role, bound).encode_to_vec(),
        );
    }
    let store = SledStore::open(Path::new(dir))?;
    store.commit(batch)?;
    store.flush()?;
    Ok(())
}
