//! What `osprey watch` keeps between runs: each source's cursor, the
//! contents each watch has seen, and alerts that could not be delivered.
//!
//! [`Store::watch_commit`] is the commit point of a watch batch: the
//! source's new cursor and the batch's content hashes go in together, in
//! one transaction, once the batch's posts are stored. A restart reads the
//! cursor back ([`Store::watch_cursor`]) and resumes after it; a batch that
//! was stored but not committed (a crash in between) comes round again and
//! its posts are recognised as already stored by their content.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use sqlx::QueryBuilder;

use crate::db::{on_pool, RowExt};
use crate::model::now_ms;
use crate::{ContentHash, Store, StoreError};

/// Hashes per `IN (…)` or `VALUES` statement: well under SQLite's bind limit.
const CHUNK: usize = 500;

/// One source's saved position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchCursor {
    pub watch: String,
    pub source: String,
    pub cursor: Value,
    /// Posts committed through this source since the watch began.
    pub posts: i64,
    pub updated_at: i64,
}

/// An alert given up on after its retries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub id: String,
    pub watch: String,
    /// The alert target's name.
    pub target: String,
    pub payload: Value,
    pub error: String,
    pub attempts: i64,
    pub created_at: i64,
}

impl Store {
    /// The cursor saved for `source` of `watch`.
    pub async fn watch_cursor(&self, watch: &str, source: &str) -> Result<Option<WatchCursor>, StoreError> {
        let sql =
            "SELECT watch, source, position, posts, updated_at FROM watch_cursors WHERE watch = $1 AND source = $2";
        let t = self.inner.timings.stmt("watch_cursor");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let row = t.exec(sql, sqlx::query(sql).bind(watch).bind(source).fetch_optional(&mut *conn)).await?;
            row.as_ref().map(decode_cursor).transpose()
        })
    }

    /// Every cursor of `watch`.
    pub async fn watch_cursors(&self, watch: &str) -> Result<Vec<WatchCursor>, StoreError> {
        let sql =
            "SELECT watch, source, position, posts, updated_at FROM watch_cursors WHERE watch = $1 ORDER BY source";
        let t = self.inner.timings.stmt("watch_cursors");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let rows = t.exec(sql, sqlx::query(sql).bind(watch).fetch_all(&mut *conn)).await?;
            rows.iter().map(decode_cursor).collect()
        })
    }

    /// Which of `hashes` `watch` has committed before.
    pub async fn watch_seen(&self, watch: &str, hashes: &[ContentHash]) -> Result<HashSet<ContentHash>, StoreError> {
        let mut seen = HashSet::new();
        let t = self.inner.timings.stmt("watch_seen");
        for chunk in hashes.chunks(CHUNK) {
            on_pool!(&self.inner.pool, p => {
                let mut qb = QueryBuilder::new("SELECT content_hash FROM watch_seen WHERE watch = ");
                qb.push_bind(watch).push(" AND content_hash IN (");
                let mut list = qb.separated(", ");
                for h in chunk {
                    list.push_bind(h.to_hex());
                }
                qb.push(")");
                let q = qb.build();
                let sql = sqlx::Execute::sql(&q).to_string();
                let mut conn = t.acquire(p.acquire()).await?;
                for row in t.exec(&sql, q.fetch_all(&mut *conn)).await? {
                    let text = row.text("content_hash")?;
                    let hash = text.parse().map_err(|why| StoreError::Decode { what: "content_hash", why })?;
                    seen.insert(hash);
                }
            });
        }
        Ok(seen)
    }

    /// Commits a watch batch: `source`'s cursor becomes `cursor`, `posts`
    /// is added to its count and `hashes` are marked seen, all or nothing.
    pub async fn watch_commit(
        &self,
        watch: &str,
        source: &str,
        cursor: &Value,
        posts: u64,
        hashes: &[ContentHash],
    ) -> Result<(), StoreError> {
        let position = serde_json::to_string(cursor).map_err(|e| StoreError::InvalidQuery(e.to_string()))?;
        // Each hash once: PostgreSQL refuses an upsert that touches a row twice.
        let mut unique = hashes.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let hashes = &unique[..];
        let now = now_ms();
        let upsert =
            "INSERT INTO watch_cursors (watch, source, position, posts, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (watch, source) DO UPDATE SET position = excluded.position, \
             posts = watch_cursors.posts + excluded.posts, updated_at = excluded.updated_at";
        let t = self.inner.timings.stmt("watch_commit");
        let begin = self.inner.pool.begin_statement();
        on_pool!(&self.inner.pool, p => {
            let mut tx = t.acquire(p.begin_with(begin)).await?;
            let q = sqlx::query(upsert).bind(watch).bind(source).bind(position.as_str()).bind(posts as i64).bind(now);
            t.exec(upsert, q.execute(&mut *tx)).await?;
            for chunk in hashes.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("INSERT INTO watch_seen (watch, content_hash, seen_at) ");
                qb.push_values(chunk, |mut row, h| {
                    row.push_bind(watch).push_bind(h.to_hex()).push_bind(now);
                });
                qb.push(" ON CONFLICT (watch, content_hash) DO UPDATE SET seen_at = excluded.seen_at");
                let q = qb.build();
                let sql = sqlx::Execute::sql(&q).to_string();
                t.exec(&sql, q.execute(&mut *tx)).await?;
            }
            t.exec("COMMIT", tx.commit()).await?;
        });
        Ok(())
    }

    /// Forgets the contents `watch` last saw before `before` (epoch ms);
    /// how many were forgotten.
    pub async fn watch_forget_seen(&self, watch: &str, before: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM watch_seen WHERE watch = $1 AND seen_at < $2";
        let t = self.inner.timings.stmt("watch_forget_seen");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let done = t.exec(sql, sqlx::query(sql).bind(watch).bind(before).execute(&mut *conn)).await?;
            Ok(done.rows_affected())
        })
    }

    /// Keeps an alert that could not be delivered.
    pub async fn put_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let payload = serde_json::to_string(&letter.payload).map_err(|e| StoreError::InvalidQuery(e.to_string()))?;
        let sql = "INSERT INTO watch_dead_letters (id, watch, target, payload, error, attempts, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING";
        let t = self.inner.timings.stmt("put_dead_letter");
        on_pool!(&self.inner.pool, p => {
            let q = sqlx::query(sql)
                .bind(letter.id.as_str())
                .bind(letter.watch.as_str())
                .bind(letter.target.as_str())
                .bind(payload.as_str())
                .bind(letter.error.as_str())
                .bind(letter.attempts)
                .bind(letter.created_at);
            let mut conn = t.acquire(p.acquire()).await?;
            t.exec(sql, q.execute(&mut *conn)).await?;
        });
        Ok(())
    }

    /// The newest `limit` dead letters of `watch`, newest first.
    pub async fn dead_letters(&self, watch: &str, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let sql = "SELECT id, watch, target, payload, error, attempts, created_at FROM watch_dead_letters \
             WHERE watch = $1 ORDER BY created_at DESC, id DESC LIMIT $2";
        let t = self.inner.timings.stmt("dead_letters");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let rows = t.exec(sql, sqlx::query(sql).bind(watch).bind(i64::from(limit)).fetch_all(&mut *conn)).await?;
            rows.iter()
                .map(|r| {
                    let payload = r.text("payload")?;
                    Ok(DeadLetter {
                        id: r.text("id")?,
                        watch: r.text("watch")?,
                        target: r.text("target")?,
                        payload: serde_json::from_str(&payload)
                            .map_err(|e| StoreError::Decode { what: "payload", why: e.to_string() })?,
                        error: r.text("error")?,
                        attempts: r.int("attempts")?,
                        created_at: r.int("created_at")?,
                    })
                })
                .collect()
        })
    }
}

fn decode_cursor(row: &impl RowExt) -> Result<WatchCursor, StoreError> {
    let position = row.text("position")?;
    Ok(WatchCursor {
        watch: row.text("watch")?,
        source: row.text("source")?,
        cursor: serde_json::from_str(&position)
            .map_err(|e| StoreError::Decode { what: "position", why: e.to_string() })?,
        posts: row.int("posts")?,
        updated_at: row.int("updated_at")?,
    })
}
