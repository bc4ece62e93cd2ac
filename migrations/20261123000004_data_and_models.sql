-- Datastores, versioned datasets, run inputs (lineage) and the model registry.

-- Registered datastores; every workspace also has the built-in "default",
-- which is the server's own object store and has no row.
CREATE TABLE datastores (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('file', 's3', 'az', 'gs')),
    url          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT datastores_workspace_name_key UNIQUE (workspace_id, name)
);

-- A dataset version lists its files with their content hashes; the content
-- itself is copied at registration into blobs named by hash, so a version
-- never changes whatever happens to the datastore afterwards.
CREATE TABLE datasets (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    version      integer NOT NULL,
    description  text,
    tags         jsonb NOT NULL DEFAULT '{}',
    datastore    text,
    paths        jsonb NOT NULL DEFAULT '[]',
    files        jsonb NOT NULL,
    file_count   bigint NOT NULL,
    total_bytes  bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT datasets_name_version_key UNIQUE (workspace_id, name, version)
);

-- Which dataset versions a run used, and how.
CREATE TABLE run_inputs (
    run_id     uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name       text NOT NULL,
    dataset_id uuid NOT NULL REFERENCES datasets (id),
    mode       text NOT NULL CHECK (mode IN ('mount', 'download')),
    path       text NOT NULL,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE models (
    id                     uuid PRIMARY KEY,
    workspace_id           uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                   text NOT NULL,
    version                integer NOT NULL,
    description            text,
    tags                   jsonb NOT NULL DEFAULT '{}',
    properties             jsonb NOT NULL DEFAULT '{}',
    framework              text,
    framework_version      text,
    resource_configuration jsonb,
    run_id                 uuid REFERENCES runs (id) ON DELETE SET NULL,
    environment            jsonb,
    datasets               jsonb NOT NULL DEFAULT '[]',
    files                  jsonb NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT models_name_version_key UNIQUE (workspace_id, name, version)
);

CREATE TABLE model_aliases (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    alias        text NOT NULL,
    version      integer NOT NULL,
    PRIMARY KEY (workspace_id, name, alias)
);
