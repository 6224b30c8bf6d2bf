//! Write throughput: the batching writer against one `INSERT` per row in
//! autocommit (what a naive ORM loop does), on SQLite and PostgreSQL. Each
//! record is one post and `analyses_per_record` analyses; rates count rows
//! in all tables. `osprey bench store` calls [`run`].

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;
use sqlx::types::Json;
use sqlx::Connection as _;

use crate::db::{on_pool, Pool};
use crate::{AnalysisRecord, Backend, ContentHash, NewAnalysis, NewPost, Store, StoreSettings};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Records written through the batching writer.
    pub records: usize,
    pub analyses_per_record: usize,
    /// Records written row by row. Fewer by default: rates compare fine,
    /// and the slow path would otherwise dominate the run time.
    pub naive_records: usize,
    pub sqlite: bool,
    /// A PostgreSQL server to measure on (a throwaway schema is created
    /// and dropped); `None` skips PostgreSQL.
    pub postgres_url: Option<String>,
    pub batch_size: usize,
    /// Print the table to stdout.
    pub print: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            records: 50_000,
            analyses_per_record: 3,
            naive_records: 5_000,
            sqlite: true,
            postgres_url: None,
            batch_size: 500,
            print: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchRun {
    pub backend: Backend,
    /// `batched` or `row_at_a_time`.
    pub mode: &'static str,
    pub records: usize,
    pub rows: usize,
    pub seconds: f64,
    pub records_per_s: f64,
    pub rows_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchComparison {
    pub backend: Backend,
    pub batched_rows_per_s: f64,
    pub row_at_a_time_rows_per_s: f64,
    /// Batched over row-at-a-time.
    pub speedup: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub runs: Vec<BenchRun>,
    pub comparisons: Vec<BenchComparison>,
}

impl BenchReport {
    /// A plain-text table of the runs and ratios.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<9} {:<14} {:>8} {:>8} {:>8} {:>11} {:>11}\n",
            "backend", "mode", "records", "rows", "seconds", "records/s", "rows/s"
        );
        for r in &self.runs {
            out.push_str(&format!(
                "{:<9} {:<14} {:>8} {:>8} {:>8.2} {:>11.0} {:>11.0}\n",
                format!("{:?}", r.backend).to_lowercase(),
                r.mode,
                r.records,
                r.rows,
                r.seconds,
                r.records_per_s,
                r.rows_per_s
            ));
        }
        for c in &self.comparisons {
            out.push_str(&format!("{:?}: batched is {:.1}x row-at-a-time\n", c.backend, c.speedup));
        }
        out
    }
}

/// Runs the benchmark on each backend asked for.
pub async fn run(opts: BenchOptions) -> anyhow::Result<BenchReport> {
    let mut runs = Vec::new();
    if opts.sqlite {
        let dir = std::env::temp_dir().join(format!("osprey-store-bench-{}-{}", std::process::id(), unique()));
        let result = on_backend(&opts, StoreSettings::default(), dir.clone()).await;
        let _ = std::fs::remove_dir_all(&dir);
        runs.extend(result?);
    }
    if let Some(url) = &opts.postgres_url {
        let schema = format!("osprey_bench_{}_{}", std::process::id(), unique());
        let mut admin = sqlx::PgConnection::connect(url).await.context("connecting to PostgreSQL")?;
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await?;
        let settings = StoreSettings { url: Some(url_with_search_path(url, &schema)), ..StoreSettings::default() };
        let result = on_backend(&opts, settings, std::env::temp_dir()).await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await?;
        runs.extend(result?);
    }
    let comparisons = [Backend::Sqlite, Backend::Postgres]
        .into_iter()
        .filter_map(|backend| {
            let rate = |mode| runs.iter().find(|r| r.backend == backend && r.mode == mode).map(|r| r.rows_per_s);
            let (batched, naive) = (rate("batched")?, rate("row_at_a_time")?);
            Some(BenchComparison {
                backend,
                batched_rows_per_s: batched,
                row_at_a_time_rows_per_s: naive,
                speedup: batched / naive.max(f64::MIN_POSITIVE),
            })
        })
        .collect();
    let report = BenchReport { runs, comparisons };
    if opts.print {
        print!("{}", report.table());
    }
    Ok(report)
}

/// `url` with its connections' `search_path` set to `schema`, through the
/// `options` startup parameter (so every pooled connection gets it).
pub fn url_with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

