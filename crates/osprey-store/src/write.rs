//! One batch of records in one transaction.
//!
//! Every statement is idempotent (posts upserted by id, analyses,
//! trajectories and segments inserted with `ON CONFLICT DO NOTHING`), so a
//! batch whose commit was lost with its connection can be written again
//! without duplicating anything: that is what lets the writer retry until
//! it succeeds and still store every record exactly once.
//!
//! The transaction, the lookup of stored posts and the plan are the same
//! on both databases. The inserts differ: SQLite gets multi-row `VALUES`
//! lists chunked under its 32766 bind-parameter limit; PostgreSQL gets one
//! `INSERT ... SELECT FROM UNNEST(array, ...)` per table, a single
//! statement text whatever the batch size (prepared once per connection,
//! no bind limit), which measured 1.3 to 1.6 times as fast as the same
//! `VALUES` lists there (`examples/store_bench.rs`, 2 cores).

use std::sync::Arc;
use std::time::Instant;

use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::types::Json;
use sqlx::{Execute as _, QueryBuilder};

use crate::db::{Backend, Pool};
use crate::metrics::{STORE_ROWS_WRITTEN_TOTAL, STORE_WRITE_BATCH_SECONDS};
use crate::plan::{BatchResult, Existing, Plan, Queued, RowCounts};
use crate::timing::Timings;
use crate::StoreError;

const LOOKUP: &str = "SELECT id, content_hash, created_at, persona_id, topic FROM posts";
const POSTS_INSERT: &str =
    "INSERT INTO posts (id, source, external_id, author, persona_id, topic, title, body, created_at, stored_at, content_hash) ";
/// Optional fields a resubmission leaves out keep their stored values; the
/// content and time are the new record's (already merged with the stored
/// time in the plan). `stored_at` stays the first store's.
const POSTS_UPSERT: &str = " ON CONFLICT (id) DO UPDATE SET \
    source = COALESCE(excluded.source, posts.source), \
    external_id = COALESCE(excluded.external_id, posts.external_id), \
    author = COALESCE(excluded.author, posts.author), \
    persona_id = COALESCE(excluded.persona_id, posts.persona_id), \
    topic = COALESCE(excluded.topic, posts.topic), \
    title = excluded.title, body = excluded.body, \
    created_at = excluded.created_at, content_hash = excluded.content_hash";
const ANALYSES_INSERT: &str =
    "INSERT INTO analyses (id, post_id, task, model, model_revision, options, result, created_at, duration_ms) ";
const ON_CONFLICT_NOTHING: &str = " ON CONFLICT DO NOTHING";
const EMOTIONS_INSERT: &str = "INSERT INTO post_emotions \
    (post_id, label, anger, disgust, fear, joy, neutral, sadness, surprise, persona_id, topic, created_at) ";
const EMOTIONS_UPSERT: &str = " ON CONFLICT (post_id) DO UPDATE SET label = excluded.label, \
    anger = excluded.anger, disgust = excluded.disgust, fear = excluded.fear, joy = excluded.joy, \
    neutral = excluded.neutral, sadness = excluded.sadness, surprise = excluded.surprise, \
    persona_id = excluded.persona_id, topic = excluded.topic, created_at = excluded.created_at";
const EMOTIONS_SYNC: &str = "UPDATE post_emotions SET \
    persona_id = (SELECT p.persona_id FROM posts p WHERE p.id = post_emotions.post_id), \
    topic = (SELECT p.topic FROM posts p WHERE p.id = post_emotions.post_id), \
    created_at = (SELECT p.created_at FROM posts p WHERE p.id = post_emotions.post_id) \
    WHERE post_id IN (";
const TRAJECTORIES_INSERT: &str = "INSERT INTO emotion_trajectories \
    (id, post_id, analysis_id, smoothing, shape, dominant, mean_valence, volatility, n_segments, created_at) ";
const SEGMENTS_INSERT: &str = "INSERT INTO trajectory_segments \
    (trajectory_id, idx, span_start, span_end, valence, smoothed_valence, label, scores) ";

/// Multi-row `INSERT`s of `$rows`, `$cols` binds per row, in as few
/// statements as the bind limit allows; evaluates to the rows affected.
macro_rules! insert_values {
    ($conn:ident, $timings:expr, $name:literal, $cols:expr, $head:expr, $tail:expr, $rows:expr,
     |$b:ident, $r:ident| $push:expr) => {{
        let mut affected = 0u64;
        for chunk in $rows.chunks((Backend::Sqlite.max_params() / $cols).max(1)) {
            let mut qb = QueryBuilder::new($head);
            qb.push_values(chunk, |mut $b, $r| {
                $push;
            });
            qb.push($tail);
            let q = qb.build().persistent(false);
            let sql = q.sql();
            affected += $timings.stmt($name).exec(sql, q.execute(&mut *$conn)).await?.rows_affected();
        }
        affected
    }};
}

