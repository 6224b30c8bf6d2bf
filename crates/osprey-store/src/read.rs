//! Reads: posts by content hash (the deduplication lookup), by id and by
//! page; analyses and trajectories by id.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{Execute as _, QueryBuilder};

use crate::db::{on_pool, RowExt};
use crate::model::rfc3339;
use crate::plan::Queued;
use crate::{
    cursor, AnalysisRow, ContentHash, PostPage, PostQuery, PostRow, SegmentRow, Store, StoreError, StoredPost,
    TrajectoryRow,
};

const POST_COLS: &str =
    "p.id, p.source, p.external_id, p.author, p.persona_id, p.topic, p.title, p.body, p.content_hash, p.created_at, p.stored_at";
/// Analyses joined to their post, renamed so both sets of columns decode.
const JOINED_ANALYSIS_COLS: &str = "a.id AS a_id, a.task AS a_task, a.model AS a_model, \
    a.model_revision AS a_model_revision, a.options AS a_options, a.result AS a_result, \
    a.created_at AS a_created_at, a.duration_ms AS a_duration_ms";
/// Newest analysis first; the id (time-ordered UUIDv7) breaks ties.
const JOINED_ORDER: &str = " ORDER BY p.id, a.created_at DESC, a.id DESC";

fn decode_post(row: &impl RowExt) -> Result<PostRow, StoreError> {
    let hash = row.text("content_hash")?;
    let created_at = row.int("created_at")?;
    Ok(PostRow {
        id: row.text("id")?,
        source: row.opt_text("source")?,
        external_id: row.opt_text("external_id")?,
        author: row.opt_text("author")?,
        persona_id: row.opt_text("persona_id")?,
        topic: row.opt_text("topic")?,
        title: row.text("title")?,
        body: row.text("body")?,
        content_hash: hash.parse().map_err(|why| StoreError::Decode { what: "content_hash", why })?,
        created_at,
        created: rfc3339(created_at),
        stored_at: row.int("stored_at")?,
    })
}

fn decode_analysis(row: &impl RowExt) -> Result<AnalysisRow, StoreError> {
    let created_at = row.int("created_at")?;
    Ok(AnalysisRow {
        id: row.text("id")?,
        post_id: row.text("post_id")?,
        task: row.text("task")?,
        model: row.text("model")?,
        model_revision: row.text("model_revision")?,
        options: row.json("options")?,
        result: row.json("result")?,
        created_at,
        created: rfc3339(created_at),
        duration_ms: row.float("duration_ms")?,
    })
}

/// The analysis half of a joined row; `None` for a post without analyses.
fn decode_joined_analysis(row: &impl RowExt, post_id: &str) -> Result<Option<AnalysisRow>, StoreError> {
    let Some(id) = row.opt_text("a_id")? else { return Ok(None) };
    let created_at = row.int("a_created_at")?;
    Ok(Some(AnalysisRow {
        id,
        post_id: post_id.to_string(),
        task: row.text("a_task")?,
        model: row.text("a_model")?,
        model_revision: row.text("a_model_revision")?,
        options: row.json("a_options")?,
        result: row.json("a_result")?,
        created_at,
        created: rfc3339(created_at),
        duration_ms: row.float("a_duration_ms")?,
    }))
}

/// Folds post-with-analysis rows, ordered by post id, into posts.
fn group_joined<R: RowExt>(rows: &[R]) -> Result<Vec<StoredPost>, StoreError> {
    let mut out: Vec<StoredPost> = Vec::new();
    for row in rows {
        let id = row.text("id")?;
        if out.last().is_none_or(|last| last.post.id != id) {
            out.push(StoredPost { post: decode_post(row)?, analyses: Vec::new() });
        }
        if let Some(last) = out.last_mut() {
            if let Some(a) = decode_joined_analysis(row, &id)? {
                last.analyses.push(a);
            }
        }
    }
    Ok(out)
}

/// What a queued, uncommitted record will look like once written.
fn pending_post(q: &Queued) -> PostRow {
    let p = &q.record.post;
    let created_at = p.created_at.unwrap_or(q.accepted_at);
    PostRow {
        id: p.id.clone(),
        source: p.source.clone(),
        external_id: p.external_id.clone(),
        author: p.author.clone(),
        persona_id: p.persona_id.clone(),
        topic: p.topic.clone(),
        title: p.title.clone(),
        body: p.body.clone(),
        content_hash: p.content_hash,
        created_at,
        created: rfc3339(created_at),
        stored_at: q.accepted_at,
    }
}

