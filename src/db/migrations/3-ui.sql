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
