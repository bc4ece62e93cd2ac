//! Metric shapes and the rules for their values.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validate::FieldError;

/// Most metric entries one request may carry.
pub const MAX_METRICS_PER_REQUEST: usize = 10_000;
/// Longest metric name.
pub const MAX_METRIC_NAME_LEN: usize = 250;

/// The shape of a metric; a metric keeps the shape it was first logged with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// A number per step (`run.log`).
    #[default]
    Scalar,
    /// A list of numbers (`run.log_list`).
    List,
    /// One row of named values (`run.log_row`).
    Row,
    /// Named columns of values (`run.log_table`).
    Table,
    /// An image stored as a run file (`run.log_image`).
    Image,
}

impl MetricKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Scalar => "scalar",
            MetricKind::List => "list",
            MetricKind::Row => "row",
            MetricKind::Table => "table",
            MetricKind::Image => "image",
        }
    }

    /// Parses a stored kind name.
    pub fn parse(s: &str) -> Option<MetricKind> {
        [
            Self::Scalar,
            Self::List,
            Self::Row,
            Self::Table,
            Self::Image,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A checked metric value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// A scalar: any double, NaN and infinities included.
    Scalar(f64),
    /// Any other shape, as JSON.
    Json(serde_json::Value),
}

/// Checks a metric name given in `field`.
pub fn metric_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if name.chars().count() > MAX_METRIC_NAME_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_METRIC_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A scalar: a JSON number, or the strings `NaN`, `Infinity`, `-Infinity`
/// (JSON itself has no way to write them).
pub fn scalar(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// The JSON form of a scalar, with the strings for NaN and the infinities.
pub fn scalar_json(value: f64) -> serde_json::Value {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "Infinity".into()
    } else if value == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        value.into()
    }
}

fn is_scalar_or_null(value: &serde_json::Value) -> bool {
    value.is_null() || value.is_boolean() || scalar(value).is_some() || value.is_string()
}

/// Checks that `value` (given in `field`) has the shape `kind` requires.
pub fn metric_value(
    kind: MetricKind,
    field: &str,
    value: &serde_json::Value,
) -> Result<MetricValue, FieldError> {
    use serde_json::Value;
    let bad = |reason: &str| Err(FieldError::new(field, reason));
    match kind {
        MetricKind::Scalar => match scalar(value) {
            Some(number) => Ok(MetricValue::Scalar(number)),
            None => bad("must be a number, or \"NaN\", \"Infinity\" or \"-Infinity\""),
        },
        MetricKind::List => match value {
            Value::Array(items) if items.iter().all(is_scalar_or_null) => {
                Ok(MetricValue::Json(value.clone()))
            }
            _ => bad("must be a list of numbers or strings"),
        },
        MetricKind::Row => match value {
            Value::Object(cells) if cells.values().all(is_scalar_or_null) => {
                Ok(MetricValue::Json(value.clone()))
            }
            _ => bad("must be an object of column name to number or string"),
        },
        MetricKind::Table => match value {
            Value::Object(columns) => {
                let lengths: Vec<usize> = columns
                    .values()
                    .map(|c| match c {
                        Value::Array(cells) if cells.iter().all(is_scalar_or_null) => {
                            Some(cells.len())
                        }
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        FieldError::new(field, "every column must be a list of numbers or strings")
                    })?;
                if lengths.windows(2).any(|w| w[0] != w[1]) {
                    return bad("every column must have the same length");
                }
                Ok(MetricValue::Json(value.clone()))
            }
            _ => bad("must be an object of column name to list of values"),
        },
        MetricKind::Image => match value.get("path").and_then(Value::as_str) {
            Some(path)
                if !path.is_empty()
                    && !path.starts_with('/')
                    && !path.split('/').any(|p| p == "..") =>
            {
                Ok(MetricValue::Json(value.clone()))
            }
            _ => bad("must be {\"path\": \"<a run file's path>\"}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_include_the_special_values() {
        assert_eq!(scalar(&json!(1.5)), Some(1.5));
        assert!(scalar(&json!("NaN")).unwrap().is_nan());
        assert_eq!(scalar(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(scalar(&json!("1.5")), None);
        assert_eq!(scalar_json(f64::INFINITY), json!("Infinity"));
        assert_eq!(scalar_json(2.0), json!(2.0));
    }

    #[test]
    fn each_shape_is_checked() {
        assert!(metric_value(MetricKind::List, "v", &json!([1, 2.5, "x"])).is_ok());
        assert!(metric_value(MetricKind::List, "v", &json!([[1]])).is_err());
        assert!(metric_value(MetricKind::Row, "v", &json!({"epoch": 1, "acc": 0.9})).is_ok());
        assert!(metric_value(MetricKind::Table, "v", &json!({"a": [1, 2], "b": [3, 4]})).is_ok());
        let uneven =
            metric_value(MetricKind::Table, "v", &json!({"a": [1], "b": [3, 4]})).unwrap_err();
        assert!(uneven.reason.contains("same length"));
        assert!(metric_value(MetricKind::Image, "v", &json!({"path": "images/a.png"})).is_ok());
        assert!(metric_value(MetricKind::Image, "v", &json!({"path": "../a.png"})).is_err());
        assert_eq!(
            metric_value(MetricKind::Scalar, "metrics[2].value", &json!("x"))
                .unwrap_err()
                .field,
            "metrics[2].value"
        );
    }

    #[test]
    fn names_are_bounded() {
        assert!(metric_name("n", "loss/train").is_ok());
        assert!(metric_name("n", " ").is_err());
        assert!(metric_name("n", &"x".repeat(251)).is_err());
    }
}

/// The name a metric is kept under when rank `rank` of a distributed run
/// logs it: rank 0's (and an ordinary run's) as given, rank N's as
/// `rank-N/<name>`, so every rank's points are kept and rank 0's are the
/// run's.
pub fn rank_metric_name(rank: Option<u32>, name: String) -> String {
    match rank {
        Some(rank) if rank > 0 => format!("rank-{rank}/{name}"),
        _ => name,
    }
}

/// Whether a metric is another rank's than 0 (hidden unless asked for).
pub fn is_other_rank_metric(name: &str) -> bool {
    name.strip_prefix("rank-")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(rank, _)| !rank.is_empty() && rank.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod rank_tests {
    use super::*;

    #[test]
    fn other_ranks_metrics_are_kept_apart() {
        assert_eq!(rank_metric_name(None, "loss".into()), "loss");
        assert_eq!(rank_metric_name(Some(0), "loss".into()), "loss");
        let name = rank_metric_name(Some(3), "loss".into());
        assert_eq!(name, "rank-3/loss");
        assert!(is_other_rank_metric(&name));
        assert!(!is_other_rank_metric("loss"));
        assert!(!is_other_rank_metric("rank-x/loss"));
        assert!(!is_other_rank_metric("rank-/loss"));
    }
}
