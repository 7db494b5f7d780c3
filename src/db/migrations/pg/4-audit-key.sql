-- Version 4 (as migrations/4-audit-key.sql): where the keyed audit chain
-- begins.
CREATE TABLE audit_meta (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    keyed_from  BIGINT NOT NULL
);
