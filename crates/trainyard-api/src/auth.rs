//! Bearer tokens: generation, hashing, and who the caller is.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{header, request::Parts};
use rand::RngCore;
use sha2::{Digest, Sha256};
use trainyard_core::Role;
use trainyard_db::tokens::NewToken;
use trainyard_db::workspaces::Workspace;
use trainyard_db::{Db, DbError};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::AppPath;

/// Every secret starts with this, so leaked tokens are easy to scan for.
pub const TOKEN_PREFIX: &str = "tyd_";
/// How many characters of a secret are kept in clear to recognise it.
const SHOWN_PREFIX_LEN: usize = 12;

/// A freshly generated secret and what is stored of it.
#[derive(Debug)]
pub struct NewSecret {
    /// The secret, shown to its owner once and never stored.
    pub secret: String,
    /// Its SHA-256 hash, which is stored.
    pub hash: Vec<u8>,
    /// Its first characters, stored to recognise it.
    pub prefix: String,
}

/// Generates a new secret of 256 random bits.
pub fn new_secret() -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    secret_from(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

/// The stored form of a secret chosen elsewhere (the configured admin token).
pub fn secret_from(secret: String) -> NewSecret {
    NewSecret {
        hash: hash_secret(&secret),
        prefix: secret.chars().take(SHOWN_PREFIX_LEN).collect(),
        secret,
    }
}

/// Secrets carry 256 bits of entropy, so a plain SHA-256 is a safe hash: there
/// is nothing to guess that a slow hash would protect.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Accepts `secret` as a server administrator token, storing its hash if it
/// is not stored yet.
pub async fn ensure_admin_token(db: &Db, secret: &str) -> Result<(), DbError> {
    let stored = secret_from(secret.to_string());
    if db.authenticate_token(&stored.hash).await?.is_some() {
        return Ok(());
    }
    db.create_token(NewToken {
        workspace_id: None,
        name: "configured-admin",
        role: Role::Admin,
        secret_hash: &stored.hash,
        prefix: &stored.prefix,
        expires_at: None,
    })
    .await
    .map(|_| ())
}

/// Creates a new server administrator token and returns its secret.
pub async fn create_admin_token(db: &Db) -> Result<String, DbError> {
    let new = new_secret();
    db.create_token(NewToken {
        workspace_id: None,
        name: "bootstrap-admin",
        role: Role::Admin,
        secret_hash: &new.hash,
        prefix: &new.prefix,
        expires_at: None,
    })
    .await?;
    Ok(new.secret)
}

/// Who is calling: established from the bearer token on every request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's id.
    pub token_id: Uuid,
    /// The token's workspace; `None` for a server administrator.
    pub workspace_id: Option<Uuid>,
    /// The token's role.
    pub role: Role,
}

impl Caller {
    /// Whether this is a server administrator, who may act in every workspace.
    pub fn is_server_admin(&self) -> bool {
        self.workspace_id.is_none() && self.role == Role::Admin
    }

    /// Refuses callers that are not server administrators.
    pub fn require_server_admin(&self) -> Result<(), ApiError> {
        if self.is_server_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this action needs a server administrator's token".into(),
            ))
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Db: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthenticated(
                "send a token in the Authorization header: `Authorization: Bearer <token>`",
            ))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .ok_or(ApiError::Unauthenticated(
                "the Authorization header must be `Bearer <token>`",
            ))?;
        let token = Db::from_ref(state)
            .authenticate_token(&hash_secret(secret))
            .await?
            .ok_or(ApiError::Unauthenticated(
                "the token is unknown, revoked or expired",
            ))?;
        let caller = Caller {
            token_id: token.id,
            workspace_id: token.workspace_id,
            role: token.role(),
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// The workspace named in the path (`{workspace}`, by name or id), reached by
/// an authenticated caller who belongs to it. A workspace the caller does not
/// belong to is answered as not found, so its existence does not leak.
#[derive(Debug, Clone)]
pub struct InWorkspace {
    /// The workspace.
    pub workspace: Workspace,
    /// Who is calling.
    pub caller: Caller,
}

impl InWorkspace {
    /// The workspace's id, if the caller's role allows `needed`.
    pub fn require(&self, needed: Role) -> Result<Uuid, ApiError> {
        if self.caller.role.allows(needed) {
            Ok(self.workspace.id)
        } else {
            Err(ApiError::Forbidden(format!(
                "this action needs the {} role; the token has {}",
                needed.as_str(),
                self.caller.role.as_str()
            )))
        }
    }
}

impl<S> FromRequestParts<S> for InWorkspace
where
    S: Send + Sync,
    Db: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let AppPath(params) =
            AppPath::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
                .await?;
        let workspace = params
            .get("workspace")
            .ok_or(ApiError::NotFound("workspace"))?;
        let found = Db::from_ref(state).find_workspace(workspace).await?;
        if !caller.is_server_admin() && caller.workspace_id != Some(found.id) {
            return Err(ApiError::NotFound("workspace"));
        }
        Ok(InWorkspace {
            workspace: found,
            caller,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(TOKEN_PREFIX));
        assert_eq!(a.secret.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(a.hash, hash_secret(&a.secret));
        assert_eq!(a.hash.len(), 32);
        assert!(a.secret.starts_with(&a.prefix));
        assert_eq!(a.prefix.len(), SHOWN_PREFIX_LEN);
    }
}
