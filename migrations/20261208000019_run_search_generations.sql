-- What an MLflow runs/search answers can change only when a row it reads
-- changes: a run, a metric row, a run's inputs and outputs, or the
-- experiment itself. Every statement that changes one of them adds one to a
-- counter of the experiment, so a server may answer a search again from
-- memory while the sum of the searched experiments' counters stays what it
-- was when it read the answer. Triggers keep the counters, so every writer
-- counts: other servers, executors, servers of an older version, SQL by
-- hand (a TRUNCATE starts a new epoch, see below). Writes made with
-- triggers off (session_replication_role = replica, as logical
-- replication's workers and pg_restore --disable-triggers set) are not
-- counted: servers must be restarted after them.
--
-- An experiment's counter is split by backend (one row per backend process
-- that wrote to it, `shard` being its pid): a transaction holds the lock of
-- the row it added to until it commits, and with shared rows writers of an
-- experiment would wait for each other, and two transactions could take
-- two rows in opposite orders. Rows of backends that have exited are folded
-- into shard 0 by fold_run_search_generations(), which keeps every sum.
-- Each row only grows, so the sum moves whenever one of them does. Rows of
-- a deleted experiment stay (a few bytes each): deleting it must still move
-- its sum, and a foreign key would refuse that.
--
-- The counters are unlogged: adding to one costs half as much without WAL.
-- PostgreSQL empties unlogged tables when it recovers from a crash, and the
-- sums could then climb back to values a server remembers, so the epoch row
-- goes with them: readers compare its token too, and a reader that finds it
-- gone makes a new one.
CREATE UNLOGGED TABLE run_search_generations (
    experiment_id uuid NOT NULL,
    shard         int NOT NULL,
    generation    bigint NOT NULL,
    PRIMARY KEY (experiment_id, shard)
);

CREATE UNLOGGED TABLE run_search_epoch (
    one   bool PRIMARY KEY DEFAULT true CHECK (one),
    token uuid NOT NULL
);
INSERT INTO run_search_epoch (token) VALUES (gen_random_uuid());

-- Adds one to each experiment's counter of this backend, in experiment
-- order so that two transactions never wait for each other's rows in
-- opposite orders. Runs and metrics name their experiment: their trigger
-- reads `changed` (the transition table, whatever the event) here, without
-- a second function call, as it runs for every metric write.
CREATE FUNCTION run_search_changed() RETURNS trigger AS $$
DECLARE
    experiment uuid;
BEGIN
    FOR experiment IN SELECT DISTINCT experiment_id FROM changed ORDER BY 1 LOOP
        UPDATE run_search_generations SET generation = generation + 1
        WHERE experiment_id = experiment AND shard = pg_backend_pid();
        IF NOT FOUND THEN
            INSERT INTO run_search_generations AS g VALUES (experiment, pg_backend_pid(), 1)
            ON CONFLICT (experiment_id, shard) DO UPDATE SET generation = g.generation + 1;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- The same for experiments named by an array.
CREATE FUNCTION bump_run_search_generations(experiments uuid[]) RETURNS void AS $$
    INSERT INTO run_search_generations AS g (experiment_id, shard, generation)
    SELECT DISTINCT e, pg_backend_pid(), 1 FROM unnest(experiments) AS e
    WHERE e IS NOT NULL ORDER BY 1
    ON CONFLICT (experiment_id, shard) DO UPDATE SET generation = g.generation + 1;
$$ LANGUAGE sql;

-- A run's inputs and outputs name their run only. When the run itself is
-- being deleted it is gone already, and its deletion moved the counter.
CREATE FUNCTION run_io_search_changed() RETURNS trigger AS $$
BEGIN
    PERFORM bump_run_search_generations(ARRAY(
        SELECT DISTINCT r.experiment_id FROM changed c JOIN runs r ON r.id = c.run_id));
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- An experiment's name says whether it is the workspace's Default (MLflow's
-- "0"), and deleting it removes its runs.
CREATE FUNCTION experiment_search_changed() RETURNS trigger AS $$
BEGIN
    PERFORM bump_run_search_generations(ARRAY(SELECT id FROM changed));
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- PostgreSQL gives a statement trigger its changed rows only when it has
-- one event: three triggers per table.
CREATE TRIGGER runs_search_insert AFTER INSERT ON runs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION run_search_changed();
CREATE TRIGGER runs_search_update AFTER UPDATE ON runs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION run_search_changed();
CREATE TRIGGER runs_search_delete AFTER DELETE ON runs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION run_search_changed();

