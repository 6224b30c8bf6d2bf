-- Posts, their analyses (history: a post is analysed again with new
-- options or models), trajectories and topic sets. Timestamps are
-- milliseconds since the Unix epoch in BIGINT so that day and hour buckets
-- (created_at / 86400000) are the same integer arithmetic on SQLite and
-- PostgreSQL.

CREATE TABLE IF NOT EXISTS posts (
    id           TEXT   NOT NULL PRIMARY KEY,
    source       TEXT,
    external_id  TEXT,
    author       TEXT,
    persona_id   TEXT,
    topic        TEXT,
    title        TEXT   NOT NULL,
    body         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    stored_at    BIGINT NOT NULL,
    -- XXH3-128 of title length, title, body as 32 hex digits: the dedup key.
    content_hash TEXT   NOT NULL CHECK (length(content_hash) = 32),
    CONSTRAINT posts_content_hash_key UNIQUE (content_hash)
);

-- Newest-first listing, alone or filtered by persona, topic or both; the
-- trailing id makes (created_at, id) a total order for keyset pages.
CREATE INDEX IF NOT EXISTS posts_created_idx ON posts (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS posts_persona_created_idx ON posts (persona_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS posts_topic_created_idx ON posts (topic, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS posts_persona_topic_created_idx ON posts (persona_id, topic, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS analyses (
    id             TEXT             NOT NULL PRIMARY KEY,
    post_id        TEXT             NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    task           TEXT             NOT NULL,
    model          TEXT             NOT NULL,
    model_revision TEXT             NOT NULL,
    options        TEXT             NOT NULL,
    result         TEXT             NOT NULL,
    created_at     BIGINT           NOT NULL,
    -- Measured compute time: never negative.
    duration_ms    DOUBLE PRECISION NOT NULL CHECK (duration_ms >= 0)
);

CREATE INDEX IF NOT EXISTS analyses_post_idx ON analyses (post_id, created_at DESC);
CREATE INDEX IF NOT EXISTS analyses_task_created_idx ON analyses (task, created_at);

CREATE TABLE IF NOT EXISTS emotion_trajectories (
    -- One trajectory per trajectory analysis: its id is the analysis id.
    id           TEXT             NOT NULL PRIMARY KEY,
    post_id      TEXT             NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    analysis_id  TEXT             NOT NULL REFERENCES analyses (id) ON DELETE CASCADE,
    smoothing    TEXT             NOT NULL,
    shape        TEXT             NOT NULL,
    dominant     TEXT             NOT NULL,
    mean_valence DOUBLE PRECISION NOT NULL,
    volatility   DOUBLE PRECISION NOT NULL,
    n_segments   BIGINT           NOT NULL,
    created_at   BIGINT           NOT NULL
);

CREATE INDEX IF NOT EXISTS emotion_trajectories_post_idx ON emotion_trajectories (post_id);

CREATE TABLE IF NOT EXISTS trajectory_segments (
    trajectory_id    TEXT             NOT NULL REFERENCES emotion_trajectories (id) ON DELETE CASCADE,
    idx              BIGINT           NOT NULL,
    span_start       BIGINT           NOT NULL,
    span_end         BIGINT           NOT NULL,
    valence          DOUBLE PRECISION NOT NULL,
    smoothed_valence DOUBLE PRECISION NOT NULL,
    label            TEXT             NOT NULL,
    scores           TEXT             NOT NULL,
    PRIMARY KEY (trajectory_id, idx)
);

-- The latest emotion of each post, flattened, with the post's persona,
-- topic and time copied in so the aggregates read one narrow table.
CREATE TABLE IF NOT EXISTS post_emotions (
    post_id    TEXT             NOT NULL PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
    label      TEXT             NOT NULL,
    anger      DOUBLE PRECISION NOT NULL DEFAULT 0,
    disgust    DOUBLE PRECISION NOT NULL DEFAULT 0,
    fear       DOUBLE PRECISION NOT NULL DEFAULT 0,
    joy        DOUBLE PRECISION NOT NULL DEFAULT 0,
    neutral    DOUBLE PRECISION NOT NULL DEFAULT 0,
    sadness    DOUBLE PRECISION NOT NULL DEFAULT 0,
    surprise   DOUBLE PRECISION NOT NULL DEFAULT 0,
    persona_id TEXT,
    topic      TEXT,
    created_at BIGINT           NOT NULL
);

CREATE TABLE IF NOT EXISTS topic_sets (
    name        TEXT             NOT NULL,
    version     BIGINT           NOT NULL CHECK (version >= 1),
    topics      TEXT             NOT NULL,
    threshold   DOUBLE PRECISION NOT NULL,
    description TEXT,
    model       TEXT             NOT NULL,
    created_at  BIGINT           NOT NULL,
    updated_at  BIGINT           NOT NULL,
    PRIMARY KEY (name, version)
);
