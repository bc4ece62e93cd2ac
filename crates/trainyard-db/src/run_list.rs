//! Listing runs: filters on experiment, status, tags, properties, creation
//! time and metrics' latest values; newest first (keyset pages) or by a
//! metric's latest value (offset pages).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use std::collections::BTreeMap;
use trainyard_core::RunStatus;
use uuid::Uuid;

use crate::runs::{columns, Run};
use crate::{Cursor, Db, DbError, Page};

/// A comparison of a metric's latest value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricOp {
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
}

impl MetricOp {
    fn as_sql(self) -> &'static str {
        match self {
            MetricOp::Greater => ">",
            MetricOp::GreaterOrEqual => ">=",
            MetricOp::Less => "<",
            MetricOp::LessOrEqual => "<=",
            MetricOp::Equal => "=",
            MetricOp::NotEqual => "!=",
        }
    }

    /// Parses `accuracy>=0.9` into its name, operator and value.
    pub fn parse_filter(text: &str) -> Option<(String, MetricOp, f64)> {
        const OPS: [(&str, MetricOp); 6] = [
            (">=", MetricOp::GreaterOrEqual),
            ("<=", MetricOp::LessOrEqual),
            ("!=", MetricOp::NotEqual),
            (">", MetricOp::Greater),
            ("<", MetricOp::Less),
            ("=", MetricOp::Equal),
        ];
        let (at, op, len) = OPS
            .iter()
            .filter_map(|(symbol, op)| text.find(symbol).map(|at| (at, *op, symbol.len())))
            .min_by_key(|(at, _, len)| (*at, usize::MAX - len))?;
        let name = text[..at].trim();
        let value = text[at + len..].trim().parse::<f64>().ok()?;
        (!name.is_empty()).then(|| (name.to_string(), op, value))
    }
}

/// Which runs to list. Empty fields do not filter; all filters must hold.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    /// Only runs of this experiment.
    pub experiment_id: Option<Uuid>,
    /// Only runs in one of these statuses.
    pub statuses: Vec<RunStatus>,
    /// Only runs carrying each of these tags with exactly this value.
    pub tags: BTreeMap<String, String>,
    /// Only runs carrying each of these tag keys, whatever the value.
    pub tag_keys: Vec<String>,
    /// Only runs carrying each of these properties with exactly this value.
    pub properties: BTreeMap<String, String>,
    /// Only runs carrying each of these property keys.
    pub property_keys: Vec<String>,
    /// Only runs whose metric's latest value compares so.
    pub metrics: Vec<(String, MetricOp, f64)>,
    /// Only runs submitted at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only runs submitted before this time.
    pub created_before: Option<DateTime<Utc>>,
}

/// The filter conditions shared by both orders; binds $1 to $13.
macro_rules! filtered {
    () => {
        " FROM runs
         WHERE workspace_id = $1
           AND ($2::uuid IS NULL OR experiment_id = $2)
           AND (cardinality($3::text[]) = 0 OR status = ANY($3))
           AND tags @> $4 AND tags ?& $5
           AND properties @> $6 AND properties ?& $7
           AND ($8::timestamptz IS NULL OR created_at >= $8)
           AND ($9::timestamptz IS NULL OR created_at < $9)
           AND NOT EXISTS (
               SELECT 1 FROM UNNEST($10::text[], $11::text[], $12::float8[]) AS f(name, op, value)
               WHERE NOT EXISTS (
                   SELECT 1 FROM metrics m
                   WHERE m.run_id = runs.id AND m.name = f.name AND CASE f.op
                       WHEN '>' THEN m.latest_value > f.value
                       WHEN '>=' THEN m.latest_value >= f.value
                       WHEN '<' THEN m.latest_value < f.value
                       WHEN '<=' THEN m.latest_value <= f.value
                       WHEN '=' THEN m.latest_value = f.value
                       ELSE m.latest_value <> f.value END))"
    };
}

