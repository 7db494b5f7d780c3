-- Version 4: the audit chain is keyed. Rows from `keyed_from` on are
-- HMAC-SHA256 under a key kept outside the database; rows before it were
-- written with plain SHA-256 (a chain from before version 4, re-anchored by
-- the `audit_rekeyed` event at `keyed_from`). No row: not anchored yet.
CREATE TABLE audit_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    keyed_from  INTEGER NOT NULL
);
