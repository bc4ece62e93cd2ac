//! Datastores: the workspace's `default` (the server's object store) and
//! registered `file://` folders; files are uploaded, listed and downloaded.

mod files;
mod register;

use chrono::{DateTime, Utc};
use serde::Serialize;
use trainyard_db::DbError;
use trainyard_storage::Storage;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::ApiError;
use crate::AppState;

/// The name of every workspace's built-in datastore.
pub(crate) const DEFAULT_DATASTORE: &str = "default";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            register::register_datastore,
            register::list_datastores
        ))
        .routes(routes!(register::get_datastore))
        .routes(routes!(
            files::upload_datastore_file,
            files::list_datastore_files
        ))
        .routes(routes!(files::download_datastore_file))
}

/// A datastore as the API shows it (never any credential).
#[derive(Debug, Serialize, ToSchema)]
pub struct DatastoreView {
    /// Its name.
    pub name: String,
    /// `builtin` for the default, else the URL's scheme (`file`).
    pub kind: String,
    /// Where it is; `builtin` for the default.
    pub url: String,
    /// Whether it is the workspace's default.
    pub is_default: bool,
    /// When it was registered (absent for the default).
    pub created_at: Option<DateTime<Utc>>,
}

impl DatastoreView {
    pub(crate) fn builtin() -> DatastoreView {
        DatastoreView {
            name: DEFAULT_DATASTORE.to_string(),
            kind: "builtin".to_string(),
            url: "builtin".to_string(),
            is_default: true,
            created_at: None,
        }
    }
}

/// A datastore's files: a store and the key prefix under which they live.
pub(crate) struct DatastoreFiles {
    pub storage: Storage,
    pub prefix: String,
}

impl DatastoreFiles {
    /// The storage key of a path in the datastore.
    pub fn key(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.prefix)
        }
    }
}

/// Opens a datastore of the workspace by name; `field` names the input for errors.
pub(crate) async fn open_datastore(
    state: &AppState,
    workspace_id: Uuid,
    name: &str,
    field: &str,
) -> Result<DatastoreFiles, ApiError> {
    if name == DEFAULT_DATASTORE {
        return Ok(DatastoreFiles {
            storage: state.storage.clone(),
            prefix: format!("datastores/{workspace_id}/{DEFAULT_DATASTORE}"),
        });
    }
    let datastore = state
        .db
        .get_datastore(workspace_id, name)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => ApiError::invalid(
                field,
                format!("no datastore named {name:?} in the workspace"),
            ),
            other => other.into(),
        })?;
    let storage =
        Storage::from_url(&datastore.url).map_err(|e| ApiError::invalid(field, e.to_string()))?;
    Ok(DatastoreFiles {
        storage,
        prefix: String::new(),
    })
}

/// Checks a relative path inside a datastore.
pub(crate) fn check_relative(field: &str, path: &str) -> Result<(), ApiError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.split('/').any(|p| p == ".." || p == ".")
        || path.chars().any(char::is_control);
    if bad {
        return Err(ApiError::invalid(
            field,
            "must be a relative path inside the datastore (no '..', no leading '/')",
        ));
    }
    Ok(())
}