/// The stored posts a batch touches, by id (to merge into) or by content
/// (to deduplicate against).
async fn lookup_sqlite(
    conn: &mut SqliteConnection,
    timings: &Timings,
    batch: &[Arc<Queued>],
) -> Result<Vec<Existing>, StoreError> {
    let mut existing: Vec<Existing> = Vec::new();
    for chunk in batch.chunks(Backend::Sqlite.max_params() / 2) {
        let mut qb = QueryBuilder::new(format!("{LOOKUP} WHERE id IN ("));
        let mut ids = qb.separated(", ");
        for q in chunk {
            ids.push_bind(q.record.post.id.as_str());
        }
        qb.push(") OR content_hash IN (");
        let mut hashes = qb.separated(", ");
        for q in chunk {
            hashes.push_bind(q.record.post.content_hash.to_hex());
        }
        qb.push(")");
        let q = qb.build().persistent(false);
        let sql = q.sql();
        let rows = timings.stmt("batch_lookup").exec(sql, q.fetch_all(&mut *conn)).await?;
        for row in &rows {
            let e = Existing::decode(row)?;
            if !existing.iter().any(|x| x.id == e.id) {
                existing.push(e);
            }
        }
    }
    Ok(existing)
}

/// As [`lookup_sqlite`], with arrays: one statement text for any batch.
async fn lookup_postgres(
    conn: &mut PgConnection,
    timings: &Timings,
    batch: &[Arc<Queued>],
) -> Result<Vec<Existing>, StoreError> {
    let sql = format!("{LOOKUP} WHERE id = ANY($1) OR content_hash = ANY($2)");
    let q = sqlx::query(&sql)
        .bind(col(batch, |q| q.record.post.id.as_str()))
        .bind(col(batch, |q| q.record.post.content_hash.to_hex()));
    let rows = timings.stmt("batch_lookup").exec(&sql, q.fetch_all(&mut *conn)).await?;
    rows.iter().map(Existing::decode).collect()
}

/// SQLite: the plan's rows as chunked multi-row `VALUES` lists.
async fn insert_sqlite(
    conn: &mut SqliteConnection,
    timings: &Timings,
    plan: &Plan<'_>,
) -> Result<RowCounts, StoreError> {
    let posts = insert_values!(conn, timings, "insert_posts", 11, POSTS_INSERT, POSTS_UPSERT, plan.posts, |b, r| {
        b.push_bind(r.id)
            .push_bind(r.source)
            .push_bind(r.external_id)
            .push_bind(r.author)
            .push_bind(r.persona_id)
            .push_bind(r.topic)
            .push_bind(r.title)
            .push_bind(r.body)
            .push_bind(r.created_at)
            .push_bind(r.stored_at)
            .push_bind(r.hash.as_str())
    });
    let analyses = insert_values!(
        conn,
        timings,
        "insert_analyses",
        9,
        ANALYSES_INSERT,
        ON_CONFLICT_NOTHING,
        plan.analyses,
        |b, r| {
            b.push_bind(r.a.id.as_str())
                .push_bind(r.post_id)
                .push_bind(r.a.task.as_str())
                .push_bind(r.a.model.as_str())
                .push_bind(r.a.model_revision.as_str())
                .push_bind(Json(&r.a.options))
                .push_bind(Json(&r.a.result))
                .push_bind(r.created_at)
                .push_bind(r.a.duration_ms)
        }
    );
    let post_emotions = insert_values!(
        conn,
        timings,
        "upsert_post_emotions",
        12,
        EMOTIONS_INSERT,
        EMOTIONS_UPSERT,
        plan.emotions,
        |b, r| {
            b.push_bind(r.post_id).push_bind(r.label);
            for score in r.scores {
                b.push_bind(score);
            }
            b.push_bind(r.persona_id).push_bind(r.topic).push_bind(r.created_at)
        }
    );
    let trajectories = insert_values!(
        conn,
        timings,
        "insert_trajectories",
        10,
        TRAJECTORIES_INSERT,
        ON_CONFLICT_NOTHING,
        plan.trajectories,
        |b, r| {
            b.push_bind(r.t.analysis_id.as_str())
                .push_bind(r.post_id)
                .push_bind(r.t.analysis_id.as_str())
                .push_bind(r.t.smoothing.as_str())
                .push_bind(r.t.shape.as_str())
                .push_bind(r.t.dominant.as_str())
                .push_bind(r.t.mean_valence)
                .push_bind(r.t.volatility)
                .push_bind(segment_count(r.t))
                .push_bind(r.created_at)
        }
    );
    let segments = insert_values!(
        conn,
        timings,
        "insert_segments",
        8,
        SEGMENTS_INSERT,
        ON_CONFLICT_NOTHING,
        plan.segments,
        |b, r| {
            b.push_bind(r.trajectory_id)
                .push_bind(r.s.idx)
                .push_bind(r.s.start)
                .push_bind(r.s.end)
                .push_bind(r.s.valence)
                .push_bind(r.s.smoothed_valence)
                .push_bind(r.s.label.as_str())
                .push_bind(Json(&r.s.scores))
        }
    );
    Ok(RowCounts { posts, analyses, post_emotions, trajectories, segments })
}

