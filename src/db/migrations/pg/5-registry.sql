-- Version 5 (as migrations/5-registry.sql): the registry's identity.
CREATE TABLE registry (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    registry_id  TEXT NOT NULL,
    -- A MAC of a fixed text under the audit key (replicas must share one).
    audit_key_check TEXT
);