async fn on_backend(
    opts: &BenchOptions,
    mut settings: StoreSettings,
    data_dir: PathBuf,
) -> anyhow::Result<Vec<BenchRun>> {
    settings.writer.batch_size = opts.batch_size;
    settings.aggregate_refresh_interval = std::time::Duration::ZERO;
    let store = Store::open(&settings, &data_dir).await.context("opening the store")?;
    let backend = store.backend();
    let rows_per_record = 1 + opts.analyses_per_record;

    let records: Vec<AnalysisRecord> = (0..opts.records).map(|i| record(i, "b", opts.analyses_per_record)).collect();
    let started = Instant::now();
    for r in records {
        store.submit(r).await?;
    }
    store.flush().await?;
    let batched = measured(backend, "batched", opts.records, rows_per_record, started);

    let records: Vec<AnalysisRecord> =
        (0..opts.naive_records).map(|i| record(i, "n", opts.analyses_per_record)).collect();
    let started = Instant::now();
    row_at_a_time(&store.inner.pool, &records).await?;
    let naive = measured(backend, "row_at_a_time", opts.naive_records, rows_per_record, started);

    let report = store.close().await?;
    anyhow::ensure!(report.left == 0 && report.rejected == 0, "bench records were lost: {report:?}");
    Ok(vec![batched, naive])
}

fn measured(backend: Backend, mode: &'static str, records: usize, per: usize, started: Instant) -> BenchRun {
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let rows = records * per;
    BenchRun {
        backend,
        mode,
        records,
        rows,
        seconds,
        records_per_s: records as f64 / seconds,
        rows_per_s: rows as f64 / seconds,
    }
}

/// A record of realistic size: a Reddit-length post and small JSON results.
fn record(i: usize, tag: &str, analyses: usize) -> AnalysisRecord {
    let title = format!("Post {tag}{i}: build times again");
    let body = format!(
        "Every cargo build takes minutes ({i}). I hate waiting for the linker, but incremental builds help a lot. \
         Has anyone tried mold or splitting the workspace into smaller crates? Numbers welcome. [{tag}]"
    );
    let post = NewPost {
        id: format!("{tag}-{i}"),
        source: Some("bench".into()),
        external_id: None,
        author: Some(format!("user{}", i % 97)),
        persona_id: Some(format!("persona-{}", i % 7)),
        topic: Some(format!("topic-{}", i % 5)),
        content_hash: ContentHash::of(&title, &body),
        title,
        body,
        created_at: Some(1_763_700_000_000 + i as i64 * 1000),
    };
    let analyses = (0..analyses)
        .map(|k| NewAnalysis {
            id: uuid::Uuid::now_v7().to_string(),
            task: ["sentiment", "emotion", "summary", "topics"][k % 4].into(),
            model: "vaderSentiment".into(),
            model_revision: "3.3.2".into(),
            options: json!({ "k": k }),
            result: json!({ "compound": 0.42, "pos": 0.3, "neu": 0.6, "neg": 0.1, "label": "positive" }),
            duration_ms: 1.5,
        })
        .collect();
    AnalysisRecord { post, analyses, emotion: None, trajectory: None }
}

/// The baseline: every row its own `INSERT`, every statement its own
/// (autocommitted) transaction, one at a time.
async fn row_at_a_time(pool: &Pool, records: &[AnalysisRecord]) -> anyhow::Result<()> {
    let post_sql = "INSERT INTO posts (id, source, external_id, author, persona_id, topic, title, body, created_at, \
                    stored_at, content_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    let analysis_sql = "INSERT INTO analyses (id, post_id, task, model, model_revision, options, result, created_at, \
                        duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    let now = crate::model::now_ms();
    on_pool!(pool, p => {
        for r in records {
            let post = &r.post;
            sqlx::query(post_sql)
                .bind(post.id.as_str())
                .bind(post.source.as_deref())
                .bind(post.external_id.as_deref())
                .bind(post.author.as_deref())
                .bind(post.persona_id.as_deref())
                .bind(post.topic.as_deref())
                .bind(post.title.as_str())
                .bind(post.body.as_str())
                .bind(post.created_at.unwrap_or(now))
                .bind(now)
                .bind(post.content_hash.to_hex())
                .execute(p)
                .await?;
            for a in &r.analyses {
                sqlx::query(analysis_sql)
                    .bind(a.id.as_str())
                    .bind(post.id.as_str())
                    .bind(a.task.as_str())
                    .bind(a.model.as_str())
                    .bind(a.model_revision.as_str())
                    .bind(Json(&a.options))
                    .bind(Json(&a.result))
                    .bind(now)
                    .bind(a.duration_ms)
                    .execute(p)
                    .await?;
            }
        }
    });
    Ok(())
}
