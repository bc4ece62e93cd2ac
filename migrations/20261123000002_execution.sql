-- Environments, source snapshots, image builds, the run queue, run logs and
-- run-scoped tokens.

CREATE TABLE environments (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    version      integer NOT NULL,
    description  text,
    spec         jsonb NOT NULL,
    image_tag    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT environments_name_version_key UNIQUE (workspace_id, name, version)
);

-- Build state of each environment image, by tag (the spec's hash).
CREATE TABLE images (
    tag         text PRIMARY KEY,
    state       text NOT NULL CHECK (state IN ('building', 'ready', 'failed')),
    error       text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Snapshot bytes are stored once in the object store by digest; this row
-- lets a workspace use a digest it uploaded.
CREATE TABLE snapshots (
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    digest        text NOT NULL,
    size_bytes    bigint NOT NULL,
    file_count    bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, digest)
);

ALTER TABLE runs
    ADD COLUMN owner            text,
    ADD COLUMN lease_expires_at timestamptz,
    ADD COLUMN container_id     text,
    ADD COLUMN exit_code        integer;

-- The queue: oldest queued run first.
CREATE INDEX runs_queue ON runs (created_at, id) WHERE status = 'Queued';
CREATE INDEX runs_active ON runs (owner) WHERE status IN ('Preparing', 'Starting', 'Running', 'Finalizing');

CREATE FUNCTION notify_run_queued() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('trainyard_run_queued', NEW.id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER runs_queued_notify
    AFTER INSERT OR UPDATE OF status ON runs
    FOR EACH ROW WHEN (NEW.status = 'Queued')
    EXECUTE FUNCTION notify_run_queued();

-- One row per line a run printed or wrote under ./logs; (run, source, seq)
-- identifies a line, so re-reading a stream never duplicates it.
CREATE TABLE run_logs (
    run_id  uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    source  text NOT NULL,
    seq     bigint NOT NULL,
    at      timestamptz NOT NULL,
    line    text NOT NULL,
    PRIMARY KEY (run_id, source, seq)
);

-- A run-scoped token may write only to its own run.
ALTER TABLE api_tokens ADD COLUMN run_id uuid REFERENCES runs (id) ON DELETE CASCADE;
