//! Real databases for the integration tests: a fresh SQLite file per test
//! (in a temporary directory), or a fresh schema per test in the
//! PostgreSQL named by `OSPREY_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped afterwards.
//! PostgreSQL being unreachable skips its half of a test with a loud
//! message, except under `CI=true`, where it fails it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use osprey_store::{AnalysisRecord, ContentHash, NewAnalysis, NewPost, PostEmotion, Store, StoreSettings};
use serde_json::json;
use sqlx::Connection as _;

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips loudly, or fails under CI.
pub fn unavailable(what: &str, why: &str) {
    if ci() {
        panic!("{what} is required under CI=true: {why}");
    }
    eprintln!("\n*** SKIPPED: {what} unavailable ({why}); this test ran on SQLite only ***\n");
}

pub fn admin_url() -> String {
    std::env::var("OSPREY_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// One test's database.
pub struct TestDb {
    pub settings: StoreSettings,
    pub data_dir: PathBuf,
    _dir: tempfile::TempDir,
    schema: Option<String>,
}

/// Settings that keep tests quick: short batching delay, no scheduled
/// aggregate refresh (tests refresh when they mean to).
fn base_settings() -> StoreSettings {
    let mut s = StoreSettings::default();
    s.writer.max_delay = Duration::from_millis(5);
    s.aggregate_refresh_interval = Duration::ZERO;
    s
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        TestDb { settings: base_settings(), data_dir: dir.path().to_path_buf(), _dir: dir, schema: None }
    }

    /// `None` (after saying so) when PostgreSQL cannot be reached.
    pub async fn postgres() -> Option<TestDb> {
        let admin = admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                unavailable("PostgreSQL", &e.to_string());
                return None;
            }
        };
        let schema = format!("osprey_t_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.expect("create schema");
        let mut settings = base_settings();
        settings.url = Some(osprey_store::bench::url_with_search_path(&admin, &schema));
        let dir = tempfile::tempdir().expect("tempdir");
        Some(TestDb { settings, data_dir: dir.path().to_path_buf(), _dir: dir, schema: Some(schema) })
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.settings, &self.data_dir).await.expect("open store")
    }

    pub async fn open_with(&self, f: impl FnOnce(&mut StoreSettings)) -> Store {
        let mut settings = self.settings.clone();
        f(&mut settings);
        Store::open(&settings, &self.data_dir).await.expect("open store")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else { return };
        // Drop runs inside the test's runtime, which cannot block on itself.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url()).await.ok()?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut conn).await.ok()
            })
        })
        .join();
    }
}

/// Runs `async fn $name(db: TestDb)` once on SQLite and once on PostgreSQL,
/// as tests `$name::sqlite` and `$name::postgres`.
#[allow(unused_macros)]
macro_rules! on_both {
    ($name:ident) => {
        on_both!($name, flavor = "multi_thread", worker_threads = 2);
    };
    ($name:ident, $($flavor:tt)*) => {
        mod $name {
            #[tokio::test($($flavor)*)]
            async fn sqlite() {
                super::$name($crate::common::TestDb::sqlite().await).await;
            }

            #[tokio::test($($flavor)*)]
            async fn postgres() {
                if let Some(db) = $crate::common::TestDb::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

pub fn analysis(task: &str, result: serde_json::Value) -> NewAnalysis {
    NewAnalysis {
        id: uuid::Uuid::now_v7().to_string(),
        task: task.into(),
        model: "vaderSentiment".into(),
        model_revision: "3.3.2".into(),
        options: json!({ "task": task }),
        result,
        duration_ms: 2.5,
    }
}

/// A post with one sentiment analysis.
pub fn record(id: &str, title: &str, body: &str) -> AnalysisRecord {
    AnalysisRecord {
        post: NewPost {
            id: id.into(),
            source: Some("test".into()),
            external_id: None,
            author: Some("author".into()),
            persona_id: None,
            topic: None,
            title: title.into(),
            body: body.into(),
            created_at: None,
            content_hash: ContentHash::of(title, body),
        },
        analyses: vec![analysis("sentiment", json!({ "compound": 0.5, "id": id }))],
        emotion: None,
        trajectory: None,
    }
}

/// A post with persona, topic, time and an emotion distribution.
pub fn emotional(id: &str, persona: &str, topic: Option<&str>, at: i64, scores: &[(&str, f64)]) -> AnalysisRecord {
    let mut r = record(id, "feelings", &format!("post {id}"));
    r.post.persona_id = Some(persona.into());
    r.post.topic = topic.map(str::to_string);
    r.post.created_at = Some(at);
    let label = scores.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map_or("neutral", |s| s.0);
    r.emotion =
        Some(PostEmotion { label: label.into(), scores: scores.iter().map(|(k, v)| (k.to_string(), *v)).collect() });
    r
}
