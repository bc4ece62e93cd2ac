-- Removing a node clears runs.node_id of its past runs (ON DELETE SET NULL);
-- this index keeps that from scanning every run.
CREATE INDEX runs_node ON runs (node_id) WHERE node_id IS NOT NULL;