/// Adds queued records to what the database returned: a hash not stored
/// yet gets its first queued post; a stored post gets the analyses queued
/// for it under the same id.
fn merge_pending(found: &mut HashMap<ContentHash, StoredPost>, pending: HashMap<ContentHash, Vec<Arc<Queued>>>) {
    for (hash, queued) in pending {
        let Some(first) = queued.first() else { continue };
        let entry = found.entry(hash).or_insert_with(|| StoredPost { post: pending_post(first), analyses: Vec::new() });
        let id = entry.post.id.clone();
        for q in queued.iter().filter(|q| q.record.post.id == id) {
            add_pending_analyses(entry, q);
        }
    }
}

/// Adds a queued record's analyses to `entry` (once each), newest first.
fn add_pending_analyses(entry: &mut StoredPost, q: &Queued) {
    for a in &q.record.analyses {
        if !entry.analyses.iter().any(|x| x.id == a.id) {
            entry.analyses.push(AnalysisRow {
                id: a.id.clone(),
                post_id: q.record.post.id.clone(),
                task: a.task.clone(),
                model: a.model.clone(),
                model_revision: a.model_revision.clone(),
                options: a.options.clone(),
                result: a.result.clone(),
                created_at: q.accepted_at,
                created: rfc3339(q.accepted_at),
                duration_ms: a.duration_ms,
            });
        }
    }
    entry.analyses.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
}

impl Store {
    /// The stored post (with its analyses, newest first) for each of these
    /// content hashes that has one, in one query. Records still queued in
    /// the writer count as stored, so a repeat that arrives before its
    /// first copy is committed is still recognised.
    pub async fn find_by_hashes(&self, hashes: &[ContentHash]) -> Result<HashMap<ContentHash, StoredPost>, StoreError> {
        // Before the query: a record the writer commits meanwhile then shows
        // up in one or the other (it leaves the map only after its commit).
        let pending = self.inner.writer.shared.pending_for(hashes);
        let mut unique = hashes.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut found = HashMap::with_capacity(unique.len());
        if !unique.is_empty() {
            let max = self.backend().max_params();
            let t = self.inner.timings.stmt("find_by_hashes");
            on_pool!(&self.inner.pool, p => {
                let mut conn = t.acquire(p.acquire()).await?;
                for chunk in unique.chunks(max) {
                    let mut qb = QueryBuilder::new(format!(
                        "SELECT {POST_COLS}, {JOINED_ANALYSIS_COLS} FROM posts p \
                         LEFT JOIN analyses a ON a.post_id = p.id WHERE p.content_hash IN ("
                    ));
                    let mut list = qb.separated(", ");
                    for h in chunk {
                        list.push_bind(h.to_hex());
                    }
                    qb.push(")").push(JOINED_ORDER);
                    let q = qb.build().persistent(false);
                    let rows = t.exec(q.sql(), q.fetch_all(&mut *conn)).await?;
                    for stored in group_joined(&rows)? {
                        found.insert(stored.post.content_hash, stored);
                    }
                }
            });
        }
        merge_pending(&mut found, pending);
        Ok(found)
    }

    /// A post with every analysis of it, newest first. Records still queued
    /// in the writer are included, so a client reading right after
    /// `/v1/analyze` answered sees what it was told was stored.
    pub async fn get_post(&self, id: &str) -> Result<Option<StoredPost>, StoreError> {
        let queued = self.inner.writer.shared.pending_with_id(id);
        let stored = self.get_post_committed(id).await?;
        let Some(last) = queued.last() else { return Ok(stored) };
        // The newest queued copy is what the row will hold once written.
        let mut entry = match stored {
            Some(mut s) => {
                let stored_at = s.post.stored_at;
                s.post = PostRow { stored_at, ..pending_post(last) };
                s
            }
            None => StoredPost { post: pending_post(last), analyses: Vec::new() },
        };
        for q in &queued {
            add_pending_analyses(&mut entry, q);
        }
        Ok(Some(entry))
    }

