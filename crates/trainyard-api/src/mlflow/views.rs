//! The JSON shapes MLflow's REST API answers with, built from Trainyard's rows.

use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use trainyard_core::mlflow::{
    run_status_name, DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, RUN_NAME_TAG, USER_TAG,
};
use trainyard_db::experiments::Experiment;
use trainyard_db::mlflow::{
    millis, LatestPoint, LoggedModel, ModelVersion, RegisteredModel, RunIo, TrackedRun,
};
use uuid::Uuid;

/// The artifact URI of everything under a storage prefix: the proxy maps
/// the path after `mlflow-artifacts:/` straight to the storage key.
pub fn artifact_uri(prefix: &str) -> String {
    format!("mlflow-artifacts:/{prefix}")
}

/// Where a run's files are stored (the same place as Trainyard's run files).
pub fn run_prefix(run_id: Uuid) -> String {
    format!("runs/{run_id}")
}

/// MLflow's id of a logged model: `m-` and 32 hex digits.
pub fn logged_model_id(id: Uuid) -> String {
    format!("m-{}", id.simple())
}

/// Reads a logged model id (`m-<hex>`).
pub fn parse_logged_model_id(text: &str) -> Option<Uuid> {
    Uuid::try_parse(text.strip_prefix("m-")?).ok()
}

/// MLflow's id of an experiment: "0" for the workspace's `Default`.
pub fn experiment_id(id: Uuid, in_default: bool) -> String {
    if in_default {
        DEFAULT_EXPERIMENT_ID.to_string()
    } else {
        id.to_string()
    }
}

/// A key and a value (tags, params).
#[derive(Debug, Serialize)]
pub struct KeyValue {
    key: String,
    value: String,
}

fn pairs(map: &BTreeMap<String, String>) -> Vec<KeyValue> {
    map.iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// A double as protobuf's JSON writes it: NaN and infinities as strings.
pub fn double<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        serializer.serialize_str("NaN")
    } else if value.is_infinite() {
        serializer.serialize_str(if *value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else {
        serializer.serialize_f64(*value)
    }
}

/// An experiment.
#[derive(Debug, Serialize)]
pub struct ExperimentJson {
    experiment_id: String,
    name: String,
    artifact_location: String,
    lifecycle_stage: &'static str,
    last_update_time: i64,
    creation_time: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<KeyValue>,
}

impl From<&Experiment> for ExperimentJson {
    fn from(e: &Experiment) -> Self {
        let created = millis(e.created_at);
        ExperimentJson {
            experiment_id: experiment_id(e.id, e.name == DEFAULT_EXPERIMENT_NAME),
            name: e.name.clone(),
            artifact_location: artifact_uri(&format!("experiments/{}", e.id)),
            lifecycle_stage: if e.archived_at.is_some() {
                "deleted"
            } else {
                "active"
            },
            last_update_time: e.archived_at.map(millis).unwrap_or(created),
            creation_time: created,
            tags: pairs(&e.tags.0),
        }
    }
}

/// A metric's point.
#[derive(Debug, Serialize)]
pub struct MetricJson<'a> {
    pub(super) key: &'a str,
    #[serde(serialize_with = "double")]
    pub(super) value: f64,
    pub(super) timestamp: i64,
    pub(super) step: i64,
}

/// A run's info.
#[derive(Debug, Serialize)]
pub struct RunInfoJson {
    run_id: String,
    run_uuid: String,
    run_name: String,
    experiment_id: String,
    user_id: String,
    status: &'static str,
    start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<i64>,
    artifact_uri: String,
    lifecycle_stage: &'static str,
}

