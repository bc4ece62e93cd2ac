-- What the node monitor last saw of each engine, apart from the state an
-- administrator sets: a cordoned node that stops answering and comes back is
-- still cordoned.
ALTER TABLE nodes
    ADD COLUMN health        text NOT NULL DEFAULT 'unknown' CHECK (health IN ('unknown', 'up', 'down')),
    ADD COLUMN health_reason text,
    ADD COLUMN last_seen_at  timestamptz,
    ADD COLUMN engine_version text;
