-- The run whose preparation built (or is building) an image: its `build`
-- log lines are the image's build log.
ALTER TABLE images ADD COLUMN build_run_id uuid REFERENCES runs (id) ON DELETE SET NULL;
