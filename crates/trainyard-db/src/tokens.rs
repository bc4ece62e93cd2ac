//! API tokens. Only a hash of each secret is stored; the secret itself is shown
//! once, by the API, when the token is created.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use trainyard_core::Role;
use uuid::Uuid;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::workspaces::Workspace;
use crate::{Cursor, Db, DbError, Page};

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

/// A token row, without its hash.
#[derive(Debug, Clone, FromRow)]
pub struct Token {
    /// Its id.
    pub id: Uuid,
    /// The workspace it belongs to; `None` for a server administrator's token.
    pub workspace_id: Option<Uuid>,
    /// The run it is scoped to: such a token writes only to that run.
    pub run_id: Option<Uuid>,
    /// For a rank of a distributed run: which.
    pub run_rank: Option<i32>,
    /// A label chosen by its creator.
    pub name: String,
    /// Stored role name; see [`Token::role`].
    #[sqlx(rename = "role")]
    pub role_name: String,
    /// The first characters of the secret, to recognise it by.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last presented (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl Token {
    /// The token's role.
    pub fn role(&self) -> Role {
        // The column's CHECK constraint admits only the three names.
        Role::parse(&self.role_name).unwrap_or(Role::Reader)
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// What is needed to store a new token.
#[derive(Debug)]
pub struct NewToken<'a> {
    /// Its workspace; `None` makes a server administrator's token.
    pub workspace_id: Option<Uuid>,
    /// The run it is scoped to, for a run's own token.
    pub run_id: Option<Uuid>,
    /// For a rank of a distributed run: which.
    pub run_rank: Option<i32>,
    /// Its label.
    pub name: &'a str,
    /// Its role.
    pub role: Role,
    /// Hash of the secret.
    pub secret_hash: &'a [u8],
    /// First characters of the secret.
    pub prefix: &'a str,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The columns of [`Token`], for `concat!` into queries.
macro_rules! columns {
    () => {
        "id, workspace_id, run_id, run_rank, name, role, prefix, created_at, expires_at, revoked_at, last_used_at"
    };
}

/// The CTEs that find a live token by `$1` (its hash) as `found`, and note
/// its use at most once a minute, so that reads stay reads.
macro_rules! authenticated {
    () => {
        concat!(
            "WITH found AS (SELECT ",
            columns!(),
            " FROM api_tokens
               WHERE secret_hash = $1 AND revoked_at IS NULL
                 AND (expires_at IS NULL OR expires_at > now())),
             touched AS (UPDATE api_tokens t SET last_used_at = now() FROM found
               WHERE t.id = found.id
                 AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'))"
        )
    };
}

impl Db {
    /// Stores a new token.
    pub async fn create_token(&self, new: NewToken<'_>) -> Result<Token, DbError> {
        sqlx::query_as::<_, Token>(concat!(
            "INSERT INTO api_tokens (id, workspace_id, name, role, secret_hash, prefix, expires_at, run_id, run_rank)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
            columns!(),
            ""
        ))
        .bind(Uuid::now_v7())
        .bind(new.workspace_id)
        .bind(new.name)
        .bind(new.role.as_str())
        .bind(new.secret_hash)
        .bind(new.prefix)
        .bind(new.expires_at)
        .bind(new.run_id)
        .bind(new.run_rank)
        .fetch_one(self.pool())
        .await
        .map_err(DbError::on_unique(
            "api_tokens_secret_hash_key",
            "token",
            "secret",
        ))
    }

    /// Finds the live (not revoked, not expired) token with this secret hash,
    /// and notes that it was used.
    pub async fn authenticate_token(&self, secret_hash: &[u8]) -> Result<Option<Token>, DbError> {
        if let Some(token) = self.auth_cache.token(secret_hash) {
            return Ok(Some(token));
        }
        let token = sqlx::query_as::<_, Token>(concat!(authenticated!(), " SELECT * FROM found"))
            .bind(secret_hash)
            .fetch_optional(self.pool())
            .await?;
        if let Some(token) = &token {
            self.auth_cache.remember_token(secret_hash, token);
        }
        Ok(token)
    }

    /// The token with `secret_hash` and the workspace named `id_or_name`
    /// (`None` when there is none), in one round trip: most requests need both.
    pub async fn authenticate_in_workspace(
        &self,
        secret_hash: &[u8],
        id_or_name: &str,
    ) -> Result<Option<(Token, Option<Workspace>)>, DbError> {
        if let (Some(token), Some(workspace)) = (
            self.auth_cache.token(secret_hash),
            self.auth_cache.workspace(id_or_name),
        ) {
            return Ok(Some((token, Some(workspace))));
        }
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            token: Token,
            ws_id: Option<Uuid>,
            ws_name: Option<String>,
            ws_description: Option<String>,
            ws_created_at: Option<DateTime<Utc>>,
        }
        let row = sqlx::query_as::<_, Row>(concat!(
            authenticated!(),
            ", named AS (SELECT id AS ws_id, name AS ws_name, description AS ws_description,
                                created_at AS ws_created_at
                         FROM workspaces WHERE id = $2 OR ($2 IS NULL AND name = $3))
             SELECT found.*, named.* FROM found LEFT JOIN named ON true"
        ))
        .bind(secret_hash)
        .bind(Uuid::parse_str(id_or_name).ok())
        .bind(id_or_name)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| {
            let workspace = match (row.ws_id, row.ws_name, row.ws_created_at) {
                (Some(id), Some(name), Some(created_at)) => Some(Workspace {
                    id,
                    name,
                    description: row.ws_description,
                    created_at,
                }),
                _ => None,
            };
            self.auth_cache.remember_token(secret_hash, &row.token);
            if let Some(workspace) = &workspace {
                self.auth_cache.remember_workspace(workspace);
            }
            (row.token, workspace)
        }))
    }

    /// Whether any server administrator token exists (revoked ones included).
    pub async fn has_server_admin_token(&self) -> Result<bool, DbError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM api_tokens WHERE workspace_id IS NULL LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        Ok(found.is_some())
    }

    /// Lists a workspace's tokens, newest first.
    pub async fn list_tokens(
        &self,
        workspace_id: Uuid,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<Page<Token>, DbError> {
        let rows = sqlx::query_as::<_, Token>(concat!(
            "SELECT ",
            columns!(),
            " FROM api_tokens
             WHERE workspace_id = $1 AND run_id IS NULL
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(workspace_id)
        .bind(after.map(|c| c.created_at))
        .bind(after.map(|c| c.id))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(rows, limit, Token::cursor))
    }

    /// Revokes a token of a workspace. Revoking twice is harmless.
    pub async fn revoke_token(&self, workspace_id: Uuid, token_id: Uuid) -> Result<Token, DbError> {
        let revoked = sqlx::query_as::<_, Token>(concat!(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
             WHERE id = $1 AND workspace_id = $2 RETURNING ",
            columns!(),
            ""
        ))
        .bind(token_id)
        .bind(workspace_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("token"))?;
        self.auth_cache.forget_tokens(|token| token.id == token_id);
        Ok(revoked)
    }
}

impl Db {
    /// Revokes every token scoped to a run (when the run ends).
    pub async fn revoke_run_tokens(&self, run_id: Uuid) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = now() WHERE run_id = $1 AND revoked_at IS NULL",
        )
        .bind(run_id)
        .execute(self.pool())
        .await?;
        self.auth_cache
            .forget_tokens(|token| token.run_id == Some(run_id));
        Ok(())
    }
}

impl Db {
    /// Creates the token a run's own process uses: contributor rights, usable
    /// only on that run, revoked when the run ends. Returns its secret.
    pub async fn create_run_token(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        rank: Option<u32>,
    ) -> Result<String, DbError> {
        let new = new_secret();
        self.create_token(NewToken {
            workspace_id: Some(workspace_id),
            run_id: Some(run_id),
            run_rank: rank.map(|r| r as i32),
            name: "run",
            role: Role::Contributor,
            secret_hash: &new.hash,
            prefix: &new.prefix,
            expires_at: None,
        })
        .await?;
        Ok(new.secret)
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
