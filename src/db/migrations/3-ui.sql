-- Version 3: web UI sessions.  Only a hash of the session id is stored; the
-- principal is kept as it was at login (JSON), so MCIAS users work too, and
-- a local user's password change or disable deletes their rows.
CREATE TABLE ui_sessions (
    id_hash     TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    principal   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ui_sessions_by_user ON ui_sessions(username);

-- Events per UTC day and type, kept by the audit writer in the same
-- transaction as the events, so the dashboard's chart never scans the log.
CREATE TABLE audit_daily (
    day         INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (day, event_type)
) WITHOUT ROWID;
INSERT INTO audit_daily(day, event_type, n)
    SELECT time / 86400, event_type, count(*) FROM audit_log GROUP BY time / 86400, event_type;

-- The newest events of a type (recent pushes, the audit page's filter).
CREATE INDEX audit_log_type ON audit_log(event_type, id);
