-- A metric row names its run's experiment, so that an MLflow search sorted
-- by a metric reads the best values of that experiment alone: with the
-- values of every experiment in one index, a search in one experiment among
-- many read mostly other experiments' runs, and fell back to a slower plan
-- when too few of its own were among them. A run never changes experiment.
ALTER TABLE metrics ADD COLUMN experiment_id uuid;
UPDATE metrics m SET experiment_id = r.experiment_id FROM runs r WHERE r.id = m.run_id;

-- Filled here rather than by each writer: servers of the previous version
-- keep creating metric rows during a rolling upgrade. Left NULL for a run
-- that does not exist, so the foreign key reports that, as before.
CREATE FUNCTION metric_run_experiment() RETURNS trigger AS $$
BEGIN
    NEW.experiment_id := (SELECT experiment_id FROM runs WHERE id = NEW.run_id);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER metrics_run_experiment BEFORE INSERT ON metrics
    FOR EACH ROW EXECUTE FUNCTION metric_run_experiment();

DROP INDEX metrics_by_name_value;
CREATE INDEX metrics_by_experiment_value ON metrics (experiment_id, name, latest_value)
    INCLUDE (run_id) WHERE kind = 'scalar' AND latest_value IS NOT NULL;
