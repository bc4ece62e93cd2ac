use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use trainyard_core::{Name, Role};
use trainyard_db::tokens::NewToken;
use trainyard_db::Db;
use utoipa::ToSchema;

use super::TokenView;
use trainyard_db::tokens::new_secret;

use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::AppJson;

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label, e.g. `ci` or `alice-laptop`.
    pub name: String,
    /// `reader`, `contributor` or `admin`.
    pub role: String,
    /// When it stops working; never if absent.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token just created, with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token.
    #[serde(flatten)]
    pub token: TokenView,
    /// The secret to send as `Authorization: Bearer <secret>`. Keep it: it
    /// cannot be read again.
    pub secret: String,
}

/// Creates a token in the workspace (workspace administrators).
#[utoipa::path(post, path = "/workspaces/{workspace}/tokens", tag = "tokens",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created; the secret is in the answer", body = CreatedToken),
        (status = 403, description = "Not a workspace administrator", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
pub(super) async fn create_token(
    State(db): State<Db>,
    scope: InWorkspace,
    AppJson(body): AppJson<CreateToken>,
) -> ApiResult<(StatusCode, AppJson<CreatedToken>)> {
    let workspace_id = scope.require(Role::Admin)?;
    let name = Name::parse("name", &body.name)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::invalid("role", "must be one of reader, contributor, admin"))?;
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    let secret = new_secret();
    let token = db
        .create_token(NewToken {
            workspace_id: Some(workspace_id),
            name: name.as_str(),
            role,
            secret_hash: &secret.hash,
            prefix: &secret.prefix,
            expires_at: body.expires_at,
            run_id: None,
            run_rank: None,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        AppJson(CreatedToken {
            token: token.into(),
            secret: secret.secret,
        }),
    ))
}
