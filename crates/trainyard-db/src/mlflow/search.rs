//! MLflow's runs/search over Trainyard's runs: the checked clauses of the
//! filter become SQL conditions whose every value is bound, and the order-by
//! keys become sort expressions; pages are offsets, as MLflow's are.

use sqlx::{Postgres, QueryBuilder};
use trainyard_core::mlflow::filter::{Op, Value};
use trainyard_core::mlflow::search::{OrderKey, RunAttribute, RunClause, RunSubject};
use trainyard_core::mlflow::RUN_NAME_TAG;
use uuid::Uuid;

use super::runs::{in_default_experiment, run_columns, runs_with_data, RunWithData, TrackedRun};
use crate::{Db, DbError};

/// Which runs a search sees, by MLflow's lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LifecycleView {
    /// Runs not deleted (MLflow's `ACTIVE_ONLY`, the default).
    #[default]
    Active,
    /// Deleted runs only.
    Deleted,
    /// Both.
    All,
}

/// A runs/search request, checked.
#[derive(Debug, Clone, Default)]
pub struct RunSearch {
    /// The experiments searched.
    pub experiment_ids: Vec<Uuid>,
    /// Deleted runs, active runs or both.
    pub view: LifecycleView,
    /// Conditions that must all hold.
    pub clauses: Vec<RunClause>,
    /// Sort keys, most significant first; start time (newest first) and id follow.
    pub order: Vec<OrderKey<RunSubject>>,
    /// Runs skipped (the page token's offset).
    pub offset: i64,
    /// Most runs returned.
    pub limit: i64,
}

/// MLflow's name for a run's status.
const STATUS_SQL: &str = "(CASE status WHEN 'Completed' THEN 'FINISHED' WHEN 'Failed' THEN 'FAILED'
    WHEN 'Canceled' THEN 'KILLED' WHEN 'Running' THEN 'RUNNING' WHEN 'Finalizing' THEN 'RUNNING'
    ELSE 'SCHEDULED' END)";
/// A run's start in milliseconds: when it started, or was created.
const START_MS_SQL: &str = "(extract(epoch FROM coalesce(started_at, created_at)) * 1000)::bigint";
const END_MS_SQL: &str = "(extract(epoch FROM ended_at) * 1000)::bigint";
/// How many best values of a metric a metric-sorted search reads per run it
/// wants before it leaves the plan to PostgreSQL…
const METRIC_WINDOW_FACTOR: i64 = 10;
/// …and at least this many.
const MIN_METRIC_WINDOW: i64 = 1000;
/// A metric-sorted search over more experiments than this is planned by
/// PostgreSQL: each experiment adds an index read to merge.
const MAX_WINDOW_EXPERIMENTS: usize = 16;

/// How far the rows a search over some experiments reads have changed:
/// equal values read at two moments mean no change between them
/// (`run_search_generations`, kept by triggers on every table a search
/// reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchGeneration {
    /// Made again whenever PostgreSQL has emptied the counters.
    pub epoch: Uuid,
    /// The sum of the experiments' counters.
    pub changes: i64,
}

