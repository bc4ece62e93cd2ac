//! The searches MLflow clients make, checked: which keys each search knows
//! and which comparisons make sense for them. Parsing is [`super::filter`]'s.

use super::filter::{parse_filter, parse_order, refuse, Clause, Entity, Op, Value};
use crate::FieldError;

/// A run attribute that can be searched and sorted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAttribute {
    /// `run_id`
    RunId,
    /// `run_name` (also `run name`)
    RunName,
    /// `status` (MLflow's names)
    Status,
    /// `user_id`
    UserId,
    /// `artifact_uri`
    ArtifactUri,
    /// `start_time` in ms (also `created`)
    StartTime,
    /// `end_time` in ms
    EndTime,
}

impl RunAttribute {
    fn parse(key: &str) -> Option<RunAttribute> {
        Some(match key {
            "run_id" => RunAttribute::RunId,
            "run_name" | "run name" | "Run name" | "Run Name" => RunAttribute::RunName,
            "status" => RunAttribute::Status,
            "user_id" => RunAttribute::UserId,
            "artifact_uri" => RunAttribute::ArtifactUri,
            "start_time" | "created" | "Created" => RunAttribute::StartTime,
            "end_time" => RunAttribute::EndTime,
            _ => return None,
        })
    }

    fn is_numeric(self) -> bool {
        matches!(self, RunAttribute::StartTime | RunAttribute::EndTime)
    }
}

/// What a run-search clause or sort key is about.
#[derive(Debug, Clone, PartialEq)]
pub enum RunSubject {
    /// A metric's latest value.
    Metric(String),
    /// A param.
    Param(String),
    /// A tag (`mlflow.runName` is the run name).
    Tag(String),
    /// A built-in attribute.
    Attribute(RunAttribute),
    /// A field of a dataset input: `name`, `digest` or `context`.
    Dataset(String),
}

/// A checked run-search clause.
#[derive(Debug, Clone, PartialEq)]
pub struct RunClause {
    /// What is compared.
    pub subject: RunSubject,
    /// How.
    pub op: Op,
    /// With what.
    pub value: Value,
}

/// A sort key of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey<S> {
    /// What is sorted on.
    pub subject: S,
    /// Ascending (`ASC`, the default) or descending.
    pub ascending: bool,
}

/// Parses and checks a run-search filter.
pub fn parse_run_filter(field: &str, text: &str) -> Result<Vec<RunClause>, FieldError> {
    parse_filter(field, text)?
        .into_iter()
        .map(|clause| check_run_clause(field, clause))
        .collect()
}

fn check_run_clause(field: &str, clause: Clause) -> Result<RunClause, FieldError> {
    let Clause {
        entity,
        key,
        op,
        value,
    } = clause;
    let bad_op = |allowed: &str| {
        refuse(
            field,
            format!("Invalid comparator for '{key}'; use one of {allowed}"),
        )
    };
    let subject = match entity {
        Entity::Metric => {
            if !op.is_numeric() || !matches!(value, Value::Number(_)) {
                return Err(bad_op("=, !=, <, <=, >, >= with a number"));
            }
            RunSubject::Metric(key)
        }
        Entity::Param | Entity::Tag => {
            let text_ok = op.is_text() && matches!(value, Value::Text(_));
            let null_ok = matches!(op, Op::IsNull | Op::IsNotNull);
            if !(text_ok || null_ok) {
                return Err(bad_op(
                    "=, !=, LIKE, ILIKE with a quoted string, or IS NULL, IS NOT NULL",
                ));
            }
            if entity == Entity::Param {
                RunSubject::Param(key)
            } else {
                RunSubject::Tag(key)
            }
        }
        Entity::Attribute => {
            let attribute = RunAttribute::parse(&key).ok_or_else(|| {
                refuse(field, format!("Invalid attribute key '{key}' specified. Valid keys are run_id, run_name, status, user_id, artifact_uri, start_time, end_time"))
            })?;
            let ok = if attribute.is_numeric() {
                op.is_numeric() && matches!(value, Value::Number(_))
            } else if matches!(op, Op::In | Op::NotIn) {
                attribute == RunAttribute::RunId && matches!(value, Value::List(_))
            } else {
                op.is_text() && matches!(value, Value::Text(_))
            };
            if !ok {
                return Err(bad_op(if attribute.is_numeric() {
                    "=, !=, <, <=, >, >= with a number"
                } else {
                    "=, !=, LIKE, ILIKE with a quoted string (IN and NOT IN for run_id)"
                }));
            }
            RunSubject::Attribute(attribute)
        }
        Entity::Dataset => {
            if !matches!(key.as_str(), "name" | "digest" | "context") {
                return Err(refuse(
                    field,
                    format!("Invalid dataset key '{key}' specified. Valid keys are name, digest, context"),
                ));
            }
            let ok = (op.is_text() && matches!(value, Value::Text(_)))
                || (matches!(op, Op::In | Op::NotIn) && matches!(value, Value::List(_)));
            if !ok {
                return Err(bad_op("=, !=, LIKE, ILIKE, IN, NOT IN"));
            }
            RunSubject::Dataset(key)
        }
    };
    Ok(RunClause { subject, op, value })
}

