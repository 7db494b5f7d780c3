-- Version 2: credentials that can be revoked from any process, and tokens
-- bound to the scope they were granted.

-- Bumped in the same transaction as every change to a user's password,
-- roles or status; every process sharing the database compares it on each
-- authentication and drops its cached validations when it moved.
CREATE TABLE auth_generation (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    value  INTEGER NOT NULL
);
INSERT INTO auth_generation(id, value) VALUES (1, 0);

-- The access a token was granted at /v2/token, as JSON
-- [{"type":"repository","name":"a/b","actions":["pull"]}]; NULL for a
-- token requested without a scope (full authority of its user).
ALTER TABLE sessions ADD COLUMN scope TEXT;
