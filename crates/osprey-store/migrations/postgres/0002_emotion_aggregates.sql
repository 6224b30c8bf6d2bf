-- Emotion statistics. The indexes serve the live (hourly, or fresh) figures;
-- emotion_daily holds the daily ones precomputed, refreshed by the store on
-- a schedule. Persona and topic are '' for "none" in the view because the
-- unique index that REFRESH ... CONCURRENTLY needs must see one row per key
-- and NULLs are never equal to each other; readers turn '' back into NULL.

CREATE INDEX IF NOT EXISTS post_emotions_persona_created_idx ON post_emotions (persona_id, created_at);
CREATE INDEX IF NOT EXISTS post_emotions_topic_created_idx ON post_emotions (topic, created_at);
CREATE INDEX IF NOT EXISTS post_emotions_created_idx ON post_emotions (created_at);

CREATE MATERIALIZED VIEW IF NOT EXISTS emotion_daily AS
SELECT created_at / 86400000        AS day,
       COALESCE(persona_id, '')     AS persona_id,
       COALESCE(topic, '')          AS topic,
       COUNT(*)                     AS posts,
       AVG(anger)                   AS anger,
       AVG(disgust)                 AS disgust,
       AVG(fear)                    AS fear,
       AVG(joy)                     AS joy,
       AVG(neutral)                 AS neutral,
       AVG(sadness)                 AS sadness,
       AVG(surprise)                AS surprise
FROM post_emotions
GROUP BY 1, 2, 3
WITH DATA;

CREATE UNIQUE INDEX IF NOT EXISTS emotion_daily_key ON emotion_daily (day, persona_id, topic);
CREATE INDEX IF NOT EXISTS emotion_daily_persona_idx ON emotion_daily (persona_id, day);
CREATE INDEX IF NOT EXISTS emotion_daily_topic_idx ON emotion_daily (topic, day);
