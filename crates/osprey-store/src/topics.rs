//! Topic sets, versioned: every change is a new `(name, version)` row and
//! old versions stay readable, so analyses stored against a version can
//! still be explained after the set changes.

use sqlx::types::Json;

use crate::db::{on_pool, RowExt};
use crate::{Store, StoreError, TopicSetRow};

const COLS: &str = "name, version, topics, threshold, description, model, created_at, updated_at";

fn decode(row: &impl RowExt) -> Result<TopicSetRow, StoreError> {
    Ok(TopicSetRow {
        name: row.text("name")?,
        version: row.int("version")?,
        topics: row.json("topics")?,
        threshold: row.float("threshold")?,
        description: row.opt_text("description")?,
        model: row.text("model")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

impl Store {
    /// Stores a version of a topic set, replacing that version if it
    /// exists (its `created_at` is kept).
    pub async fn put_topic_set(&self, set: &TopicSetRow) -> Result<(), StoreError> {
        if set.version < 1 || set.name.is_empty() {
            return Err(StoreError::InvalidQuery("a topic set needs a name and a version from 1".into()));
        }
        let sql = format!(
            "INSERT INTO topic_sets ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (name, version) DO UPDATE SET topics = excluded.topics, threshold = excluded.threshold, \
             description = excluded.description, model = excluded.model, updated_at = excluded.updated_at"
        );
        let t = self.inner.timings.stmt("put_topic_set");
        on_pool!(&self.inner.pool, p => {
            let query = sqlx::query(&sql)
                .bind(set.name.as_str())
                .bind(set.version)
                .bind(Json(&set.topics))
                .bind(set.threshold)
                .bind(set.description.as_deref())
                .bind(set.model.as_str())
                .bind(set.created_at)
                .bind(set.updated_at);
            let mut conn = t.acquire(p.acquire()).await?;
            t.exec(&sql, query.execute(&mut *conn)).await?;
        });
        Ok(())
    }

    /// One version of a set, or its latest when `version` is `None`.
    pub async fn get_topic_set(&self, name: &str, version: Option<i64>) -> Result<Option<TopicSetRow>, StoreError> {
        let sql = match version {
            Some(_) => format!("SELECT {COLS} FROM topic_sets WHERE name = $1 AND version = $2"),
            None => format!("SELECT {COLS} FROM topic_sets WHERE name = $1 ORDER BY version DESC LIMIT 1"),
        };
        let t = self.inner.timings.stmt("get_topic_set");
        on_pool!(&self.inner.pool, p => {
            let mut query = sqlx::query(&sql).bind(name);
            if let Some(v) = version {
                query = query.bind(v);
            }
            let mut conn = t.acquire(p.acquire()).await?;
            let row = t.exec(&sql, query.fetch_optional(&mut *conn)).await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// The latest version of every set, by name.
    pub async fn list_topic_sets(&self) -> Result<Vec<TopicSetRow>, StoreError> {
        let sql = format!(
            "SELECT {COLS} FROM topic_sets t \
             WHERE version = (SELECT MAX(version) FROM topic_sets l WHERE l.name = t.name) ORDER BY name"
        );
        let t = self.inner.timings.stmt("list_topic_sets");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let rows = t.exec(&sql, sqlx::query(&sql).fetch_all(&mut *conn)).await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Deletes every version of a set; how many there were.
    pub async fn delete_topic_set(&self, name: &str) -> Result<u64, StoreError> {
        let sql = "DELETE FROM topic_sets WHERE name = $1";
        let t = self.inner.timings.stmt("delete_topic_set");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let done = t.exec(sql, sqlx::query(sql).bind(name).execute(&mut *conn)).await?;
            Ok(done.rows_affected())
        })
    }
}
