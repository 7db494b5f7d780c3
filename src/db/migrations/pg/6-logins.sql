-- Version 6 (as migrations/6-logins.sql): login outcomes replicas share.
CREATE TABLE login_events (
    id       BIGSERIAL PRIMARY KEY,
    replica  TEXT NOT NULL,
    user_key TEXT,
    peer     TEXT,
    ok       BIGINT NOT NULL,
    time     BIGINT NOT NULL
);
CREATE INDEX login_events_time ON login_events(time);
