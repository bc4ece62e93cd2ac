//! Who an MLflow client is: its Trainyard token, sent as `Bearer <token>`
//! (`MLFLOW_TRACKING_TOKEN`) or as the password of Basic auth
//! (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`). The workspace
//! is the token's; a server administrator names one with MLflow's
//! `X-MLFLOW-WORKSPACE` header.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{header, request::Parts};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use trainyard_core::Role;
use trainyard_db::tokens::hash_secret;
use trainyard_db::Db;
use uuid::Uuid;

use super::error::MlflowError;
use crate::auth::Caller;

/// MLflow's header naming the workspace of a request.
const WORKSPACE_HEADER: &str = "x-mlflow-workspace";

/// An authenticated MLflow caller and the workspace it acts in.
#[derive(Debug, Clone)]
pub struct MlflowCaller {
    caller: Caller,
    workspace_id: Uuid,
}

impl MlflowCaller {
    /// For the token of a distributed run's rank: which rank writes.
    pub fn run_rank(&self) -> Option<u32> {
        self.caller.run_rank
    }

    /// The workspace, for reading (every role reads).
    pub fn read(&self) -> Uuid {
        self.workspace_id
    }

    /// The workspace, if the caller may create and change things in it: a
    /// contributor's token, not a run's own.
    pub fn write(&self) -> Result<Uuid, MlflowError> {
        if self.caller.run_id.is_some() {
            return Err(MlflowError::denied(
                "a run's own token can change only its run",
            ));
        }
        if !self.caller.role.allows(Role::Contributor) {
            return Err(MlflowError::denied(format!(
                "this action needs the contributor role; the token has {}",
                self.caller.role.as_str()
            )));
        }
        Ok(self.workspace_id)
    }

    /// The workspace, if the caller may write to `run_id`: a contributor, or
    /// that run's own token.
    pub fn write_run(&self, run_id: Uuid) -> Result<Uuid, MlflowError> {
        match self.caller.run_id {
            Some(own) if own == run_id => Ok(self.workspace_id),
            _ => self.write(),
        }
    }

    /// Whether the caller is a run's own token (which may also register
    /// models from that run).
    pub fn own_run(&self) -> Option<Uuid> {
        self.caller.run_id
    }
}

/// The token in an `Authorization` header: a bearer token, or the password
/// of Basic auth (the user name is ignored; a lone user name is the token).
fn secret_of(value: &str) -> Option<String> {
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string()).filter(|t| !t.is_empty());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    let secret = if password.is_empty() { user } else { password };
    Some(secret.to_string()).filter(|s| !s.is_empty())
}

impl<S> FromRequestParts<S> for MlflowCaller
where
    S: Send + Sync,
    Db: FromRef<S>,
{
    type Rejection = MlflowError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(found) = parts.extensions.get::<MlflowCaller>() {
            return Ok(found.clone());
        }
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(secret_of)
            .ok_or_else(|| {
                MlflowError::unauthenticated(
                    "send a Trainyard token: set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_PASSWORD with any MLFLOW_TRACKING_USERNAME",
                )
            })?;
        let db = Db::from_ref(state);
        let token = db
            .authenticate_token(&hash_secret(&secret))
            .await?
            .ok_or_else(|| {
                MlflowError::unauthenticated("the token is unknown, revoked or expired")
            })?;
        let named = parts
            .headers
            .get(WORKSPACE_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty());
        let workspace_id = match (token.workspace_id, named) {
            (Some(own), None) => own,
            (own, Some(name)) => {
                let found = db.find_workspace(name).await.map_err(|_| {
                    MlflowError::not_found(format!("No workspace named '{name}'"))
                })?;
                if own.is_some_and(|own| own != found.id) {
                    return Err(MlflowError::not_found(format!("No workspace named '{name}'")));
                }
                found.id
            }
            (None, None) => {
                return Err(MlflowError::invalid(
                    "a server administrator's token acts in no workspace of its own: name one with the X-MLFLOW-WORKSPACE header, or use a workspace token",
                ))
            }
        };
        let caller = MlflowCaller {
            caller: Caller::from(token),
            workspace_id,
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::secret_of;

    #[test]
    fn tokens_come_from_bearer_or_basic_auth() {
        assert_eq!(secret_of("Bearer tyd_x").as_deref(), Some("tyd_x"));
        // "user:tyd_y" and "tyd_z:" in base64.
        assert_eq!(
            secret_of("Basic dXNlcjp0eWRfeQ==").as_deref(),
            Some("tyd_y")
        );
        assert_eq!(secret_of("Basic dHlkX3o6").as_deref(), Some("tyd_z"));
        assert_eq!(secret_of("Bearer "), None);
        assert_eq!(secret_of("Digest abc"), None);
    }
}
