//! API tokens of a workspace: created and revoked by its administrators.

mod create;
mod current;
mod list;
mod revoke;

use chrono::{DateTime, Utc};
use serde::Serialize;
use trainyard_core::Role;
use trainyard_db::tokens::Token;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create::create_token, list::list_tokens))
        .routes(routes!(revoke::revoke_token))
        .routes(routes!(current::current_token))
}

/// A token as the API shows it: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Its id.
    pub id: Uuid,
    /// Its workspace; absent for a server administrator's token.
    pub workspace_id: Option<Uuid>,
    /// Its label.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<Token> for TokenView {
    fn from(t: Token) -> Self {
        TokenView {
            id: t.id,
            workspace_id: t.workspace_id,
            role: t.role(),
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            last_used_at: t.last_used_at,
        }
    }
}
