-- State of `osprey watch`: where each source of each watch got to, which
-- contents each watch has already seen (filtered out or kept), and alerts
-- that could not be delivered. A source's cursor and the hashes of the
-- batch it covers are written in one transaction, after the batch's posts
-- are stored, so a restart resumes exactly after the last stored batch.

CREATE TABLE IF NOT EXISTS watch_cursors (
    watch      TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    position   TEXT   NOT NULL,
    posts      BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (watch, source)
);

CREATE TABLE IF NOT EXISTS watch_seen (
    watch        TEXT   NOT NULL,
    content_hash TEXT   NOT NULL CHECK (length(content_hash) = 32),
    seen_at      BIGINT NOT NULL,
    PRIMARY KEY (watch, content_hash)
);

CREATE INDEX IF NOT EXISTS watch_seen_age_idx ON watch_seen (watch, seen_at);

CREATE TABLE IF NOT EXISTS watch_dead_letters (
    id         TEXT   NOT NULL PRIMARY KEY,
    watch      TEXT   NOT NULL,
    target     TEXT   NOT NULL,
    payload    TEXT   NOT NULL,
    error      TEXT   NOT NULL,
    attempts   BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS watch_dead_letters_watch_idx ON watch_dead_letters (watch, created_at);
