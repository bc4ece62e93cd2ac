-- MLflow clients write into Trainyard's own experiments, runs, metrics, run
-- files and model registry. This adds only what MLflow has and Trainyard
-- did not: tracked-only runs made explicit, soft-deleted runs, name-level
-- registered models, model-version stages and sources, MLflow 3's logged
-- models, declared run inputs and outputs, and multipart uploads in flight.

-- A tracked-only run records what a client logs (an MLflow run, or a run
-- submitted with nothing to execute) and executes nothing: the scheduler
-- never claims it and reconciliation never adopts it, whatever its status.
ALTER TABLE runs ADD COLUMN tracked_only boolean NOT NULL DEFAULT false;
UPDATE runs SET tracked_only = true WHERE spec = '{}'::jsonb;
DROP INDEX runs_active;
CREATE INDEX runs_active ON runs (owner)
    WHERE status IN ('Preparing', 'Starting', 'Running', 'Finalizing') AND NOT tracked_only;

-- MLflow's runs/delete is a soft delete, undone by runs/restore.
ALTER TABLE runs ADD COLUMN deleted_at timestamptz;

-- MLflow params are the run's properties; searches compare them by value.
CREATE INDEX runs_properties ON runs USING gin (properties jsonb_path_ops);

-- Datasets a run declared it read (runs/log-inputs) and models it declared
-- it produced (runs/outputs), as the client described them.
CREATE TABLE mlflow_run_io (
    run_id    uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    direction text NOT NULL CHECK (direction IN ('input', 'output')),
    -- What identifies the entry: a dataset's name and digest, a model's id.
    key       text NOT NULL,
    body      jsonb NOT NULL,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, direction, key)
);

-- A registered model by name: a name may exist with no version yet, and has
-- its own description and tags. Its versions are rows of `models`.
CREATE TABLE registered_models (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text,
    tags         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (workspace_id, name)
);

-- Every name Trainyard registers a version of is a registered model too.
INSERT INTO registered_models (workspace_id, name, created_at, updated_at)
    SELECT workspace_id, name, min(created_at), max(created_at) FROM models GROUP BY workspace_id, name;

CREATE FUNCTION register_model_name() RETURNS trigger AS $$
BEGIN
    INSERT INTO registered_models (workspace_id, name) VALUES (NEW.workspace_id, NEW.name)
        ON CONFLICT (workspace_id, name) DO UPDATE SET updated_at = clock_timestamp();
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER models_register_name
    AFTER INSERT ON models
    FOR EACH ROW EXECUTE FUNCTION register_model_name();

-- What MLflow keeps of a model version beyond its files: the URI its files
-- were copied from, its stage (MLflow's older alternative to aliases), the
-- logged model it registers, and when it last changed.
ALTER TABLE models
    ADD COLUMN source          text,
    ADD COLUMN stage           text NOT NULL DEFAULT 'None'
        CHECK (stage IN ('None', 'Staging', 'Production', 'Archived')),
    ADD COLUMN logged_model_id uuid,
    ADD COLUMN updated_at      timestamptz;

-- MLflow 3's logged models: a model a run logged (mlflow.<flavor>.log_model),
-- before and apart from any registration. Its files are stored under
-- `artifact_prefix`: among its run's files when it has a run.
CREATE TABLE logged_models (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    experiment_id   uuid NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    run_id          uuid REFERENCES runs (id) ON DELETE SET NULL,
    name            text NOT NULL,
    model_type      text,
    status          text NOT NULL,
    status_message  text,
    params          jsonb NOT NULL DEFAULT '{}',
    tags            jsonb NOT NULL DEFAULT '{}',
    artifact_prefix text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, created_at DESC);

-- A multipart upload in flight: its id is the random secret in the part
-- URLs handed to the client (the client sends parts without credentials,
-- as it would to a presigned cloud URL).
CREATE TABLE mlflow_uploads (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    storage_key  text NOT NULL,
    parts        integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