impl Db {
    /// The generation of these experiments' runs, read before a search so
    /// that its answer is at least as new. `None` when the counters had
    /// been emptied (PostgreSQL recovered from a crash): a new epoch is
    /// started, and this search's answer is not to be kept.
    pub async fn mlflow_search_generation(
        &self,
        experiment_ids: &[Uuid],
    ) -> Result<Option<SearchGeneration>, DbError> {
        let read: Option<(Uuid, i64)> = sqlx::query_as(
            "SELECT token, (SELECT coalesce(sum(generation), 0)::bigint
                              FROM run_search_generations WHERE experiment_id = ANY($1))
               FROM run_search_epoch",
        )
        .bind(experiment_ids)
        .fetch_optional(self.pool())
        .await?;
        if let Some((epoch, changes)) = read {
            return Ok(Some(SearchGeneration { epoch, changes }));
        }
        sqlx::query(
            "INSERT INTO run_search_epoch (token) VALUES (gen_random_uuid()) ON CONFLICT DO NOTHING",
        )
        .execute(self.pool())
        .await?;
        Ok(None)
    }

    /// Folds the search counters of database backends that have exited
    /// into one row per experiment, keeping every sum; returns how many
    /// rows went. Without it, each connection ever opened would leave a
    /// row in every experiment it wrote to.
    pub async fn fold_run_search_generations(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT fold_run_search_generations()")
            .fetch_one(self.pool())
            .await?)
    }

    /// One page of the runs a search selects, in its order, with their data
    /// (read for the page's runs only, not for those a deep page skips).
    pub async fn mlflow_search_runs(
        &self,
        workspace_id: Uuid,
        search: &RunSearch,
    ) -> Result<Vec<RunWithData>, DbError> {
        if let Some((first, rest)) = search.order.split_first() {
            if let RunSubject::Metric(key) = &first.subject {
                let found = self
                    .search_by_metric(workspace_id, search, key, first.ascending, rest)
                    .await?;
                if let Some(found) = found {
                    return Ok(found);
                }
            }
        }
        let page = self.search_runs_page(workspace_id, search).await?;
        runs_with_data(self.pool(), page).await
    }

    /// Sorted by a metric first (MLflow's usual search): the runs are read
    /// in the metric's order straight from the index on metric values of
    /// the searched experiments (merged when there are several), among a
    /// bounded number of their best values (ties included), which fills the
    /// page whenever matching runs are not rare. The plan does not depend on
    /// PostgreSQL's statistics, which lag behind runs just logged. When that
    /// window holds too few matches, or the search spans more experiments
    /// than [`MAX_WINDOW_EXPERIMENTS`], `None`: the general query answers
    /// instead.
    async fn search_by_metric(
        &self,
        workspace_id: Uuid,
        search: &RunSearch,
        key: &str,
        ascending: bool,
        rest: &[OrderKey<RunSubject>],
    ) -> Result<Option<Vec<RunWithData>>, DbError> {
        let mut experiments = search.experiment_ids.clone();
        experiments.sort_unstable();
        experiments.dedup();
        if experiments.is_empty() || experiments.len() > MAX_WINDOW_EXPERIMENTS {
            return Ok(None);
        }
        let wanted = search.offset + search.limit;
        let window = (wanted * METRIC_WINDOW_FACTOR).max(MIN_METRIC_WINDOW);
        // The index holds values ascending: these directions read it as is.
        let direction = if ascending { " ASC" } else { " DESC" };
        let mut query = QueryBuilder::new(concat!(
            "SELECT runs.*, ",
            in_default_experiment!(),
            " FROM (SELECT run_id, latest_value FROM ("
        ));
        // One ordered read per experiment, merged (each ordered on its own,
        // or PostgreSQL reads them all and sorts).
        for (i, experiment) in experiments.into_iter().enumerate() {
            if i > 0 {
                query.push(" UNION ALL ");
            }
            query.push(
                "(SELECT run_id, latest_value FROM metrics
                  WHERE kind = 'scalar' AND latest_value IS NOT NULL AND experiment_id = ",
            );
            query.push_bind(experiment);
            query.push(" AND name = ");
            query.push_bind(key.to_string());
            query.push(" ORDER BY latest_value");
            query.push(direction);
            query.push(")");
        }
        query.push(") AS best ORDER BY latest_value");
        query.push(direction);
        query.push(" FETCH FIRST ");
        query.push_bind(window);
        // Each value looks up its run by primary key, and only then are the
        // conditions checked: OFFSET 0 keeps them out of the lookup, where
        // statistics that lag behind runs just created could pick another
        // index (the experiment's) and scan every run of it per value.
        query.push(concat!(
            " ROWS WITH TIES) AS m CROSS JOIN LATERAL (SELECT ",
            crate::runs::columns!(),
            ", deleted_at FROM runs WHERE runs.id = m.run_id OFFSET 0) AS runs WHERE "
        ));
        push_conditions(&mut query, workspace_id, search);
        query.push(" ORDER BY m.latest_value");
        query.push(direction);
        query.push(", ");
        push_order(&mut query, rest);
        query.push(" LIMIT ");
        query.push_bind(wanted);
        // Without full sorts the only plan left reads the window in index
        // order and stops once the page is full; statistics that lag behind
        // runs just logged would otherwise pick reading every value and
        // sorting. That plan holds whatever the values bound, so it is made
        // once per connection: a search is not planned again each time.
        // Each run is looked up once, so caching lookups (memoize) is only
        // overhead. The settings travel with BEGIN: no round trip of their own.
        let mut tx = self
            .pool()
            .begin_with(
                "BEGIN; SET LOCAL enable_sort = off; SET LOCAL enable_memoize = off;
                 SET LOCAL plan_cache_mode = force_generic_plan",
            )
            .await?;
        let found = query
            .build_query_as::<TrackedRun>()
            .fetch_all(&mut *tx)
            .await?;
        if (found.len() as i64) < wanted {
            tx.commit().await?;
            return Ok(None);
        }
        let page = found.into_iter().skip(search.offset as usize).collect();
        let page = runs_with_data(&mut *tx, page).await?;
        tx.commit().await?;
        Ok(Some(page))
    }

    /// One page in the search's order, planned by PostgreSQL.
    async fn search_runs_page(
        &self,
        workspace_id: Uuid,
        search: &RunSearch,
    ) -> Result<Vec<TrackedRun>, DbError> {
        let mut query = QueryBuilder::new(concat!("SELECT ", run_columns!(), " FROM runs WHERE "));
        push_conditions(&mut query, workspace_id, search);
        query.push(" ORDER BY ");
        push_order(&mut query, &search.order);
        query.push(" OFFSET ");
        query.push_bind(search.offset);
        query.push(" LIMIT ");
        query.push_bind(search.limit);
        Ok(query
            .build_query_as::<TrackedRun>()
            .fetch_all(self.pool())
            .await?)
    }
}

