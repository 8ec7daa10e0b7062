//! Helpers of the CLI tests beyond `operator`'s: tokens of the other roles, an address nobody
//! listens on, YAML output parsed, flags read back.

use crate::support::*;
use flagwire_proto::v1::*;

/// Secrets of a read-only token and of an sdk token bound to `production`.
pub struct Tokens {
    /// Read-only.
    pub reader: String,
    /// sdk, production.
    pub sdk: String,
}

/// Creates the tokens (the server must have a `production` environment).
pub async fn tokens(server: &Server) -> Tokens {
    let mut admin = server.admin().await;
    Tokens {
        reader: create_token(&mut admin, "reader", Role::ReadOnly, "").await,
        sdk: create_token(&mut admin, "app", Role::Sdk, "production").await,
    }
}

/// An address nothing listens on: bound, then freed.
pub fn down() -> String {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    free.local_addr().unwrap().to_string()
}

/// Stdout of a successful run, parsed as YAML.
pub fn yaml(run: Run) -> serde_json::Value {
    let out = run.ok();
    serde_norway::from_str(&out).unwrap_or_else(|e| panic!("not YAML ({e}): {out}"))
}

/// A flag as stored.
pub async fn flag(server: &impl Connect, key: &str) -> Flag {
    let mut admin = server.admin().await;
    admin
        .get_flag(GetFlagRequest { key: key.into() })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap()
}

/// Whether a flag exists.
pub async fn exists(server: &Server, key: &str) -> bool {
    let mut admin = server.admin().await;
    admin
        .get_flag(GetFlagRequest { key: key.into() })
        .await
        .is_ok()
}

/// The string at `pointer` (a JSON pointer) of `value`.
pub fn text(value: &serde_json::Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
        .to_owned()
}