fn segment_count(t: &crate::NewTrajectory) -> i64 {
    i64::try_from(t.segments.len()).unwrap_or(i64::MAX)
}

/// One column of the plan's rows, as a PostgreSQL array parameter.
fn col<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

/// PostgreSQL: one `INSERT ... SELECT FROM UNNEST` per table.
async fn insert_postgres(conn: &mut PgConnection, timings: &Timings, plan: &Plan<'_>) -> Result<RowCounts, StoreError> {
    let mut rows = RowCounts::default();
    if !plan.posts.is_empty() {
        let sql = concat!(
            "INSERT INTO posts (id, source, external_id, author, persona_id, topic, title, body, created_at, stored_at, content_hash) ",
            "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], ",
            "$8::text[], $9::int8[], $10::int8[], $11::text[])"
        );
        let sql = format!("{sql}{POSTS_UPSERT}");
        let p = &plan.posts;
        let q = sqlx::query(&sql)
            .bind(col(p, |r| r.id))
            .bind(col(p, |r| r.source))
            .bind(col(p, |r| r.external_id))
            .bind(col(p, |r| r.author))
            .bind(col(p, |r| r.persona_id))
            .bind(col(p, |r| r.topic))
            .bind(col(p, |r| r.title))
            .bind(col(p, |r| r.body))
            .bind(col(p, |r| r.created_at))
            .bind(col(p, |r| r.stored_at))
            .bind(col(p, |r| r.hash.as_str()));
        rows.posts = timings.stmt("insert_posts").exec(&sql, q.execute(&mut *conn)).await?.rows_affected();
    }
    if !plan.analyses.is_empty() {
        let sql = concat!(
            "INSERT INTO analyses (id, post_id, task, model, model_revision, options, result, created_at, duration_ms) ",
            "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[], ",
            "$8::int8[], $9::float8[]) ON CONFLICT DO NOTHING"
        );
        let a = &plan.analyses;
        let q = sqlx::query(sql)
            .bind(col(a, |r| r.a.id.as_str()))
            .bind(col(a, |r| r.post_id))
            .bind(col(a, |r| r.a.task.as_str()))
            .bind(col(a, |r| r.a.model.as_str()))
            .bind(col(a, |r| r.a.model_revision.as_str()))
            .bind(col(a, |r| Json(&r.a.options)))
            .bind(col(a, |r| Json(&r.a.result)))
            .bind(col(a, |r| r.created_at))
            .bind(col(a, |r| r.a.duration_ms));
        rows.analyses = timings.stmt("insert_analyses").exec(sql, q.execute(&mut *conn)).await?.rows_affected();
    }
    if !plan.emotions.is_empty() {
        let sql = concat!(
            "INSERT INTO post_emotions (post_id, label, anger, disgust, fear, joy, neutral, sadness, surprise, persona_id, topic, created_at) ",
            "SELECT * FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], ",
            "$7::float8[], $8::float8[], $9::float8[], $10::text[], $11::text[], $12::int8[])"
        );
        let sql = format!("{sql}{EMOTIONS_UPSERT}");
        let e = &plan.emotions;
        let mut q = sqlx::query(&sql).bind(col(e, |r| r.post_id)).bind(col(e, |r| r.label));
        for i in 0..7 {
            q = q.bind(col(e, |r| r.scores[i]));
        }
        let q = q.bind(col(e, |r| r.persona_id)).bind(col(e, |r| r.topic)).bind(col(e, |r| r.created_at));
        rows.post_emotions =
            timings.stmt("upsert_post_emotions").exec(&sql, q.execute(&mut *conn)).await?.rows_affected();
    }
    if !plan.trajectories.is_empty() {
        let sql = concat!(
            "INSERT INTO emotion_trajectories (id, post_id, analysis_id, smoothing, shape, dominant, mean_valence, volatility, n_segments, created_at) ",
            "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], ",
            "$8::float8[], $9::int8[], $10::int8[]) ON CONFLICT DO NOTHING"
        );
        let t = &plan.trajectories;
        let q = sqlx::query(sql)
            .bind(col(t, |r| r.t.analysis_id.as_str()))
            .bind(col(t, |r| r.post_id))
            .bind(col(t, |r| r.t.analysis_id.as_str()))
            .bind(col(t, |r| r.t.smoothing.as_str()))
            .bind(col(t, |r| r.t.shape.as_str()))
            .bind(col(t, |r| r.t.dominant.as_str()))
            .bind(col(t, |r| r.t.mean_valence))
            .bind(col(t, |r| r.t.volatility))
            .bind(col(t, |r| segment_count(r.t)))
            .bind(col(t, |r| r.created_at));
        rows.trajectories = timings.stmt("insert_trajectories").exec(sql, q.execute(&mut *conn)).await?.rows_affected();
    }
    if !plan.segments.is_empty() {
        let sql = concat!(
            "INSERT INTO trajectory_segments (trajectory_id, idx, span_start, span_end, valence, smoothed_valence, label, scores) ",
            "SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::float8[], $6::float8[], $7::text[], ",
            "$8::jsonb[]) ON CONFLICT DO NOTHING"
        );
        let s = &plan.segments;
        let q = sqlx::query(sql)
            .bind(col(s, |r| r.trajectory_id))
            .bind(col(s, |r| r.s.idx))
            .bind(col(s, |r| r.s.start))
            .bind(col(s, |r| r.s.end))
            .bind(col(s, |r| r.s.valence))
            .bind(col(s, |r| r.s.smoothed_valence))
            .bind(col(s, |r| r.s.label.as_str()))
            .bind(col(s, |r| Json(&r.s.scores)));
        rows.segments = timings.stmt("insert_segments").exec(sql, q.execute(&mut *conn)).await?.rows_affected();
    }
    Ok(rows)
}

