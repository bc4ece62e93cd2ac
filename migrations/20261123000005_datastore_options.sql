-- How to reach a cloud datastore: object_store's configuration keys, each a
-- plain value or {"env": "NAME"}, a variable of the server's environment that
-- holds it. Secrets are only ever stored as such a reference.
ALTER TABLE datastores ADD COLUMN options jsonb NOT NULL DEFAULT '{}';