    async fn get_post_committed(&self, id: &str) -> Result<Option<StoredPost>, StoreError> {
        let sql = format!(
            "SELECT {POST_COLS}, {JOINED_ANALYSIS_COLS} FROM posts p \
             LEFT JOIN analyses a ON a.post_id = p.id WHERE p.id = $1{JOINED_ORDER}"
        );
        let t = self.inner.timings.stmt("get_post");
        let posts = on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let rows = t.exec(&sql, sqlx::query(&sql).bind(id).fetch_all(&mut *conn)).await?;
            group_joined(&rows)?
        });
        Ok(posts.into_iter().next())
    }

    /// One analysis by id, queued ones included (see [`Store::get_post`]).
    pub async fn get_analysis(&self, id: &str) -> Result<Option<AnalysisRow>, StoreError> {
        if let Some(q) = self.inner.writer.shared.pending_with_analysis(id) {
            let mut entry = StoredPost { post: pending_post(&q), analyses: Vec::new() };
            add_pending_analyses(&mut entry, &q);
            if let Some(a) = entry.analyses.into_iter().find(|a| a.id == id) {
                return Ok(Some(a));
            }
        }
        let sql = "SELECT id, post_id, task, model, model_revision, options, result, created_at, duration_ms \
                   FROM analyses WHERE id = $1";
        let t = self.inner.timings.stmt("get_analysis");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let row = t.exec(sql, sqlx::query(sql).bind(id).fetch_optional(&mut *conn)).await?;
            row.as_ref().map(decode_analysis).transpose()
        })
    }

    /// The emotion trajectory stored with a trajectory analysis, segments
    /// in order.
    pub async fn get_trajectory(&self, analysis_id: &str) -> Result<Option<TrajectoryRow>, StoreError> {
        let head = "SELECT id, post_id, analysis_id, smoothing, shape, dominant, mean_valence, volatility, \
                    n_segments, created_at FROM emotion_trajectories WHERE id = $1";
        let segs = "SELECT idx, span_start, span_end, valence, smoothed_valence, label, scores \
                    FROM trajectory_segments WHERE trajectory_id = $1 ORDER BY idx";
        let t = self.inner.timings.stmt("get_trajectory");
        let ts = self.inner.timings.stmt("get_trajectory_segments");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            let Some(row) = t.exec(head, sqlx::query(head).bind(analysis_id).fetch_optional(&mut *conn)).await? else {
                return Ok(None);
            };
            let rows = ts.exec(segs, sqlx::query(segs).bind(analysis_id).fetch_all(&mut *conn)).await?;
            let segments = rows
                .iter()
                .map(|r| {
                    Ok(SegmentRow {
                        idx: r.int("idx")?,
                        start: r.int("span_start")?,
                        end: r.int("span_end")?,
                        valence: r.float("valence")?,
                        smoothed_valence: r.float("smoothed_valence")?,
                        label: r.text("label")?,
                        scores: r.json("scores")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some(TrajectoryRow {
                id: row.text("id")?,
                post_id: row.text("post_id")?,
                analysis_id: row.text("analysis_id")?,
                smoothing: row.text("smoothing")?,
                shape: row.text("shape")?,
                dominant: row.text("dominant")?,
                mean_valence: row.float("mean_valence")?,
                volatility: row.float("volatility")?,
                n_segments: row.int("n_segments")?,
                created_at: row.int("created_at")?,
                segments,
            }))
        })
    }

    /// Posts newest first, filtered, one page at a time. Keyset pagination
    /// on `(created_at, id)`: each page continues strictly after the last
    /// row of the previous one, so pages neither skip nor repeat posts
    /// while new ones arrive, and deep pages cost what the first does.
    pub async fn list_posts(&self, q: &PostQuery) -> Result<PostPage, StoreError> {
        if !(1..=500).contains(&q.limit) {
            return Err(StoreError::InvalidQuery(format!("limit {} is not within 1 to 500", q.limit)));
        }
        let after = q.cursor.as_deref().map(cursor::decode).transpose()?;
        let t = self.inner.timings.stmt("list_posts");
        let mut posts = on_pool!(&self.inner.pool, p => {
            let mut qb = QueryBuilder::new(format!("SELECT {POST_COLS} FROM posts p WHERE 1 = 1"));
            if let Some(persona) = &q.persona_id {
                qb.push(" AND p.persona_id = ").push_bind(persona.as_str());
            }
            if let Some(topic) = &q.topic {
                qb.push(" AND p.topic = ").push_bind(topic.as_str());
            }
            if let Some(since) = q.since {
                qb.push(" AND p.created_at >= ").push_bind(since);
            }
            if let Some(until) = q.until {
                qb.push(" AND p.created_at < ").push_bind(until);
            }
            if let Some((at, id)) = &after {
                qb.push(" AND (p.created_at, p.id) < (").push_bind(*at).push(", ").push_bind(id.as_str()).push(")");
            }
            // One more than asked: whether it exists decides `next_cursor`.
            qb.push(" ORDER BY p.created_at DESC, p.id DESC LIMIT ").push_bind(i64::from(q.limit) + 1);
            let query = qb.build();
            let mut conn = t.acquire(p.acquire()).await?;
            let rows = t.exec(query.sql(), query.fetch_all(&mut *conn)).await?;
            rows.iter().map(decode_post).collect::<Result<Vec<_>, _>>()?
        });
        let limit = q.limit as usize;
        let next_cursor = if posts.len() > limit {
            posts.truncate(limit);
            posts.last().map(|last| cursor::encode(last.created_at, &last.id))
        } else {
            None
        };
        Ok(PostPage { posts, next_cursor })
    }
}
