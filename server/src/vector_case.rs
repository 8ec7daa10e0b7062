//! A vector case file (`tests/vectors/*.json`) as the store entries that serve it, with an
//! admin and an sdk token: the one loader behind every test that serves a case file from a
//! real server (the `vector_store` example, which the Python, TypeScript, OFREP and flagd
//! suites run, and the Rust tests, which commit the [`Batch`] themselves).
//!
//! It writes the store directly, as a restore does, and not through the admin API, because
//! some vector flags are deliberately invalid and the admin API rightly refuses them.

use crate::catalog::tokens::{StoredToken, hash};
use crate::protojson::from_json;
use crate::store::{Batch, Store, keys, sled_store::SledStore};
use flagwire_proto::v1::{ApiToken, Environment, Flag, Role, Segment};
use prost::Message;
use std::path::Path;

/// The id (and name) of the admin token a [`batch`] holds.
pub const ADMIN_TOKEN_ID: &str = "admin";
/// The id (and name) of the sdk token a [`batch`] holds, bound to the file's environment.
pub const SDK_TOKEN_ID: &str = "sdk";

/// The store entries of the case file `json`: its environment at revision 1, its flags as
/// written (valid or not), its segments (one without an environment is the file's; one of
/// another environment stays there), an admin token of secret `admin` and an sdk token of
/// secret `sdk` bound to the file's environment. Fails on JSON that is not a case file.
pub fn batch(json: &str, admin: &str, sdk: &str) -> Result<Batch, String> {
    let file: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let env = file["environment"]
        .as_str()
        .ok_or("the case file has no environment")?;
    let list = |key: &str| file[key].as_array().cloned().unwrap_or_default();
    let mut batch = Batch::default();
    let environment = Environment {
        key: env.into(),
        revision: 1,
        ..Default::default()
    };
    batch.put(keys::environment(env), environment.encode_to_vec());
    for f in list("flags") {
        let flag: Flag = from_json(&f.to_string()).map_err(|e| format!("flag {f}: {e}"))?;
        batch.put(keys::flag(&flag.key), flag.encode_to_vec());
    }
    for s in list("segments") {
        let mut segment: Segment =
            from_json(&s.to_string()).map_err(|e| format!("segment {s}: {e}"))?;
        if segment.environment.is_empty() {
            segment.environment = env.into();
        }
        let key = keys::segment(&segment.environment, &segment.key);
        batch.put(key, segment.encode_to_vec());
    }
    for (id, secret, role, bound) in [
        (ADMIN_TOKEN_ID, admin, Role::Admin, ""),
        (SDK_TOKEN_ID, sdk, Role::Sdk, env),
    ] {
        let token = StoredToken {
            token: Some(ApiToken {
                id: id.into(),
                name: id.into(),
                role: role as i32,
                environment: bound.into(),
                ..Default::default()
            }),
            hash: hash(secret),
        };
        batch.put(keys::token(id), token.encode_to_vec());
    }
    Ok(batch)
}

/// Writes the [`batch`] of the case file at `file` into the sled data directory `dir` (a
/// fresh one: what is there already stays) and flushes it.
pub fn write_sled(file: &Path, dir: &Path, admin: &str, sdk: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let json = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let batch = batch(&json, admin, sdk)
        .map_err(anyhow::Error::msg)
        .with_context(|| file.display().to_string())?;
    let store = SledStore::open(dir)?;
    store.commit(batch)?;
    store.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, CatalogOptions};
    use crate::store::memory::MemoryStore;
    use std::sync::Arc;

    #[test]
    fn serves_invalid_flags_and_authenticates_both_tokens() {
        let json = r#"{"environment": "prod",
            "flags": [{"key": "Not A Valid Key!"}],
            "segments": [{"key": "beta"}, {"key": "other", "environment": "dev"}]}"#;
        let store = Arc::new(MemoryStore::new());
        store
            .commit(batch(json, "admin-secret", "sdk-secret").unwrap())
            .unwrap();
        for key in [
            keys::environment("prod"),
            keys::flag("Not A Valid Key!"),
            keys::segment("prod", "beta"),
            keys::segment("dev", "other"),
        ] {
            assert!(store.get(&key).unwrap().is_some(), "{key:?} missing");
        }
        let catalog = Catalog::open(store, CatalogOptions::default()).unwrap();
        let admin = catalog.authenticate("admin-secret").unwrap();
        assert_eq!((admin.role, admin.environment.as_str()), (Role::Admin, ""));
        let sdk = catalog.authenticate("sdk-secret").unwrap();
        assert_eq!((sdk.role, sdk.environment.as_str()), (Role::Sdk, "prod"));
        assert!(catalog.authenticate("another-secret").is_none());
    }

    #[test]
    fn refuses_what_is_not_a_case_file() {
        assert!(batch(r#"{"flags": []}"#, "a", "s").is_err());
        assert!(
            batch(
                r#"{"environment": "prod", "flags": [{"key": 3}]}"#,
                "a",
                "s"
            )
            .is_err()
        );
    }
}
