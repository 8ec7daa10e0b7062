//! API tokens: random secrets shown once, stored as SHA-256 hashes, compared in constant time.
//!
//! A plain SHA-256 (not a password hash) is enough because secrets are 256 random bits, not
//! something a person chose: there is nothing to brute-force.

use super::{Catalog, Meta};
use crate::error::{Error, Result};
use flagwire_core::validate::validate_key;
use flagwire_proto::v1::{ApiToken, AuditSubject, Role, audit_subject};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token as stored: its metadata and the hash of its secret.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredToken {
    /// Metadata.
    #[prost(message, optional, tag = "1")]
    pub token: Option<ApiToken>,
    /// SHA-256 of the secret.
    #[prost(bytes = "vec", tag = "2")]
    pub hash: Vec<u8>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Token id.
    pub id: String,
    /// Token name (the audit actor).
    pub name: String,
    /// Role.
    pub role: Role,
    /// For sdk tokens, the environment they are bound to.
    pub environment: String,
}

fn subject(token: &ApiToken) -> Option<AuditSubject> {
    Some(AuditSubject {
        kind: Some(audit_subject::Kind::ApiToken(token.clone())),
    })
}

/// The shortest admin token accepted from configuration.
pub const MIN_SUPPLIED_SECRET: usize = 16;

/// The stored hash of a token secret.
pub(crate) fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A new random secret: `fw_` and 64 hex digits (256 bits).
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("fw_{}", hex::encode(bytes))
}

