-- Version 5: the registry's identity, made once, so that a store shared
-- with other processes (an S3 bucket) can tell which database it belongs to.
CREATE TABLE registry (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    registry_id  TEXT NOT NULL,
    -- A MAC of a fixed text under the audit key (replicas must share one).
    audit_key_check TEXT
);