/// Binds the filter's values to $1 to $12 of a query made with `filtered!`.
macro_rules! bind_filter {
    ($query:expr, $workspace:expr, $filter:expr, $statuses:expr, $names:expr, $ops:expr, $values:expr) => {
        $query
            .bind($workspace)
            .bind($filter.experiment_id)
            .bind($statuses)
            .bind(Json(&$filter.tags))
            .bind(&$filter.tag_keys)
            .bind(Json(&$filter.properties))
            .bind(&$filter.property_keys)
            .bind($filter.created_after)
            .bind($filter.created_before)
            .bind($names)
            .bind($ops)
            .bind($values)
    };
}

/// The filter's arrays, in the shapes SQL binds.
fn arrays(filter: &RunFilter) -> (Vec<&str>, Vec<&str>, Vec<&str>, Vec<f64>) {
    let statuses = filter.statuses.iter().map(|s| s.as_str()).collect();
    let names = filter.metrics.iter().map(|(n, _, _)| n.as_str()).collect();
    let ops = filter
        .metrics
        .iter()
        .map(|(_, op, _)| op.as_sql())
        .collect();
    let values = filter.metrics.iter().map(|(_, _, v)| *v).collect();
    (statuses, names, ops, values)
}

impl Db {
    /// Lists a workspace's runs, newest first, in keyset pages.
    pub async fn list_runs(
        &self,
        workspace_id: Uuid,
        filter: &RunFilter,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<Page<Run>, DbError> {
        let (statuses, names, ops, values) = arrays(filter);
        let query = sqlx::query_as::<_, Run>(concat!(
            "SELECT ",
            columns!(),
            filtered!(),
            " AND ($13::timestamptz IS NULL OR (created_at, id) < ($13, $14))
             ORDER BY created_at DESC, id DESC LIMIT $15"
        ));
        let rows = bind_filter!(
            query,
            workspace_id,
            filter,
            &statuses,
            &names,
            &ops,
            &values
        )
        .bind(after.map(|c| c.created_at))
        .bind(after.map(|c| c.id))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(rows, limit, Run::cursor))
    }

    /// Lists a workspace's runs by the latest value of `metric` (runs without
    /// it last), in offset pages: returns the runs and the next offset.
    pub async fn list_runs_by_metric(
        &self,
        workspace_id: Uuid,
        filter: &RunFilter,
        metric: &str,
        descending: bool,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Run>, Option<i64>), DbError> {
        let (statuses, names, ops, values) = arrays(filter);
        let query = sqlx::query_as::<_, Run>(concat!(
            "SELECT ",
            columns!(),
            filtered!(),
            " ORDER BY (SELECT m.latest_value FROM metrics m WHERE m.run_id = runs.id AND m.name = $13)
                 * CASE WHEN $14 THEN -1 ELSE 1 END NULLS LAST,
               created_at DESC, id DESC
             OFFSET $15 LIMIT $16"
        ));
        let mut rows = bind_filter!(
            query,
            workspace_id,
            filter,
            &statuses,
            &names,
            &ops,
            &values
        )
        .bind(metric)
        .bind(descending)
        .bind(offset)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok((rows, more.then_some(offset + limit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_filters_parse() {
        assert_eq!(
            MetricOp::parse_filter("accuracy>=0.9"),
            Some(("accuracy".into(), MetricOp::GreaterOrEqual, 0.9))
        );
        assert_eq!(
            MetricOp::parse_filter("loss < 1e-3"),
            Some(("loss".into(), MetricOp::Less, 1e-3))
        );
        assert_eq!(
            MetricOp::parse_filter("epochs!=3"),
            Some(("epochs".into(), MetricOp::NotEqual, 3.0))
        );
        assert_eq!(MetricOp::parse_filter("x=abc"), None);
        assert_eq!(MetricOp::parse_filter(">1"), None);
    }
}