/// The part both databases share: begin, look up the stored posts the
/// batch touches, plan, insert (`$insert`), re-sync aggregates rows,
/// commit.
macro_rules! in_transaction {
    ($p:ident, $timings:ident, $batch:ident, $begin:expr, $max:expr, $lookup:ident, $insert:ident) => {{
        let mut tx = $timings.stmt("write_batch").acquire($p.begin_with($begin)).await?;
        let existing = $lookup(&mut tx, $timings, $batch).await?;
        let plan = Plan::new($batch, &existing);
        let rows = $insert(&mut tx, $timings, &plan).await?;
        for chunk in plan.sync_emotions.chunks($max) {
            let mut qb = QueryBuilder::new(EMOTIONS_SYNC);
            let mut ids = qb.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            qb.push(")");
            let q = qb.build().persistent(false);
            let sql = q.sql();
            $timings.stmt("sync_post_emotions").exec(sql, q.execute(&mut *tx)).await?;
        }
        $timings.stmt("commit").exec("COMMIT", tx.commit()).await?;
        BatchResult { written: plan.written, duplicates: plan.duplicates, rows }
    }};
}

/// Writes `batch` in one transaction. On error nothing is written (the
/// transaction rolls back when dropped); the caller decides whether to
/// retry the batch or split it.
pub(crate) async fn write_batch(
    pool: &Pool,
    timings: &Timings,
    batch: &[Arc<Queued>],
) -> Result<BatchResult, StoreError> {
    let max = pool.backend().max_params();
    let begin = pool.begin_statement();
    let started = Instant::now();
    let result = match pool {
        Pool::Sqlite(p) => in_transaction!(p, timings, batch, begin, max, lookup_sqlite, insert_sqlite),
        Pool::Postgres(p) => in_transaction!(p, timings, batch, begin, max, lookup_postgres, insert_postgres),
    };
    metrics::histogram!(STORE_WRITE_BATCH_SECONDS).record(started.elapsed().as_secs_f64());
    let r = &result.rows;
    for (table, n) in [
        ("posts", r.posts),
        ("analyses", r.analyses),
        ("post_emotions", r.post_emotions),
        ("emotion_trajectories", r.trajectories),
        ("trajectory_segments", r.segments),
    ] {
        if n > 0 {
            metrics::counter!(STORE_ROWS_WRITTEN_TOTAL, "table" => table).increment(n);
        }
    }
    Ok(result)
}