/// The conditions on a run: the workspace, the experiments, the lifecycle
/// view and the clauses.
fn push_conditions(query: &mut QueryBuilder<'_, Postgres>, workspace_id: Uuid, search: &RunSearch) {
    query.push("runs.workspace_id = ");
    query.push_bind(workspace_id);
    query.push(" AND runs.experiment_id = ANY(");
    query.push_bind(search.experiment_ids.clone());
    query.push(match search.view {
        LifecycleView::Active => ") AND runs.deleted_at IS NULL",
        LifecycleView::Deleted => ") AND runs.deleted_at IS NOT NULL",
        LifecycleView::All => ")",
    });
    for clause in &search.clauses {
        query.push(" AND ");
        push_condition(query, clause);
    }
}

/// The sort keys (missing values last), then start time (newest first) and id.
fn push_order(query: &mut QueryBuilder<'_, Postgres>, keys: &[OrderKey<RunSubject>]) {
    for key in keys {
        push_subject(query, &key.subject);
        query.push(if key.ascending {
            " ASC NULLS LAST, "
        } else {
            " DESC NULLS LAST, "
        });
    }
    query.push("coalesce(runs.started_at, runs.created_at) DESC, runs.id");
}

/// The value a clause or sort key is about, as an SQL expression.
fn push_subject(query: &mut QueryBuilder<'_, Postgres>, subject: &RunSubject) {
    match subject {
        RunSubject::Metric(key) => {
            query.push(
                "(SELECT m.latest_value FROM metrics m WHERE m.run_id = runs.id AND m.kind = 'scalar' AND m.name = ",
            );
            query.push_bind(key.clone());
            query.push(")");
        }
        RunSubject::Param(key) => {
            query.push("(properties ->> ");
            query.push_bind(key.clone());
            query.push(")");
        }
        RunSubject::Tag(key) if key == RUN_NAME_TAG => {
            query.push("display_name");
        }
        RunSubject::Tag(key) => {
            query.push("(tags ->> ");
            query.push_bind(key.clone());
            query.push(")");
        }
        RunSubject::Attribute(attribute) => {
            query.push(match attribute {
                RunAttribute::RunId => "id::text",
                RunAttribute::RunName => "display_name",
                RunAttribute::Status => STATUS_SQL,
                RunAttribute::UserId => "(tags ->> 'mlflow.user')",
                RunAttribute::ArtifactUri => "('mlflow-artifacts:/runs/' || id::text)",
                RunAttribute::StartTime => START_MS_SQL,
                RunAttribute::EndTime => END_MS_SQL,
            });
        }
        RunSubject::Dataset(field) => {
            query.push(match field.as_str() {
                "name" => "(io.body #>> '{dataset,name}')",
                "digest" => "(io.body #>> '{dataset,digest}')",
                _ => {
                    "(SELECT t ->> 'value' FROM jsonb_array_elements(io.body -> 'tags') t
                       WHERE t ->> 'key' = 'mlflow.data.context' LIMIT 1)"
                }
            });
        }
    }
}

