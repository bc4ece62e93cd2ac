-- Compute targets: named pools of Docker nodes of a workspace, with the
-- resources a run gets when it asks for none. A node is one Docker engine
-- (the local socket, or TCP with TLS) with its declared GPUs, CPUs and memory.

CREATE TABLE compute_targets (
    id                uuid PRIMARY KEY,
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name              text NOT NULL,
    labels            jsonb NOT NULL DEFAULT '{}',
    max_nodes         integer NOT NULL CHECK (max_nodes > 0),
    default_gpus      integer NOT NULL DEFAULT 0 CHECK (default_gpus >= 0),
    default_cpus      double precision NOT NULL DEFAULT 1 CHECK (default_cpus > 0),
    default_memory_mb bigint NOT NULL DEFAULT 2048 CHECK (default_memory_mb > 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT compute_targets_workspace_name_key UNIQUE (workspace_id, name)
);

CREATE TABLE nodes (
    id                uuid PRIMARY KEY,
    compute_target_id uuid NOT NULL REFERENCES compute_targets (id) ON DELETE CASCADE,
    name              text NOT NULL,
    -- unix:///var/run/docker.sock, or tcp://host:port
    endpoint          text NOT NULL,
    -- Paths on the server's machine: {"ca": …, "cert": …, "key": …}
    tls               jsonb,
    -- nvidia: real device requests; simulated: GPUs are only accounted and
    -- announced through NVIDIA_VISIBLE_DEVICES (engines without the NVIDIA
    -- runtime, tests); none: no GPUs.
    gpu_mode          text NOT NULL CHECK (gpu_mode IN ('nvidia', 'simulated', 'none')),
    gpus              integer NOT NULL CHECK (gpus >= 0),
    cpus              double precision NOT NULL CHECK (cpus > 0),
    memory_mb         bigint NOT NULL CHECK (memory_mb > 0),
    -- ready: takes runs; cordoned: takes none, keeps its running ones;
    -- draining: cordoned until its runs end; down: does not answer.
    state             text NOT NULL DEFAULT 'ready'
                      CHECK (state IN ('ready', 'cordoned', 'draining', 'down')),
    state_reason      text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nodes_target_name_key UNIQUE (compute_target_id, name)
);
