-- Placement of runs on the nodes of compute targets.
--
-- A run submitted to a named compute target waits Queued until a scheduling
-- pass places it: it then records its node and what it holds there (GPU
-- indexes, CPUs, memory) until it ends. A node's free capacity is its
-- declared capacity less what its active runs hold. While it waits, the run
-- says why.

ALTER TABLE runs
    -- The target named in the spec; NULL (or 'local') runs on the server's own engine.
    ADD COLUMN compute_target text GENERATED ALWAYS AS
        (NULLIF(NULLIF(spec ->> 'compute_target', ''), 'local')) STORED,
    ADD COLUMN node_id        uuid REFERENCES nodes (id) ON DELETE SET NULL,
    -- {node_id, node, compute_target, gpus: [..], gpu_mode, cpus, memory_mb}
    ADD COLUMN placement      jsonb,
    ADD COLUMN wait_reason    text,
    -- Scheduling passes that left the run waiting (drives reservations
    -- against starvation).
    ADD COLUMN waited_passes  integer NOT NULL DEFAULT 0;

CREATE INDEX runs_queued_on_target ON runs (created_at, id)
    WHERE status = 'Queued' AND compute_target IS NOT NULL;
CREATE INDEX runs_holding_node ON runs (node_id)
    WHERE node_id IS NOT NULL AND status IN ('Preparing', 'Starting', 'Running', 'Finalizing');

-- Per-workspace limits on what its runs hold at once on compute targets;
-- NULL is unlimited.
ALTER TABLE workspaces
    ADD COLUMN max_gpus integer CHECK (max_gpus >= 0),
    ADD COLUMN max_runs integer CHECK (max_runs >= 0);
