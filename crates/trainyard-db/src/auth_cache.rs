//! Tokens and workspaces seen recently, so that most requests are
//! authenticated without a round trip to the database.
//!
//! A token is trusted from memory for at most [`CACHE_TTL`]: revoking it
//! through this server drops it here at once; a revocation made by another
//! server over the same database takes effect here within that time. Its
//! expiry is checked on every use. A workspace's id and name never change,
//! so they are kept until the cache is full. Unknown secrets are never kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chrono::Utc;
use uuid::Uuid;

use crate::tokens::Token;
use crate::workspaces::Workspace;
use crate::{lock, CACHE_TTL};

/// Entries each map holds at most; beyond, it starts over.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(crate) struct AuthCache {
    tokens: Mutex<HashMap<Vec<u8>, (Token, Instant)>>,
    workspaces: Mutex<Workspaces>,
}

#[derive(Default)]
struct Workspaces {
    by_id: HashMap<Uuid, Workspace>,
    by_name: HashMap<String, Workspace>,
}

impl AuthCache {
    /// The live token with this secret hash, if it was read recently.
    pub(crate) fn token(&self, secret_hash: &[u8]) -> Option<Token> {
        let tokens = lock(&self.tokens);
        let (token, read_at) = tokens.get(secret_hash)?;
        let expired = token.expires_at.is_some_and(|at| at <= Utc::now());
        (read_at.elapsed() < CACHE_TTL && !expired).then(|| token.clone())
    }

    pub(crate) fn remember_token(&self, secret_hash: &[u8], token: &Token) {
        let mut tokens = lock(&self.tokens);
        if tokens.len() >= MAX_ENTRIES {
            tokens.clear();
        }
        tokens.insert(secret_hash.to_vec(), (token.clone(), Instant::now()));
    }

    /// Drops the tokens `revoked` says are no longer valid.
    pub(crate) fn forget_tokens(&self, revoked: impl Fn(&Token) -> bool) {
        lock(&self.tokens).retain(|_, (token, _)| !revoked(token));
    }

    /// The workspace with this id, or this name when it is not an id.
    pub(crate) fn workspace(&self, id_or_name: &str) -> Option<Workspace> {
        let workspaces = lock(&self.workspaces);
        match Uuid::parse_str(id_or_name) {
            Ok(id) => workspaces.by_id.get(&id).cloned(),
            Err(_) => workspaces.by_name.get(id_or_name).cloned(),
        }
    }

    pub(crate) fn remember_workspace(&self, workspace: &Workspace) {
        let mut workspaces = lock(&self.workspaces);
        if workspaces.by_id.len() >= MAX_ENTRIES {
            *workspaces = Workspaces::default();
        }
        workspaces.by_id.insert(workspace.id, workspace.clone());
        workspaces
            .by_name
            .insert(workspace.name.clone(), workspace.clone());
    }
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as Span;

    fn token(expires_in: Option<Span>) -> Token {
        Token {
            id: Uuid::new_v4(),
            workspace_id: None,
            run_id: Some(Uuid::new_v4()),
            run_rank: None,
            name: "t".into(),
            role_name: "reader".into(),
            prefix: "tyd_".into(),
            created_at: Utc::now(),
            expires_at: expires_in.map(|span| Utc::now() + span),
            revoked_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn a_forgotten_or_expired_token_is_not_served_from_memory() {
        let cache = AuthCache::default();
        let live = token(None);
        let expired = token(Some(Span::seconds(-1)));
        cache.remember_token(b"live", &live);
        cache.remember_token(b"expired", &expired);
        assert_eq!(cache.token(b"live").map(|t| t.id), Some(live.id));
        assert!(cache.token(b"expired").is_none());
        assert!(cache.token(b"unknown").is_none());
        cache.forget_tokens(|t| t.run_id == live.run_id);
        assert!(cache.token(b"live").is_none());
    }

    #[test]
    fn workspaces_are_found_by_id_or_name() {
        let cache = AuthCache::default();
        let workspace = Workspace {
            id: Uuid::new_v4(),
            name: "team".into(),
            description: None,
            created_at: Utc::now(),
        };
        cache.remember_workspace(&workspace);
        assert_eq!(cache.workspace("team").map(|w| w.id), Some(workspace.id));
        let by_id = cache.workspace(&workspace.id.to_string());
        assert_eq!(by_id.map(|w| w.name), Some("team".to_string()));
        assert!(cache.workspace("other").is_none());
    }
}
