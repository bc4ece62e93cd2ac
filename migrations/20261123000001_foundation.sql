-- Workspaces, API tokens, experiments, runs and their status history.

CREATE TABLE workspaces (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A token with no workspace is a server administrator's.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    workspace_id uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('reader', 'contributor', 'admin')),
    secret_hash  bytea NOT NULL,
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CONSTRAINT api_tokens_secret_hash_key UNIQUE (secret_hash)
);
CREATE INDEX api_tokens_workspace ON api_tokens (workspace_id, created_at DESC, id DESC);

CREATE TABLE experiments (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text,
    tags         jsonb NOT NULL DEFAULT '{}',
    archived_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT experiments_workspace_name_key UNIQUE (workspace_id, name)
);
CREATE INDEX experiments_list ON experiments (workspace_id, created_at DESC, id DESC);

CREATE TABLE runs (
    id                  uuid PRIMARY KEY,
    workspace_id        uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    experiment_id       uuid NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    display_name        text,
    status              text NOT NULL,
    error               text,
    spec                jsonb NOT NULL DEFAULT '{}',
    tags                jsonb NOT NULL DEFAULT '{}',
    properties          jsonb NOT NULL DEFAULT '{}',
    cancel_requested_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at          timestamptz,
    ended_at            timestamptz
);
CREATE INDEX runs_list ON runs (workspace_id, created_at DESC, id DESC);
CREATE INDEX runs_by_experiment ON runs (experiment_id, created_at DESC, id DESC);
CREATE INDEX runs_by_status ON runs (workspace_id, status, created_at DESC, id DESC);
CREATE INDEX runs_tags ON runs USING gin (tags jsonb_path_ops);

-- Every status a run has taken, with time and reason.
CREATE TABLE run_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    reason      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX run_events_by_run ON run_events (run_id, id);
