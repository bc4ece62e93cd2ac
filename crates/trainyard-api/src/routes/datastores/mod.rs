//! Datastores: the workspace's `default` (the server's object store) and
//! registered folders and buckets (`file://`, `s3://`, `az://`, `gs://`);
//! files are uploaded, listed and downloaded. Credentials are never stored:
//! an option that holds a secret names a variable of the server's
//! environment, read each time the datastore is opened.

mod files;
mod register;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// How it is reached; secrets appear only as the name of the server's
    /// environment variable that holds them.
    pub options: BTreeMap<String, OptionValue>,
    /// When it was registered (absent for the default).
    pub created_at: Option<DateTime<Utc>>,
}

impl From<trainyard_db::datastores::Datastore> for DatastoreView {
    fn from(d: trainyard_db::datastores::Datastore) -> DatastoreView {
        DatastoreView {
            name: d.name,
            kind: d.kind,
            url: d.url,
            is_default: false,
            options: serde_json::from_value(d.options.0).unwrap_or_default(),
            created_at: Some(d.created_at),
        }
    }
}

/// A datastore option's value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OptionValue {
    /// Kept as written; not allowed for a secret.
    Value(String),
    /// `{"env": "NAME"}`: the server's environment variable that holds the
    /// value, read each time the datastore is opened.
    Env {
        /// The variable's name.
        env: String,
    },
}

/// Whether an option (object_store's key, e.g. `aws_secret_access_key`)
/// holds a credential, which may only be given as an environment variable.
pub(crate) fn is_secret_option(key: &str) -> bool {
    ["key", "secret", "token", "password", "credential", "sas"]
        .iter()
        .any(|word| key.to_ascii_lowercase().contains(word))
}

/// Checks a datastore's options: every secret must be an environment
/// reference. Returns them as stored.
pub(crate) fn check_options(
    options: &BTreeMap<String, OptionValue>,
) -> Result<serde_json::Value, ApiError> {
    for (key, value) in options {
        if let OptionValue::Value(_) = value {
            if is_secret_option(key) {
                return Err(ApiError::invalid(
                    format!("options.{key}"),
                    "holds a secret, which is never stored: give {\"env\": \"NAME\"}, a variable of the server's environment that holds it",
                ));
            }
        }
    }
    Ok(serde_json::to_value(options).unwrap_or_default())
}

/// The options with environment references replaced by their values.
pub(crate) fn resolve_options(
    options: &BTreeMap<String, OptionValue>,
) -> Result<Vec<(String, String)>, ApiError> {
    options
        .iter()
        .map(|(key, value)| match value {
            OptionValue::Value(v) => Ok((key.clone(), v.clone())),
            OptionValue::Env { env } => {
                std::env::var(env).map(|v| (key.clone(), v)).map_err(|_| {
                    ApiError::invalid(
                        format!("options.{key}"),
                        format!("the server's environment has no variable {env}"),
                    )
                })
            }
        })
        .collect()
}

impl DatastoreView {
    pub(crate) fn builtin() -> DatastoreView {
        DatastoreView {
            name: DEFAULT_DATASTORE.to_string(),
            kind: "builtin".to_string(),
            url: "builtin".to_string(),
            is_default: true,
            options: BTreeMap::new(),
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
    let view = DatastoreView::from(datastore);
    let options = resolve_options(&view.options)?;
    let storage = Storage::from_url(&view.url, &options)
        .map_err(|e| ApiError::invalid(field, e.to_string()))?;
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