/// One clause as an SQL condition.
fn push_condition(query: &mut QueryBuilder<'_, Postgres>, clause: &RunClause) {
    match (&clause.subject, clause.op, &clause.value) {
        // Containment uses the GIN index on properties.
        (RunSubject::Param(key), Op::Eq, Value::Text(value)) => {
            query.push("properties @> jsonb_build_object(");
            query.push_bind(key.clone());
            query.push("::text, ");
            query.push_bind(value.clone());
            query.push("::text)");
        }
        (RunSubject::Param(key), Op::IsNull | Op::IsNotNull, _) => {
            push_has_key(query, "properties", key, clause.op == Op::IsNotNull);
        }
        (RunSubject::Tag(key), Op::IsNull | Op::IsNotNull, _) if key == RUN_NAME_TAG => {
            query.push(if clause.op == Op::IsNull {
                "display_name IS NULL"
            } else {
                "display_name IS NOT NULL"
            });
        }
        (RunSubject::Tag(key), Op::IsNull | Op::IsNotNull, _) => {
            push_has_key(query, "tags", key, clause.op == Op::IsNotNull);
        }
        (RunSubject::Dataset(_), _, _) => {
            query.push(
                "EXISTS (SELECT 1 FROM mlflow_run_io io WHERE io.run_id = runs.id AND io.direction = 'input' AND ",
            );
            push_subject(query, &clause.subject);
            push_text_comparison(query, clause.op, &clause.value);
            query.push(")");
        }
        _ => {
            push_subject(query, &clause.subject);
            push_text_comparison(query, clause.op, &clause.value);
        }
    }
}

fn push_has_key(
    query: &mut QueryBuilder<'_, Postgres>,
    column: &'static str,
    key: &str,
    has: bool,
) {
    query.push(if has { "(" } else { "NOT (" });
    query.push(column);
    query.push(" ? ");
    query.push_bind(key.to_string());
    query.push(")");
}

/// ` <op> <value>` for a comparison whose left side was just pushed.
pub(super) fn push_text_comparison(query: &mut QueryBuilder<'_, Postgres>, op: Op, value: &Value) {
    let symbol = match op {
        Op::Eq => " = ",
        Op::Ne => " <> ",
        Op::Lt => " < ",
        Op::Le => " <= ",
        Op::Gt => " > ",
        Op::Ge => " >= ",
        Op::Like => " LIKE ",
        Op::ILike => " ILIKE ",
        Op::In => " = ANY(",
        Op::NotIn => " <> ALL(",
        Op::IsNull => " IS NULL",
        Op::IsNotNull => " IS NOT NULL",
    };
    query.push(symbol);
    match value {
        Value::Text(text) => {
            query.push_bind(text.clone());
        }
        Value::Number(number) => {
            query.push_bind(*number);
        }
        Value::List(items) => {
            query.push_bind(items.clone());
            query.push(")");
        }
        Value::None => {}
    }
}

/// A tag comparison in a catalog search (experiments, registry, logged
/// models): `!=` also matches what lacks the tag, so that the
/// `tags.mlflow.prompt.is_prompt != 'true'` MLflow's client adds to every
/// registry search keeps ordinary models.
pub(super) fn push_tag_comparison(
    query: &mut QueryBuilder<'_, Postgres>,
    column: &'static str,
    key: &str,
    op: Op,
    value: &Value,
) {
    query.push("(");
    query.push(column);
    query.push(" ->> ");
    query.push_bind(key.to_string());
    query.push(")");
    match (op, value) {
        (Op::Ne, Value::Text(text)) => {
            query.push(" IS DISTINCT FROM ");
            query.push_bind(text.clone());
        }
        _ => push_text_comparison(query, op, value),
    }
}