CREATE TRIGGER metrics_search_insert AFTER INSERT ON metrics
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION run_search_changed();
CREATE TRIGGER metrics_search_update AFTER UPDATE ON metrics
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION run_search_changed();
CREATE TRIGGER metrics_search_delete AFTER DELETE ON metrics
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION run_search_changed();

CREATE TRIGGER run_io_search_insert AFTER INSERT ON mlflow_run_io
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION run_io_search_changed();
CREATE TRIGGER run_io_search_update AFTER UPDATE ON mlflow_run_io
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION run_io_search_changed();
CREATE TRIGGER run_io_search_delete AFTER DELETE ON mlflow_run_io
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION run_io_search_changed();

CREATE TRIGGER experiments_search_update AFTER UPDATE ON experiments
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION experiment_search_changed();
CREATE TRIGGER experiments_search_delete AFTER DELETE ON experiments
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION experiment_search_changed();

-- TRUNCATE names no rows: it starts a new epoch, which no kept answer has.
-- Emptying the counters themselves does too.
CREATE FUNCTION run_search_epoch_changed() RETURNS trigger AS $$
BEGIN
    UPDATE run_search_epoch SET token = gen_random_uuid();
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER runs_search_truncate AFTER TRUNCATE ON runs
    FOR EACH STATEMENT EXECUTE FUNCTION run_search_epoch_changed();
CREATE TRIGGER metrics_search_truncate AFTER TRUNCATE ON metrics
    FOR EACH STATEMENT EXECUTE FUNCTION run_search_epoch_changed();
CREATE TRIGGER run_io_search_truncate AFTER TRUNCATE ON mlflow_run_io
    FOR EACH STATEMENT EXECUTE FUNCTION run_search_epoch_changed();
CREATE TRIGGER experiments_search_truncate AFTER TRUNCATE ON experiments
    FOR EACH STATEMENT EXECUTE FUNCTION run_search_epoch_changed();
CREATE TRIGGER run_search_generations_truncate AFTER TRUNCATE ON run_search_generations
    FOR EACH STATEMENT EXECUTE FUNCTION run_search_epoch_changed();

-- Moves the counters of backends that have exited into shard 0, so that an
-- experiment keeps a row per live writer, not per writer it ever had. A
-- backend whose pid is reused meanwhile loses nothing: its row is deleted
-- with what it holds and added to shard 0 in the same statement, and its
-- next write starts a new row. Every sum stays what it was.
CREATE FUNCTION fold_run_search_generations() RETURNS bigint AS $$
    WITH gone AS (
        DELETE FROM run_search_generations g
        WHERE g.shard <> 0 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = g.shard)
        RETURNING experiment_id, generation
    ), folded AS (
        INSERT INTO run_search_generations AS g (experiment_id, shard, generation)
        SELECT experiment_id, 0, sum(generation) FROM gone GROUP BY experiment_id ORDER BY 1
        ON CONFLICT (experiment_id, shard) DO UPDATE SET generation = g.generation + EXCLUDED.generation
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$ LANGUAGE sql;

-- The counters name a row's experiment (a run's, for its inputs and
-- outputs, and a metric's run's) as it was changed: a row that moved to
-- another experiment would leave the first one's answers as they were. None
-- ever moves; this keeps it so. (It runs only for statements that set one
-- of the columns.)
CREATE FUNCTION refuse_moving_run_rows() RETURNS trigger AS $$
DECLARE
    new_row jsonb := to_jsonb(NEW);
    old_row jsonb := to_jsonb(OLD);
    col text;
BEGIN
    FOREACH col IN ARRAY TG_ARGV LOOP
        IF NOT new_row ? col THEN
            RAISE EXCEPTION '% has no column %', TG_TABLE_NAME, col;
        END IF;
        IF new_row -> col IS DISTINCT FROM old_row -> col THEN
            RAISE EXCEPTION '% of a row of % cannot change', col, TG_TABLE_NAME;
        END IF;
    END LOOP;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER runs_keep_experiment BEFORE UPDATE OF experiment_id ON runs
    FOR EACH ROW EXECUTE FUNCTION refuse_moving_run_rows('experiment_id');
CREATE TRIGGER metrics_keep_run BEFORE UPDATE OF run_id, experiment_id ON metrics
    FOR EACH ROW EXECUTE FUNCTION refuse_moving_run_rows('run_id', 'experiment_id');
CREATE TRIGGER run_io_keep_run BEFORE UPDATE OF run_id ON mlflow_run_io
    FOR EACH ROW EXECUTE FUNCTION refuse_moving_run_rows('run_id');
