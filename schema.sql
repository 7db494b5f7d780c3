-- mcr metadata schema, version 1.  Applied by db::migrate on an empty
-- database; later versions add numbered migrations in src/db/migrate.rs and
-- never rewrite this file's meaning.  Times are Unix seconds (UTC).

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- One row per committed blob file, whichever repositories use it.
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    media_type  TEXT,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
) WITHOUT ROWID;

-- Which blobs a repository may serve: uploaded there, mounted, or pushed
-- with its manifests.  A blob pushed to one repository is not readable
-- through another.
CREATE TABLE repository_blobs (
    repo_id     INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest      TEXT NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
) WITHOUT ROWID;
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

CREATE TABLE manifests (
    id             INTEGER PRIMARY KEY,
    repo_id        INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    subject_digest TEXT,
    annotations    TEXT,            -- JSON object, for the referrers API
    size           INTEGER NOT NULL,
    body           BLOB NOT NULL,   -- the raw bytes, served byte for byte
    created_at     INTEGER NOT NULL,
    UNIQUE (repo_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repo_id, subject_digest)
    WHERE subject_digest IS NOT NULL;

CREATE TABLE tags (
    repo_id     INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    manifest_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name)
) WITHOUT ROWID;
CREATE INDEX tags_manifest ON tags(manifest_id);

-- What a manifest references: kind is 'config', 'layer' (blobs) or
-- 'manifest' (index children).  No foreign key on digest: foreign layers
-- and child manifests are not rows of blobs.
CREATE TABLE manifest_blobs (
    manifest_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    digest      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('config', 'layer', 'manifest')),
    PRIMARY KEY (manifest_id, digest, kind)
) WITHOUT ROWID;
CREATE INDEX manifest_blobs_digest ON manifest_blobs(digest);

CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    repo_id     INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    algorithm   TEXT NOT NULL,
    offset      INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    touched_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE policy_rules (
    id          INTEGER PRIMARY KEY,
    priority    INTEGER NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    rule_json   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    actor       TEXT,
    peer        TEXT,
    repository  TEXT,
    reference   TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}',
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log(time);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL DEFAULT '[]',
    account_type  TEXT NOT NULL DEFAULT 'human',
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
