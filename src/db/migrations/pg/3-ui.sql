-- Version 3 (as migrations/3-ui.sql): web UI sessions, daily audit counts.
CREATE TABLE ui_sessions (
    id_hash     TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    principal   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX ui_sessions_by_user ON ui_sessions(username);

CREATE TABLE audit_daily (
    day         BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (day, event_type)
);
INSERT INTO audit_daily(day, event_type, n)
    SELECT time / 86400, event_type, count(*) FROM audit_log GROUP BY time / 86400, event_type;

CREATE INDEX audit_log_type ON audit_log(event_type, id);
