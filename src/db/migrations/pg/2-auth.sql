-- Version 2 (as migrations/2-auth.sql): the credentials generation and
-- token scopes.
CREATE TABLE auth_generation (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    value  BIGINT NOT NULL
);
INSERT INTO auth_generation(id, value) VALUES (1, 0);
ALTER TABLE sessions ADD COLUMN scope TEXT;
