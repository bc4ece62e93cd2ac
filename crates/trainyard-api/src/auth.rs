//! Bearer tokens: generation, hashing, and who the caller is.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{header, request::Parts};
use trainyard_core::Role;
use trainyard_db::tokens::{hash_secret, new_secret, secret_from, NewToken, Token};
use trainyard_db::workspaces::Workspace;
use trainyard_db::{Db, DbError};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::AppPath;

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
        run_id: None,
        run_rank: None,
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
        run_id: None,
        run_rank: None,
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
    /// For a run's own token, the one run it may write to.
    pub run_id: Option<Uuid>,
    /// For the token of a distributed run's rank: which rank writes.
    pub run_rank: Option<u32>,
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
        let token = Db::from_ref(state)
            .authenticate_token(&hash_secret(bearer_secret(parts)?))
            .await?
            .ok_or(UNKNOWN_TOKEN)?;
        let caller = Caller::from(token);
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A caller already established for this request, or the hash of the
/// secret it presents.
enum Who {
    Known(Caller),
    Presenting(Vec<u8>),
}

const UNKNOWN_TOKEN: ApiError =
    ApiError::Unauthenticated("the token is unknown, revoked or expired");

/// The secret of the request's `Authorization: Bearer` header.
fn bearer_secret(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthenticated(
            "send a token in the Authorization header: `Authorization: Bearer <token>`",
        ))?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .ok_or(ApiError::Unauthenticated(
            "the Authorization header must be `Bearer <token>`",
        ))
}

impl From<Token> for Caller {
    fn from(token: Token) -> Caller {
        Caller {
            token_id: token.id,
            workspace_id: token.workspace_id,
            role: token.role(),
            run_id: token.run_id,
            run_rank: token.run_rank.map(|r| r.max(0) as u32),
        }
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
    /// The workspace's id, if the caller's role allows `needed`. A run's own
    /// token only reads here; it writes through [`InWorkspace::require_run_write`].
    pub fn require(&self, needed: Role) -> Result<Uuid, ApiError> {
        if needed > Role::Reader && self.caller.run_id.is_some() {
            return Err(ApiError::Forbidden(
                "a run's own token can change only its run".into(),
            ));
        }
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

impl InWorkspace {
    /// The workspace's id, if the caller may write to `run_id`: a contributor,
    /// or that run's own token.
    pub fn require_run_write(&self, run_id: Uuid) -> Result<Uuid, ApiError> {
        match self.caller.run_id {
            Some(own) if own == run_id => Ok(self.workspace.id),
            Some(_) => Err(ApiError::Forbidden(
                "a run's own token can change only its run".into(),
            )),
            None => self.require(Role::Contributor),
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
        // Refuse a missing or malformed token before looking at the path.
        let who = match parts.extensions.get::<Caller>() {
            Some(caller) => Who::Known(caller.clone()),
            None => Who::Presenting(hash_secret(bearer_secret(parts)?)),
        };
        let AppPath(params) =
            AppPath::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
                .await?;
        let named = params
            .get("workspace")
            .ok_or(ApiError::NotFound("workspace"))?;
        let db = Db::from_ref(state);
        let (caller, found) = match who {
            Who::Known(caller) => match db.find_workspace(named).await {
                Ok(workspace) => (caller, Some(workspace)),
                Err(DbError::NotFound(_)) => (caller, None),
                Err(err) => return Err(err.into()),
            },
            Who::Presenting(secret) => {
                let (token, found) = db
                    .authenticate_in_workspace(&secret, named)
                    .await?
                    .ok_or(UNKNOWN_TOKEN)?;
                let caller = Caller::from(token);
                parts.extensions.insert(caller.clone());
                (caller, found)
            }
        };
        match found {
            Some(workspace)
                if caller.is_server_admin() || caller.workspace_id == Some(workspace.id) =>
            {
                Ok(InWorkspace { workspace, caller })
            }
            _ => Err(ApiError::NotFound("workspace")),
        }
    }
}
