-- Version 6: login outcomes that replicas share, so that their login
-- throttles agree (read on PostgreSQL; one process serves an SQLite file).
CREATE TABLE login_events (
    id       INTEGER PRIMARY KEY,
    replica  TEXT NOT NULL,
    -- SHA-256 of the username (hex), or NULL for a token, which names nobody.
    user_key TEXT,
    peer     TEXT,
    ok       INTEGER NOT NULL,
    time     INTEGER NOT NULL
);
CREATE INDEX login_events_time ON login_events(time);