impl From<&TrackedRun> for RunInfoJson {
    fn from(t: &TrackedRun) -> Self {
        let run = &t.run;
        RunInfoJson {
            run_id: run.id.to_string(),
            run_uuid: run.id.to_string(),
            run_name: run.display_name.clone().unwrap_or_default(),
            experiment_id: experiment_id(run.experiment_id, t.in_default_experiment),
            user_id: run.tags.0.get(USER_TAG).cloned().unwrap_or_default(),
            status: run_status_name(run.status()),
            start_time: millis(run.started_at.unwrap_or(run.created_at)),
            end_time: run.ended_at.map(millis),
            artifact_uri: artifact_uri(&run_prefix(run.id)),
            lifecycle_stage: if t.deleted_at.is_some() {
                "deleted"
            } else {
                "active"
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct RunDataJson<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    metrics: Vec<MetricJson<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<KeyValue>,
}

#[derive(Debug, Serialize)]
struct RunInputsJson<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dataset_inputs: Vec<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    model_inputs: Vec<&'a serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct RunOutputsJson<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    model_outputs: Vec<&'a serde_json::Value>,
}

/// A run with its data, inputs and outputs.
#[derive(Debug, Serialize)]
pub struct RunJson<'a> {
    info: RunInfoJson,
    data: RunDataJson<'a>,
    inputs: RunInputsJson<'a>,
    outputs: RunOutputsJson<'a>,
}

impl<'a> RunJson<'a> {
    /// The run with its metrics' latest points and its inputs and outputs.
    pub fn new(run: &'a TrackedRun, metrics: &'a [LatestPoint], io: &'a [RunIo]) -> RunJson<'a> {
        let mut metrics: Vec<_> = metrics
            .iter()
            .map(|m| MetricJson {
                key: &m.key,
                value: m.value,
                timestamp: m.at.map(millis).unwrap_or_default(),
                step: m.step.unwrap_or_default(),
            })
            .collect();
        metrics.sort_unstable_by_key(|m| m.key);
        let mut tags = pairs(&run.run.tags.0);
        if let Some(name) = &run.run.display_name {
            tags.push(KeyValue {
                key: RUN_NAME_TAG.to_string(),
                value: name.clone(),
            });
        }
        let mine = |direction: &'a str, prefix: &'a str| {
            io.iter()
                .filter(move |e| e.direction == direction && e.key.starts_with(prefix))
                .map(|e| &e.body)
                .collect::<Vec<_>>()
        };
        RunJson {
            info: RunInfoJson::from(run),
            data: RunDataJson {
                metrics,
                params: pairs(&run.run.properties.0),
                tags,
            },
            inputs: RunInputsJson {
                dataset_inputs: mine("input", "dataset:"),
                model_inputs: mine("input", "model:"),
            },
            outputs: RunOutputsJson {
                model_outputs: mine("output", "model:"),
            },
        }
    }
}

/// A model version.
#[derive(Debug, Serialize)]
pub struct ModelVersionJson {
    name: String,
    version: String,
    creation_timestamp: i64,
    last_updated_timestamp: i64,
    current_stage: String,
    description: String,
    source: String,
    run_id: String,
    status: &'static str,
    run_link: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_id: Option<String>,
}

impl From<&ModelVersion> for ModelVersionJson {
    fn from(v: &ModelVersion) -> Self {
        ModelVersionJson {
            name: v.name.clone(),
            version: v.version.to_string(),
            creation_timestamp: millis(v.created_at),
            last_updated_timestamp: millis(v.updated_at),
            current_stage: v.stage.clone(),
            description: v.description.clone().unwrap_or_default(),
            source: v
                .source
                .clone()
                .unwrap_or_else(|| artifact_uri(&format!("models/{}", v.id))),
            run_id: v.run_id.map(|r| r.to_string()).unwrap_or_default(),
            status: "READY",
            run_link: String::new(),
            tags: pairs(&v.tags.0),
            aliases: v.aliases.clone(),
            model_id: v.logged_model_id.map(logged_model_id),
        }
    }
}

#[derive(Debug, Serialize)]
struct AliasJson {
    alias: String,
    version: String,
}

/// A registered model with its latest version per stage.
#[derive(Debug, Serialize)]
pub struct RegisteredModelJson {
    name: String,
    creation_timestamp: i64,
    last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    latest_versions: Vec<ModelVersionJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<AliasJson>,
}

impl RegisteredModelJson {
    /// The model; `latest` may hold other models' versions, which are skipped.
    pub fn new(model: &RegisteredModel, latest: &[ModelVersion]) -> RegisteredModelJson {
        RegisteredModelJson {
            name: model.name.clone(),
            creation_timestamp: millis(model.created_at),
            last_updated_timestamp: millis(model.updated_at),
            description: model.description.clone(),
            latest_versions: latest
                .iter()
                .filter(|v| v.name == model.name)
                .map(|v| {
                    // MLflow lists latest versions without their aliases.
                    let mut json = ModelVersionJson::from(v);
                    json.aliases.clear();
                    json
                })
                .collect(),
            tags: pairs(&model.tags.0),
            aliases: model
                .aliases
                .0
                .iter()
                .map(|(alias, version)| AliasJson {
                    alias: alias.clone(),
                    version: version.to_string(),
                })
                .collect(),
        }
    }
}

/// A logged model.
#[derive(Debug, Serialize)]
pub struct LoggedModelJson {
    info: serde_json::Value,
    data: serde_json::Value,
}

impl From<&LoggedModel> for LoggedModelJson {
    fn from(m: &LoggedModel) -> Self {
        let mut info = serde_json::json!({
            "model_id": logged_model_id(m.id),
            "experiment_id": experiment_id(m.experiment_id, m.in_default_experiment),
            "name": m.name,
            "creation_timestamp_ms": millis(m.created_at),
            "last_updated_timestamp_ms": millis(m.updated_at),
            "artifact_uri": artifact_uri(&m.artifact_prefix),
            "status": m.status,
            "model_type": m.model_type.clone().unwrap_or_default(),
            "tags": pairs(&m.tags.0),
        });
        if let Some(run) = m.run_id {
            info["source_run_id"] = run.to_string().into();
        }
        if let Some(message) = &m.status_message {
            info["status_message"] = message.clone().into();
        }
        LoggedModelJson {
            info,
            data: serde_json::json!({ "params": pairs(&m.params.0) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_doubles_are_written_as_protobuf_writes_them() {
        let point = |value| {
            serde_json::to_value(MetricJson {
                key: "m",
                value,
                timestamp: 1,
                step: 2,
            })
            .unwrap()["value"]
                .clone()
        };
        assert_eq!(point(f64::NAN), "NaN");
        assert_eq!(point(f64::INFINITY), "Infinity");
        assert_eq!(point(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(point(0.5), 0.5);
    }

    #[test]
    fn logged_model_ids_round_trip() {
        let id = Uuid::now_v7();
        assert_eq!(parse_logged_model_id(&logged_model_id(id)), Some(id));
        assert_eq!(parse_logged_model_id("m-nonsense"), None);
        assert_eq!(parse_logged_model_id(&id.to_string()), None);
    }
}