/// Parses one run-search `order_by` clause (`metrics.acc DESC`).
pub fn parse_run_order(field: &str, text: &str) -> Result<OrderKey<RunSubject>, FieldError> {
    let (entity, key, ascending) = parse_order(field, text)?;
    let subject = match entity {
        Entity::Metric => RunSubject::Metric(key),
        Entity::Param => RunSubject::Param(key),
        Entity::Tag => RunSubject::Tag(key),
        Entity::Attribute => RunSubject::Attribute(
            RunAttribute::parse(&key)
                .ok_or_else(|| refuse(field, format!("Invalid attribute key '{key}' specified")))?,
        ),
        Entity::Dataset => {
            return Err(refuse(field, format!("Invalid order_by clause '{text}'")));
        }
    };
    Ok(OrderKey { subject, ascending })
}

/// What an experiment, registry or logged-model search clause is about.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogSubject {
    /// The model's name.
    Name,
    /// The run it came from (`run_id`, `source_run_id`).
    RunId,
    /// A model version's source URI (`source_path`).
    SourcePath,
    /// A model version's number (`version_number`).
    Version,
    /// A logged model's id (`model_id`).
    ModelId,
    /// A logged model's status.
    Status,
    /// A logged model's type.
    ModelType,
    /// A tag.
    Tag(String),
    /// A logged model's param.
    Param(String),
}

/// Which search a catalog clause belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogSearch {
    /// `experiments/search`: `name`, `tags.<key>`.
    Experiments,
    /// `registered-models/search`: `name`, `tags.<key>`.
    RegisteredModels,
    /// `model-versions/search`: also `run_id`, `source_path`, `version_number`.
    ModelVersions,
    /// `logged-models/search`: `name`, `model_id`, `status`, `source_run_id`,
    /// `model_type`, `tags.<key>`, `params.<key>`.
    LoggedModels,
}

/// A checked experiment, registry or logged-model search clause.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogClause {
    /// What is compared.
    pub subject: CatalogSubject,
    /// How.
    pub op: Op,
    /// With what.
    pub value: Value,
}

