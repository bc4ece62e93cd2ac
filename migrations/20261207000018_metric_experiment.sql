-- A metric row names its run's experiment, so that an MLflow search sorted
-- by a metric reads the best values of that experiment alone: with the
-- values of every experiment in one index, a search in one experiment among
-- many read mostly other experiments' runs, and fell back to a slower plan
-- when too few of its own were among them. A run never changes experiment.
--
-- Upgrading rewrites every metric row and builds the index while holding
-- the table: writes of metrics wait until it is done. Servers of the
-- previous version keep storing metrics (the trigger fills the column), but
-- their metric-sorted searches read and sort every value of the metric
-- until they are replaced.
ALTER TABLE metrics ADD COLUMN experiment_id uuid;
UPDATE metrics m SET experiment_id = r.experiment_id FROM runs r WHERE r.id = m.run_id;
ALTER TABLE metrics ALTER COLUMN experiment_id SET NOT NULL;

-- Filled here rather than by each writer, for servers of the previous
-- version. A run that does not exist is reported as the foreign key would.
CREATE FUNCTION metric_run_experiment() RETURNS trigger AS $$
BEGIN
    NEW.experiment_id := (SELECT experiment_id FROM runs WHERE id = NEW.run_id);
    IF NEW.experiment_id IS NULL THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('run %s of metric %L does not exist', NEW.run_id, NEW.name);
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER metrics_run_experiment BEFORE INSERT ON metrics
    FOR EACH ROW EXECUTE FUNCTION metric_run_experiment();

DROP INDEX metrics_by_name_value;
CREATE INDEX metrics_by_experiment_value ON metrics (experiment_id, name, latest_value)
    INCLUDE (run_id) WHERE kind = 'scalar' AND latest_value IS NOT NULL;