fn new_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Catalog {
    /// Creates a token; returns its metadata and the secret (never stored).
    pub async fn create_token(
        &self,
        meta: &Meta,
        name: &str,
        role: Role,
        environment: &str,
    ) -> Result<(ApiToken, String)> {
        self.insert_token(meta, name, role, environment, new_secret())
            .await
    }

    async fn insert_token(
        &self,
        meta: &Meta,
        name: &str,
        role: Role,
        environment: &str,
        secret: String,
    ) -> Result<(ApiToken, String)> {
        validate_key("name", name)?;
        match role {
            Role::Unspecified => {
                return Err(Error::invalid(
                    "role",
                    "must be ROLE_ADMIN, ROLE_SDK or ROLE_READ_ONLY",
                ));
            }
            Role::Sdk if environment.is_empty() => {
                return Err(Error::invalid(
                    "environment",
                    "required for ROLE_SDK tokens",
                ));
            }
            Role::Admin | Role::ReadOnly if !environment.is_empty() => {
                return Err(Error::invalid(
                    "environment",
                    "only ROLE_SDK tokens are bound to one",
                ));
            }
            _ => {}
        }
        self.write(meta, |state, txn| {
            if role == Role::Sdk && !state.envs.contains_key(environment) {
                return Err(Error::invalid(
                    "environment",
                    format!("unknown environment {environment:?}"),
                ));
            }
            let live = state.tokens.values().filter_map(|t| t.token.as_ref());
            if live
                .filter(|t| t.revoke_time.is_none())
                .any(|t| t.name == name)
            {
                return Err(Error::AlreadyExists(format!("token named {name:?}")));
            }
            let token = ApiToken {
                id: new_id(),
                name: name.to_owned(),
                role: role as i32,
                environment: environment.to_owned(),
                create_time: Some(txn.now()),
                revoke_time: None,
                prefix: secret.chars().take(10).collect(),
            };
            txn.put_token(StoredToken {
                token: Some(token.clone()),
                hash: hash(&secret),
            });
            txn.audit(
                "token.create",
                "api_token",
                &token.id,
                None,
                subject(&token),
            );
            Ok((token, secret))
        })
        .await
    }

    /// Token metadata, oldest first.
    pub fn list_tokens(&self, include_revoked: bool) -> Vec<ApiToken> {
        let mut tokens: Vec<ApiToken> = self
            .read()
            .tokens
            .values()
            .filter_map(|t| t.token.clone())
            .filter(|t| include_revoked || t.revoke_time.is_none())
            .collect();
        tokens.sort_by(|a, b| {
            let key = |t: &ApiToken| t.create_time.map(|c| (c.seconds, c.nanos));
            key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
        });
        tokens
    }

    /// Revokes a token; it stops authenticating at once.
    pub async fn revoke_token(&self, meta: &Meta, id: &str) -> Result<ApiToken> {
        self.write(meta, |state, txn| {
            let stored = state
                .tokens
                .get(id)
                .ok_or_else(|| Error::NotFound(format!("token {id:?}")))?;
            let before = stored.token.clone().unwrap_or_default();
            if before.revoke_time.is_some() {
                return Err(Error::FailedPrecondition(format!(
                    "token {id:?} is already revoked"
                )));
            }
            let live_admins = state
                .tokens
                .values()
                .filter_map(|t| t.token.as_ref())
                .filter(|t| t.role == Role::Admin as i32 && t.revoke_time.is_none())
                .count();
            if before.role == Role::Admin as i32 && live_admins == 1 {
                return Err(Error::FailedPrecondition(
                    "this is the last admin token: create another admin token first".into(),
                ));
            }
            let after = ApiToken {
                revoke_time: Some(txn.now()),
                ..before.clone()
            };
            txn.put_token(StoredToken {
                token: Some(after.clone()),
                hash: stored.hash.clone(),
            });
            txn.audit(
                "token.revoke",
                "api_token",
                id,
                subject(&before),
                subject(&after),
            );
            Ok(after)
        })
        .await
    }

    /// The live token whose secret is `secret`. Compares against every token's hash in constant
    /// time, so response timing reveals nothing about stored hashes.
    pub fn authenticate(&self, secret: &str) -> Option<Principal> {
        if secret.is_empty() {
            return None;
        }
        let presented = hash(secret);
        let state = self.read();
        let mut found = None;
        for stored in state.tokens.values() {
            if bool::from(stored.hash.ct_eq(&presented)) {
                found = stored.token.as_ref();
            }
        }
        let token = found.filter(|t| t.revoke_time.is_none())?;
        Some(Principal {
            id: token.id.clone(),
            name: token.name.clone(),
            role: Role::try_from(token.role).unwrap_or(Role::Unspecified),
            environment: token.environment.clone(),
        })
    }

    /// Whether token `id` exists and is not revoked. Long-lived streams re-check it so a
    /// revocation takes effect on them too, not only on new calls.
    pub fn token_live(&self, id: &str) -> bool {
        self.read()
            .tokens
            .get(id)
            .and_then(|t| t.token.as_ref())
            .is_some_and(|t| t.revoke_time.is_none())
    }

    /// On first start (no tokens at all) creates the admin token: `supplied` when given,
    /// otherwise a random one, which is returned so the caller can show it once.
    pub async fn bootstrap_admin(&self, supplied: Option<String>) -> Result<Option<String>> {
        if !self.read().tokens.is_empty() {
            return Ok(None);
        }
        let meta = Meta {
            actor: "bootstrap".into(),
            reason: "first start".into(),
        };
        // A supplied token must be worth its name: an empty or short one would let anyone in.
        if let Some(s) = &supplied
            && s.trim().len() < MIN_SUPPLIED_SECRET
        {
            return Err(Error::invalid(
                "FLAGWIRE_ADMIN_TOKEN",
                format!("must be at least {MIN_SUPPLIED_SECRET} characters"),
            ));
        }
        let generated = supplied.is_none();
        let secret = supplied.unwrap_or_else(new_secret);
        match self
            .insert_token(&meta, "admin", Role::Admin, "", secret)
            .await
        {
            Ok((_, secret)) => Ok(generated.then_some(secret)),
            // Another replica on the same database bootstrapped first: its token was applied
            // before this write was checked.
            Err(Error::AlreadyExists(_)) if !self.read().tokens.is_empty() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
