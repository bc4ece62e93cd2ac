-- Metrics a run logs. One row per metric of a run keeps its latest value, so
-- "latest of every metric" and sorting runs by a metric read one small table;
-- scalar points go to a narrow table built for volume, other shapes (lists,
-- rows, tables, images) to a JSON table.

CREATE TABLE metrics (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('scalar', 'list', 'row', 'table', 'image')),
    count        bigint NOT NULL DEFAULT 0,
    latest_step  bigint,
    latest_at    timestamptz,
    latest_value double precision,
    latest_json  jsonb,
    CONSTRAINT metrics_run_name_key UNIQUE (run_id, name)
);
-- Runs sorted or filtered by a metric's latest value.
CREATE INDEX metrics_by_name_value ON metrics (name, latest_value);

-- No foreign key: checking one per point would slow bulk loads, and points
-- are only reached through their metric (deleted with it, below).
CREATE TABLE metric_points (
    metric_id bigint NOT NULL,
    step      bigint NOT NULL,
    at        timestamptz NOT NULL,
    value     double precision NOT NULL
);
CREATE INDEX metric_points_history ON metric_points (metric_id, step);

CREATE TABLE metric_values (
    metric_id bigint NOT NULL REFERENCES metrics (id) ON DELETE CASCADE,
    step      bigint NOT NULL,
    at        timestamptz NOT NULL,
    value     jsonb NOT NULL
);
CREATE INDEX metric_values_history ON metric_values (metric_id, step);

CREATE FUNCTION delete_metric_points() RETURNS trigger AS $$
BEGIN
    DELETE FROM metric_points WHERE metric_id = OLD.id;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER metrics_delete_points
    AFTER DELETE ON metrics
    FOR EACH ROW EXECUTE FUNCTION delete_metric_points();
