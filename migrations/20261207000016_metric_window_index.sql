-- MLflow searches sorted by a metric read the best values of one scalar
-- metric in order and look up each value's run: with the run id in the
-- index, that read does not visit the metrics table at all.
DROP INDEX metrics_by_name_value;
CREATE INDEX metrics_by_name_value ON metrics (name, latest_value) INCLUDE (run_id)
    WHERE kind = 'scalar' AND latest_value IS NOT NULL;
