-- The rank of a distributed run that a run's own token belongs to: metrics
-- written with it are recorded as that rank's.
ALTER TABLE api_tokens ADD COLUMN run_rank integer CHECK (run_rank >= 0);
