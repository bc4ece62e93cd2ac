-- A metric's points that arrive together (a batch logs many steps of it)
-- are stored as chunks: one row holds up to 64 points as three arrays, in
-- step order. A row per point costs a heap tuple and an index entry each;
-- a chunk costs them once, which makes storing a large batch several times
-- cheaper in CPU and in space. Points that arrive alone (one step at a
-- time) stay rows of `metric_points`. Chunks stay under the size at which
-- PostgreSQL would compress or move them out of line.
CREATE TABLE metric_chunks (
    metric_id bigint NOT NULL,
    steps     bigint[] NOT NULL,
    ats       timestamptz[] NOT NULL,
    vals      double precision[] NOT NULL,
    CHECK (cardinality(steps) = cardinality(ats) AND cardinality(steps) = cardinality(vals))
);
-- A metric's chunks by first step: a history is read by merging them with
-- the rows of `metric_points` in step order, without sorting.
CREATE INDEX metric_chunks_by_first_step ON metric_chunks (metric_id, (steps[1]));

-- Every point of a scalar metric, rows and chunks alike, in no order (for
-- reads that take them all, such as downsampling). Inlined into the query
-- that calls it, so the condition on the metric reaches both indexes.
CREATE FUNCTION scalar_points(metric bigint)
RETURNS TABLE (step bigint, at timestamptz, value double precision)
LANGUAGE sql STABLE AS $$
    SELECT p.step, p.at, p.value FROM metric_points p WHERE p.metric_id = metric
    UNION ALL
    SELECT u.step, u.at, u.value
    FROM metric_chunks c, unnest(c.steps, c.ats, c.vals) AS u(step, at, value)
    WHERE c.metric_id = metric
$$;

-- Stores chunks given as slices (first and last position, from 1) of
-- point arrays.
--
-- These functions run for every group of points, mostly small ones, so
-- their statements keep one plan per connection (plpgsql caches them):
-- planned again for each call's arrays, as PostgreSQL would otherwise do,
-- planning took as long as the work. That plan must not be a sequential
-- scan chosen while the tables were small.
CREATE FUNCTION store_metric_chunks(
    chunk_metrics bigint[], chunk_firsts int[], chunk_lasts int[],
    point_steps bigint[], point_ats timestamptz[], point_values double precision[]
) RETURNS void
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
BEGIN
    INSERT INTO metric_chunks (metric_id, steps, ats, vals)
    SELECT c.metric_id, point_steps[c.first:c.last], point_ats[c.first:c.last],
           point_values[c.first:c.last]
    FROM unnest(chunk_metrics, chunk_firsts, chunk_lasts) AS c(metric_id, first, last);
END;
$$ LANGUAGE plpgsql;

-- The nine-argument form (one statement for a small group) keeps its plans
-- too, and stays as it is, so that servers of the version before keep
-- storing points while several servers are upgraded one after the other.
ALTER FUNCTION store_metric_points(
    bigint[], bigint[], bigint[], timestamptz[], double precision[],
    bigint[], bigint[], timestamptz[], double precision[]
) SET plan_cache_mode = force_generic_plan SET enable_seqscan = off;

-- A small group with its chunks: the nine-argument form, then the chunks.
CREATE FUNCTION store_metric_points(
    metric_ids bigint[], added bigint[], latest_steps bigint[], latest_ats timestamptz[],
    latest_values double precision[],
    point_metrics bigint[], point_steps bigint[], point_ats timestamptz[],
    point_values double precision[],
    chunk_metrics bigint[], chunk_firsts int[], chunk_lasts int[],
    chunk_steps bigint[], chunk_ats timestamptz[], chunk_values double precision[]
) RETURNS void AS $$
BEGIN
    PERFORM store_metric_points(metric_ids, added, latest_steps, latest_ats, latest_values,
                                point_metrics, point_steps, point_ats, point_values);
    IF cardinality(chunk_metrics) > 0 THEN
        PERFORM store_metric_chunks(chunk_metrics, chunk_firsts, chunk_lasts,
                                    chunk_steps, chunk_ats, chunk_values);
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION delete_metric_points() RETURNS trigger AS $$
BEGIN
    DELETE FROM metric_points WHERE metric_id = OLD.id;
    DELETE FROM metric_chunks WHERE metric_id = OLD.id;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
