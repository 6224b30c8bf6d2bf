-- Indexes behind the emotion statistics. SQLite has no materialized views:
-- the statistics are computed live from post_emotions, so the filters they
-- take (persona, topic, time range) must be index lookups.

CREATE INDEX IF NOT EXISTS post_emotions_persona_created_idx ON post_emotions (persona_id, created_at);
CREATE INDEX IF NOT EXISTS post_emotions_topic_created_idx ON post_emotions (topic, created_at);
CREATE INDEX IF NOT EXISTS post_emotions_created_idx ON post_emotions (created_at);