/// Parses and checks an experiment, registry or logged-model search filter.
pub fn parse_catalog_filter(
    field: &str,
    text: &str,
    search: CatalogSearch,
) -> Result<Vec<CatalogClause>, FieldError> {
    parse_filter(field, text)?
        .into_iter()
        .map(
            |Clause {
                 entity,
                 key,
                 op,
                 value,
             }| {
                let subject = match (entity, key.as_str(), search) {
                    (Entity::Tag, _, _) => CatalogSubject::Tag(key.clone()),
                    (Entity::Param, _, CatalogSearch::LoggedModels) => {
                        CatalogSubject::Param(key.clone())
                    }
                    (Entity::Attribute, "name", _) => CatalogSubject::Name,
                    (Entity::Attribute, "run_id", CatalogSearch::ModelVersions)
                    | (Entity::Attribute, "source_run_id", CatalogSearch::LoggedModels) => {
                        CatalogSubject::RunId
                    }
                    (Entity::Attribute, "source_path", CatalogSearch::ModelVersions) => {
                        CatalogSubject::SourcePath
                    }
                    (Entity::Attribute, "version_number", CatalogSearch::ModelVersions) => {
                        CatalogSubject::Version
                    }
                    (Entity::Attribute, "model_id", CatalogSearch::LoggedModels) => {
                        CatalogSubject::ModelId
                    }
                    (Entity::Attribute, "status", CatalogSearch::LoggedModels) => {
                        CatalogSubject::Status
                    }
                    (Entity::Attribute, "model_type", CatalogSearch::LoggedModels) => {
                        CatalogSubject::ModelType
                    }
                    _ => {
                        return Err(refuse(
                            field,
                            format!("Invalid filter key '{key}' for this search"),
                        ))
                    }
                };
                let ok = match subject {
                    CatalogSubject::Version => op.is_numeric() && matches!(value, Value::Number(_)),
                    _ if matches!(op, Op::In | Op::NotIn) => {
                        !matches!(subject, CatalogSubject::Tag(_) | CatalogSubject::Param(_))
                            && matches!(value, Value::List(_))
                    }
                    _ => op.is_text() && matches!(value, Value::Text(_)),
                };
                if !ok {
                    return Err(refuse(
                        field,
                        format!("Invalid comparator or value for '{key}'"),
                    ));
                }
                Ok(CatalogClause { subject, op, value })
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Vec<RunClause> {
        parse_run_filter("filter", text).unwrap()
    }

    #[test]
    fn clauses_of_every_kind_parse() {
        let clauses = run("metrics.acc > 0.9 and params.model = 'cnn' AND tags.`team x` LIKE \"vis%\" and attributes.status != 'FAILED'");
        assert_eq!(clauses.len(), 4);
        assert_eq!(clauses[0].subject, RunSubject::Metric("acc".into()));
        assert_eq!(clauses[0].op, Op::Gt);
        assert_eq!(clauses[0].value, Value::Number(0.9));
        assert_eq!(clauses[1].subject, RunSubject::Param("model".into()));
        assert_eq!(clauses[1].value, Value::Text("cnn".into()));
        assert_eq!(clauses[2].subject, RunSubject::Tag("team x".into()));
        assert_eq!(clauses[2].op, Op::Like);
        assert_eq!(
            clauses[3].subject,
            RunSubject::Attribute(RunAttribute::Status)
        );
    }

    #[test]
    fn keys_keep_their_dots_slashes_and_quotes() {
        let clauses = run("tags.mlflow.parentRunId = 'abc' and metrics.val/acc <= -1e-3 and metric.\"a.b c\" >= 2 and params.lr IS NOT NULL and tags.x is null");
        assert_eq!(
            clauses[0].subject,
            RunSubject::Tag("mlflow.parentRunId".into())
        );
        assert_eq!(clauses[1].subject, RunSubject::Metric("val/acc".into()));
        assert_eq!(clauses[1].value, Value::Number(-1e-3));
        assert_eq!(clauses[2].subject, RunSubject::Metric("a.b c".into()));
        assert_eq!(clauses[3].op, Op::IsNotNull);
        assert_eq!(clauses[4].op, Op::IsNull);
    }

    #[test]
    fn attributes_take_their_aliases_and_lists() {
        let clauses =
            run("created >= 1000 and `Run name` ILIKE '%a%' and run.run_id IN ('a', \"b\")");
        assert_eq!(
            clauses[0].subject,
            RunSubject::Attribute(RunAttribute::StartTime)
        );
        assert_eq!(
            clauses[1].subject,
            RunSubject::Attribute(RunAttribute::RunName)
        );
        assert_eq!(clauses[2].value, Value::List(vec!["a".into(), "b".into()]));
        assert!(run("  ").is_empty());
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        for bad in [
            "metrics.acc > 'high'",
            "params.lr > 1",
            "metrics.acc > 1 or params.a = 'b'",
            "colour.x = 'y'",
            "attributes.colour = 'y'",
            "params.a = 'unterminated",
            "tags.x IN ('a')",
            "start_time = 'yesterday'",
            "metrics.acc",
            "metrics.acc >",
        ] {
            let err = parse_run_filter("filter", bad).unwrap_err();
            assert_eq!(err.field, "filter", "{bad}");
        }
    }

    #[test]
    fn order_by_clauses_parse() {
        let key = parse_run_order("order_by", "metrics.acc DESC").unwrap();
        assert_eq!(key.subject, RunSubject::Metric("acc".into()));
        assert!(!key.ascending);
        let key = parse_run_order("order_by", "attributes.start_time").unwrap();
        assert_eq!(key.subject, RunSubject::Attribute(RunAttribute::StartTime));
        assert!(key.ascending);
        let key = parse_run_order("order_by", "params.`batch size` asc").unwrap();
        assert_eq!(key.subject, RunSubject::Param("batch size".into()));
        assert!(parse_run_order("order_by", "metrics.acc sideways").is_err());
    }

    #[test]
    fn catalog_filters_accept_their_own_keys() {
        let clauses = parse_catalog_filter(
            "filter",
            "name LIKE 'iris%' and tags.stage = 'x' and run_id IN ('a') and version_number > 2",
            CatalogSearch::ModelVersions,
        )
        .unwrap();
        assert_eq!(clauses[0].subject, CatalogSubject::Name);
        assert_eq!(clauses[1].subject, CatalogSubject::Tag("stage".into()));
        assert_eq!(clauses[2].subject, CatalogSubject::RunId);
        assert_eq!(clauses[3].subject, CatalogSubject::Version);
        assert!(
            parse_catalog_filter("filter", "run_id = 'a'", CatalogSearch::RegisteredModels)
                .is_err()
        );
        assert!(parse_catalog_filter("filter", "name > 'a'", CatalogSearch::LoggedModels).is_err());
    }
}
