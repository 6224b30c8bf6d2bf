//! Topic sets, versioned: every change is a new `(name, version)` row and
//! old versions stay readable, so analyses stored against a version can
//! still be explained after the set changes.
//!
//! A delete removes a set's versions but leaves one row behind, a
//! *tombstone* (a version whose model is [`TOMBSTONE_MODEL`] and whose
//! topics are `[]`), so a set made again under the same name continues the
//! numbering instead of reusing a version number that stored analyses may
//! name. Reads never return tombstones.

use sqlx::types::Json;

use crate::db::{on_pool, RowExt};
use crate::{Store, StoreError, TopicSetRow};

const COLS: &str = "name, version, topics, threshold, description, model, created_at, updated_at";

/// The `model` of a deleted set's tombstone row.
pub const TOMBSTONE_MODEL: &str = "(deleted)";

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

    /// Stores `set` as the next version of its name (the highest stored
    /// plus one, or 1), keeping the first stored version's `created_at`
    /// when there is one; returns the row as stored. `set.version` and
    /// `set.created_at` are ignored (`created_at` is taken from
    /// `updated_at` for a new name).
    ///
    /// Safe across processes: the version is chosen and inserted in one
    /// statement, `ON CONFLICT DO NOTHING`; when another writer took the
    /// same version first (PostgreSQL makes the second insert wait for the
    /// first to commit, then skip), nothing is returned and the statement
    /// runs again with the new maximum.
    pub async fn create_topic_set_version(&self, set: &TopicSetRow) -> Result<TopicSetRow, StoreError> {
        if set.name.is_empty() {
            return Err(StoreError::InvalidQuery("a topic set needs a name".into()));
        }
        // The SELECT holds a WHERE clause, which SQLite needs to tell the
        // upsert's ON CONFLICT from a join's ON.
        // `created_at` comes from the latest version (each copies it from
        // the one before), unless that is a tombstone: then the set is new.
        let sql = format!(
            "INSERT INTO topic_sets ({COLS}) \
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, \
             COALESCE((SELECT CASE WHEN f.model = '{TOMBSTONE_MODEL}' THEN NULL ELSE f.created_at END \
             FROM topic_sets f WHERE f.name = $1 ORDER BY f.version DESC LIMIT 1), $6), $6 \
             FROM topic_sets WHERE name = $1 \
             ON CONFLICT (name, version) DO NOTHING RETURNING version, created_at"
        );
        const ATTEMPTS: usize = 16;
        for _ in 0..ATTEMPTS {
            let t = self.inner.timings.stmt("create_topic_set_version");
            let stored: Option<(i64, i64)> = on_pool!(&self.inner.pool, p => {
                let query = sqlx::query_as::<_, (i64, i64)>(&sql)
                    .bind(set.name.as_str())
                    .bind(Json(&set.topics))
                    .bind(set.threshold)
                    .bind(set.description.as_deref())
                    .bind(set.model.as_str())
                    .bind(set.updated_at);
                let mut conn = t.acquire(p.acquire()).await?;
                t.exec(&sql, query.fetch_optional(&mut *conn)).await?
            });
            if let Some((version, created_at)) = stored {
                return Ok(TopicSetRow { version, created_at, ..set.clone() });
            }
        }
        Err(StoreError::InvalidQuery(format!(
            "topic set {:?}: no free version after {ATTEMPTS} attempts (too many concurrent writers)",
            set.name
        )))
    }

    /// One version of a set, or its latest when `version` is `None`;
    /// `None` for a deleted set.
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
            let row = row.as_ref().map(decode).transpose()?;
            Ok(row.filter(|r| r.model != TOMBSTONE_MODEL))
        })
    }

    /// The latest version of every set, by name (deleted sets left out).
    pub async fn list_topic_sets(&self) -> Result<Vec<TopicSetRow>, StoreError> {
        let sql = format!(
            "SELECT {COLS} FROM topic_sets t \
             WHERE version = (SELECT MAX(version) FROM topic_sets l WHERE l.name = t.name) \
             AND model <> '{TOMBSTONE_MODEL}' ORDER BY name"
        );
        let t = self.inner.timings.stmt("list_topic_sets");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let rows = t.exec(&sql, sqlx::query(&sql).fetch_all(&mut *conn)).await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Deletes every version of a set, leaving a tombstone so its version
    /// numbers are never used again; how many versions there were (0: no
    /// such set, or already deleted).
    ///
    /// Two statements, each safe on its own: the tombstone goes in as the
    /// next version first (from then on the set reads as deleted, and a new
    /// `PUT` numbers after it), then the versions below it are removed.
    pub async fn delete_topic_set(&self, name: &str) -> Result<u64, StoreError> {
        let mark = format!(
            "INSERT INTO topic_sets ({COLS}) \
             SELECT $1, MAX(version) + 1, $2, 0.0, NULL, '{TOMBSTONE_MODEL}', $3, $3 \
             FROM topic_sets WHERE name = $1 \
             HAVING COUNT(*) > 0 AND (SELECT l.model FROM topic_sets l WHERE l.name = $1 \
             ORDER BY l.version DESC LIMIT 1) <> '{TOMBSTONE_MODEL}' \
             ON CONFLICT (name, version) DO NOTHING RETURNING version"
        );
        let purge = "DELETE FROM topic_sets WHERE name = $1 AND version < $2";
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        const ATTEMPTS: usize = 16;
        for _ in 0..ATTEMPTS {
            let t = self.inner.timings.stmt("delete_topic_set");
            let tombstone: Option<i64> = on_pool!(&self.inner.pool, p => {
                let query = sqlx::query_scalar::<_, i64>(&mark)
                    .bind(name)
                    .bind(Json(serde_json::json!([])))
                    .bind(now);
                let mut conn = t.acquire(p.acquire()).await?;
                t.exec(&mark, query.fetch_optional(&mut *conn)).await?
            });
            match tombstone {
                Some(version) => {
                    let t = self.inner.timings.stmt("purge_topic_set");
                    return on_pool!(&self.inner.pool, p => {
                        let mut conn = t.acquire(p.acquire()).await?;
                        let done = t.exec(purge, sqlx::query(purge).bind(name).bind(version).execute(&mut *conn)).await?;
                        Ok(done.rows_affected())
                    });
                }
                // No tombstone: the set is absent or deleted, or a writer
                // took the version first (then try again).
                None if self.get_topic_set(name, None).await?.is_none() => return Ok(0),
                None => {}
            }
        }
        Err(StoreError::InvalidQuery(format!(
            "topic set {name:?}: no free version for its tombstone after {ATTEMPTS} attempts"
        )))
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use crate::{Store, StoreSettings, TopicSetRow};

    fn row(name: &str, at: i64) -> TopicSetRow {
        TopicSetRow {
            name: name.into(),
            version: 0,
            topics: serde_json::json!([{ "label": "Rust", "examples": ["cargo"] }]),
            threshold: 0.3,
            description: None,
            model: "m".into(),
            created_at: 0,
            updated_at: at,
        }
    }

    /// Eight writers creating versions of one name at once get distinct,
    /// gapless versions, and every version keeps the first one's `created_at`.
    async fn concurrent_creates_get_distinct_versions(store: Store) {
        let first = store.create_topic_set_version(&row("race", 100)).await.expect("create");
        assert_eq!((first.version, first.created_at, first.updated_at), (1, 100, 100));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for j in 0..5 {
                        got.push(store.create_topic_set_version(&row("race", 200 + i * 10 + j)).await.expect("create"));
                    }
                    got
                })
            })
            .collect();
        let mut versions = vec![1];
        for t in tasks {
            for r in t.await.expect("task") {
                assert_eq!(r.created_at, 100, "created_at is the first version's");
                versions.push(r.version);
            }
        }
        versions.sort_unstable();
        assert_eq!(versions, (1..=41).collect::<Vec<i64>>());
        let latest = store.get_topic_set("race", None).await.expect("get").expect("stored");
        assert_eq!(latest.version, 41);
        // A delete leaves only its tombstone (v42): the name reads as absent,
        // and is made again at v43, as a new set.
        assert_eq!(store.delete_topic_set("race").await.expect("delete"), 41);
        assert_eq!(store.get_topic_set("race", None).await.expect("get"), None);
        assert_eq!(store.get_topic_set("race", Some(42)).await.expect("get"), None);
        assert!(store.list_topic_sets().await.expect("list").is_empty());
        assert_eq!(store.delete_topic_set("race").await.expect("delete again"), 0);
        let again = store.create_topic_set_version(&row("race", 900)).await.expect("create");
        assert_eq!((again.version, again.created_at), (43, 900));
        assert_eq!(store.get_topic_set("race", Some(1)).await.expect("get"), None, "old versions are gone");
        assert_eq!(store.list_topic_sets().await.expect("list").len(), 1);
        assert_eq!(store.delete_topic_set("nothing").await.expect("delete absent"), 0);
        store.close().await.expect("close");
    }

    fn test_settings() -> StoreSettings {
        StoreSettings { aggregate_refresh_interval: std::time::Duration::ZERO, ..StoreSettings::default() }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn versions_are_race_free_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&test_settings(), dir.path()).await.expect("open");
        concurrent_creates_get_distinct_versions(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn versions_are_race_free_on_postgres() {
        let admin = std::env::var("OSPREY_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                assert!(std::env::var("CI").map_or(true, |v| v != "true"), "PostgreSQL is required under CI=true: {e}");
                eprintln!("SKIPPED: PostgreSQL unreachable ({e})");
                return;
            }
        };
        let schema = format!("osprey_topics_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.expect("create schema");
        let mut settings = test_settings();
        settings.url = Some(crate::bench::url_with_search_path(&admin, &schema));
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&settings, dir.path()).await.expect("open");
        concurrent_creates_get_distinct_versions(store).await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut conn).await.expect("drop schema");
    }
}
