//! Emotion statistics: the mean emotion distribution per time bucket,
//! persona and topic. PostgreSQL's daily figures come from the
//! `emotion_daily` materialized view (cheap to read however many posts
//! there are, refreshed on a schedule); hourly figures, and everything on
//! SQLite, are computed live from `post_emotions` with the same bucket
//! arithmetic (`created_at / width`), so both paths agree.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Execute as _, QueryBuilder};
use tokio::sync::watch;

use crate::db::{on_pool, Pool, RowExt};
use crate::model::{rfc3339, EMOTIONS};
use crate::timing::Timings;
use crate::{Backend, Bucket, EmotionBucket, EmotionStatsQuery, Store, StoreError};

const MEANS_LIVE: &str = "COUNT(*) AS posts, AVG(anger) AS anger, AVG(disgust) AS disgust, AVG(fear) AS fear, \
    AVG(joy) AS joy, AVG(neutral) AS neutral, AVG(sadness) AS sadness, AVG(surprise) AS surprise";

/// `[since, until)` widened to whole buckets.
fn bucket_range(q: &EmotionStatsQuery) -> (Option<i64>, Option<i64>) {
    let w = q.bucket.millis();
    let since = q.since.map(|s| s.div_euclid(w).saturating_mul(w));
    let until = q.until.map(|u| u.saturating_add(w - 1).div_euclid(w).saturating_mul(w));
    (since, until)
}

fn decode_bucket(row: &impl RowExt, width: i64) -> Result<EmotionBucket, StoreError> {
    let start_at = row.int("bucket")?.saturating_mul(width);
    let mut means = BTreeMap::new();
    for name in EMOTIONS {
        means.insert(name.to_string(), row.float(name)?);
    }
    Ok(EmotionBucket {
        start_at,
        start: rfc3339(start_at),
        persona_id: row.opt_text("persona_id")?.filter(|s| !s.is_empty()),
        topic: row.opt_text("topic")?.filter(|s| !s.is_empty()),
        posts: u64::try_from(row.int("posts")?).unwrap_or(0),
        means,
    })
}

impl Store {
    /// Mean emotions per bucket, persona and topic, oldest bucket first.
    /// On PostgreSQL, daily buckets are read from the materialized view and
    /// are as fresh as its last refresh; everything else is live.
    pub async fn emotion_stats(&self, q: &EmotionStatsQuery) -> Result<Vec<EmotionBucket>, StoreError> {
        if let (Some(s), Some(u)) = (q.since, q.until) {
            if s >= u {
                return Err(StoreError::InvalidQuery("since must be before until".into()));
            }
        }
        let from_view = self.backend() == Backend::Postgres && q.bucket == Bucket::Day;
        let width = q.bucket.millis();
        let (since, until) = bucket_range(q);
        let name = if from_view { "emotion_stats_view" } else { "emotion_stats_live" };
        let t = self.inner.timings.stmt(name);
        let mut buckets = on_pool!(&self.inner.pool, p => {
            let mut qb = if from_view {
                QueryBuilder::new(
                    "SELECT day AS bucket, persona_id, topic, posts, anger, disgust, fear, joy, neutral, sadness, surprise \
                     FROM emotion_daily WHERE 1 = 1",
                )
            } else {
                QueryBuilder::new(format!(
                    "SELECT created_at / {width} AS bucket, persona_id, topic, {MEANS_LIVE} FROM post_emotions WHERE 1 = 1"
                ))
            };
            if let Some(persona) = &q.persona_id {
                qb.push(" AND persona_id = ").push_bind(persona.as_str());
            }
            if let Some(topic) = &q.topic {
                qb.push(" AND topic = ").push_bind(topic.as_str());
            }
            let column = if from_view { "day" } else { "created_at" };
            let scale = |ms: i64| if from_view { ms / width } else { ms };
            if let Some(since) = since {
                qb.push(format!(" AND {column} >= ")).push_bind(scale(since));
            }
            if let Some(until) = until {
                qb.push(format!(" AND {column} < ")).push_bind(scale(until));
            }
            if !from_view {
                qb.push(" GROUP BY 1, 2, 3");
            }
            let query = qb.build();
            let mut conn = t.acquire(p.acquire()).await?;
            let rows = t.exec(query.sql(), query.fetch_all(&mut *conn)).await?;
            rows.iter().map(|r| decode_bucket(r, width)).collect::<Result<Vec<_>, _>>()?
        });
        // Both databases sort NULL differently; this order is the same on both.
        buckets.sort_by(|a, b| (a.start_at, &a.persona_id, &a.topic).cmp(&(b.start_at, &b.persona_id, &b.topic)));
        Ok(buckets)
    }

    /// Brings PostgreSQL's daily view up to date (concurrently: readers
    /// keep the previous figures meanwhile). Nothing to do on SQLite.
    pub async fn refresh_aggregates(&self) -> Result<(), StoreError> {
        refresh(&self.inner.pool, &self.inner.timings).await
    }
}

async fn refresh(pool: &Pool, timings: &Timings) -> Result<(), StoreError> {
    let Pool::Postgres(p) = pool else { return Ok(()) };
    let sql = "REFRESH MATERIALIZED VIEW CONCURRENTLY emotion_daily";
    let t = timings.stmt("refresh_emotion_daily");
    let mut conn = t.acquire(p.acquire()).await?;
    // A refresh reads every stored emotion: it may outlast the per-statement
    // limit meant for requests, and then would fail every time.
    let lift = "SET statement_timeout = 0";
    t.exec(lift, crate::db::lift_statement_timeout(&mut conn)).await?;
    let refreshed = t.exec(sql, sqlx::query(sql).execute(&mut *conn)).await;
    if refreshed.is_ok() {
        t.exec("RESET statement_timeout", crate::db::restore_statement_timeout(&mut conn)).await?;
    } else {
        conn.detach();
    }
    refreshed.map(|_| ())
}

/// Refreshes the view every `every` until `stop` turns true. A failed
/// refresh is logged and tried again next time; the figures just age.
pub(crate) async fn refresh_loop(pool: Pool, timings: Arc<Timings>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = refresh(&pool, &timings).await {
                    tracing::warn!(error = %e, "refreshing emotion_daily failed");
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_widen_to_whole_buckets() {
        let day = 86_400_000;
        let q = EmotionStatsQuery { since: Some(day + 5), until: Some(3 * day + 1), ..Default::default() };
        assert_eq!(bucket_range(&q), (Some(day), Some(4 * day)));
        let q =
            EmotionStatsQuery { since: Some(day), until: Some(2 * day), bucket: Bucket::Hour, ..Default::default() };
        assert_eq!(bucket_range(&q), (Some(day), Some(2 * day)), "aligned bounds stay");
    }
}
