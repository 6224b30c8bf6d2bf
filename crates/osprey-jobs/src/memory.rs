//! The in-process backend: the same delivery semantics as the Redis one,
//! held in a mutex.
//!
//! Messages wait in a queue; a delivered one moves to a pending map with the
//! consumer that holds it and when it was (re)delivered. Acknowledging
//! removes it; a message idle past `ack_wait` is reclaimed by the next
//! worker that looks, with its delivery count raised, exactly as
//! `XAUTOCLAIM` does. Nothing survives the process.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use osprey_types::analysis::Post;
use tokio::sync::Notify;

use crate::queue::{Begin, Delivery, Finish};
use crate::types::{now_ms, Record};
use crate::{DeadLetter, JobError, JobId, JobSettings, JobSpec, JobState, JobStatus, QueueStats};

/// Dead letters kept (oldest dropped first), like the Redis stream's cap.
const DEAD_CAP: usize = 100_000;

pub(crate) struct Memory {
    settings: JobSettings,
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, MemJob>,
    ready: VecDeque<Msg>,
    pending: BTreeMap<u64, Pending>,
    next_msg: u64,
    dead: VecDeque<DeadLetter>,
    next_dead: u64,
    last_sweep: Option<Instant>,
}

struct MemJob {
    rec: Record,
    /// Chunks already counted (done, dead or skipped).
    counted: HashSet<u64>,
}

#[derive(Clone)]
struct Msg {
    id: u64,
    job: JobId,
    chunk: u64,
    posts: Arc<Vec<Post>>,
    deliveries: u32,
}

struct Pending {
    msg: Msg,
    consumer: String,
    delivered_at: Instant,
}

impl Msg {
    fn delivery(&self) -> Delivery {
        Delivery {
            msg_id: self.id.to_string(),
            job: Some(self.job.clone()),
            chunk: Some(self.chunk),
            n_posts: self.posts.len() as u64,
            posts: Ok(self.posts.as_ref().clone()),
            deliveries: self.deliveries,
        }
    }
}

impl Memory {
    pub fn new(settings: &JobSettings) -> Self {
        Self { settings: settings.clone(), state: Mutex::new(State::default()), notify: Notify::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops finished jobs past their retention (at most once a second).
    fn sweep(&self, st: &mut State) {
        let now = Instant::now();
        if st.last_sweep.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        st.last_sweep = Some(now);
        let cutoff = now_ms().saturating_sub(self.settings.retention.as_millis() as u64);
        st.jobs.retain(|_, j| j.rec.finished_at.is_none_or(|f| f >= cutoff));
    }

    pub async fn create(&self, id: &JobId, spec: &JobSpec) -> Result<(), JobError> {
        let mut st = self.lock();
        self.sweep(&mut st);
        let rec = Record::new(id.clone(), spec, now_ms());
        st.jobs.insert(id.clone(), MemJob { rec, counted: HashSet::new() });
        Ok(())
    }

    pub async fn append(&self, id: &JobId, chunks: Vec<Vec<Post>>) -> Result<(), JobError> {
        let added: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        {
            let mut st = self.lock();
            let st = &mut *st;
            let job = st.jobs.get_mut(id).ok_or_else(|| JobError::NotFound(id.clone()))?;
            let rec = &mut job.rec;
            if rec.state == JobState::Cancelled {
                return Err(JobError::Cancelled(id.clone()));
            }
            if rec.sealed {
                return Err(JobError::Sealed(id.clone()));
            }
            let mut limit = self.settings.max_posts_per_job as u64;
            if let Some(expected) = rec.expected {
                limit = limit.min(expected);
            }
            if rec.total + added > limit {
                return Err(JobError::TooLarge { requested: rec.total + added, limit });
            }
            for posts in chunks {
                st.next_msg += 1;
                st.ready.push_back(Msg {
                    id: st.next_msg,
                    job: id.clone(),
                    chunk: rec.chunks_total,
                    posts: Arc::new(posts),
                    deliveries: 0,
                });
                rec.chunks_total += 1;
            }
            rec.total += added;
            if rec.expected.is_some_and(|e| rec.total >= e) {
                rec.sealed = true;
                finish_if_done(rec);
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }

    pub async fn seal(&self, id: &JobId) -> Result<(), JobError> {
        let mut st = self.lock();
        let job = st.jobs.get_mut(id).ok_or_else(|| JobError::NotFound(id.clone()))?;
        if job.rec.state == JobState::Cancelled {
            return Err(JobError::Cancelled(id.clone()));
        }
        job.rec.sealed = true;
        finish_if_done(&mut job.rec);
        Ok(())
    }

    pub async fn status(&self, id: &JobId) -> Result<Option<JobStatus>, JobError> {
        let mut st = self.lock();
        self.sweep(&mut st);
        Ok(st.jobs.get(id).map(|j| j.rec.status(now_ms())))
    }

    pub async fn cancel(&self, id: &JobId) -> Result<bool, JobError> {
        let mut st = self.lock();
        let st = &mut *st;
        let job = st.jobs.get_mut(id).ok_or_else(|| JobError::NotFound(id.clone()))?;
        if job.rec.state.is_terminal() {
            return Ok(false);
        }
        job.rec.state = JobState::Cancelled;
        job.rec.finished_at = Some(now_ms());
        // Chunks nobody holds yet are skipped right away; delivered ones are
        // skipped (or finished) by their worker.
        st.ready.retain(|m| {
            if &m.job != id {
                return true;
            }
            if job.counted.insert(m.chunk) {
                job.rec.chunks_skipped += 1;
                job.rec.skipped += m.posts.len() as u64;
            }
            false
        });
        Ok(true)
    }

    pub async fn list(&self, limit: usize) -> Result<Vec<JobStatus>, JobError> {
        let mut st = self.lock();
        self.sweep(&mut st);
        let now = now_ms();
        let mut recs: Vec<&Record> = st.jobs.values().map(|j| &j.rec).collect();
        recs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(recs.into_iter().take(limit).map(|r| r.status(now)).collect())
    }

    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, JobError> {
        let st = self.lock();
        Ok(st.dead.iter().rev().take(limit).cloned().collect())
    }

    pub async fn stats(&self) -> Result<QueueStats, JobError> {
        let st = self.lock();
        Ok(QueueStats {
            messages: (st.ready.len() + st.pending.len()) as u64,
            pending: st.pending.len() as u64,
            dead_letters: st.dead.len() as u64,
        })
    }

    pub async fn read(&self, consumer: &str, count: usize, block: Option<Duration>) -> Vec<Delivery> {
        let deadline = block.map(|b| tokio::time::Instant::now() + b);
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                let st = &mut *st;
                let mut out = Vec::new();
                while out.len() < count {
                    let Some(mut msg) = st.ready.pop_front() else { break };
                    msg.deliveries += 1;
                    out.push(msg.delivery());
                    st.pending
                        .insert(msg.id, Pending { msg, consumer: consumer.to_string(), delivered_at: Instant::now() });
                }
                if !out.is_empty() {
                    return out;
                }
            }
            let Some(deadline) = deadline else { return Vec::new() };
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    pub async fn reclaim(
        &self,
        _cursor: &mut String,
        consumer: &str,
        count: usize,
        min_idle: Duration,
    ) -> Result<Vec<Delivery>, JobError> {
        let mut st = self.lock();
        let now = Instant::now();
        let mut out = Vec::new();
        for p in st.pending.values_mut() {
            if out.len() >= count {
                break;
            }
            if now.duration_since(p.delivered_at) >= min_idle {
                p.consumer = consumer.to_string();
                p.delivered_at = now;
                p.msg.deliveries += 1;
                out.push(p.msg.delivery());
            }
        }
        Ok(out)
    }

    pub async fn extend(&self, consumer: &str, ids: &[String]) -> Result<Vec<String>, JobError> {
        let mut st = self.lock();
        let now = Instant::now();
        let mut kept = Vec::new();
        for id in ids {
            let Ok(n) = id.parse::<u64>() else { continue };
            if let Some(p) = st.pending.get_mut(&n) {
                if p.consumer == consumer {
                    p.delivered_at = now;
                    kept.push(id.clone());
                }
            }
        }
        Ok(kept)
    }

    pub async fn release(&self, consumer: &str, ids: &[(String, u32)]) -> Result<(), JobError> {
        {
            let mut st = self.lock();
            // Back to the front, in their original order.
            for (id, _) in ids.iter().rev() {
                let Ok(n) = id.parse::<u64>() else { continue };
                if st.pending.get(&n).is_some_and(|p| p.consumer == consumer) {
                    if let Some(p) = st.pending.remove(&n) {
                        let mut msg = p.msg;
                        msg.deliveries = msg.deliveries.saturating_sub(1);
                        st.ready.push_front(msg);
                    }
                }
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }

    pub async fn begin(&self, d: &Delivery) -> Result<Begin, JobError> {
        let mut st = self.lock();
        let (Some(job), Some(chunk)) = (&d.job, d.chunk) else { return Ok(Begin::Skip("undecodable")) };
        let Some(job) = st.jobs.get_mut(job) else { return Ok(Begin::Skip("job gone")) };
        if job.counted.contains(&chunk) {
            return Ok(Begin::Skip("already counted"));
        }
        let rec = &mut job.rec;
        if rec.state == JobState::Cancelled {
            return Ok(Begin::Skip("cancelled"));
        }
        if rec.state == JobState::Queued {
            rec.state = JobState::Running;
        }
        rec.started_at.get_or_insert_with(now_ms);
        Ok(Begin::Run(rec.options.clone()))
    }

    pub async fn finish(&self, d: &Delivery, consumer: &str, outcome: &Finish) -> Result<(), JobError> {
        let mut st = self.lock();
        let st = &mut *st;
        // The acknowledgement, whoever holds it now.
        let held = d.msg_id.parse::<u64>().ok().and_then(|n| st.pending.remove(&n));
        let mut counted = false;
        if let (Some(id), Some(chunk)) = (&d.job, d.chunk) {
            if let Some(job) = st.jobs.get_mut(id) {
                if job.counted.insert(chunk) {
                    counted = true;
                    let rec = &mut job.rec;
                    match outcome {
                        Finish::Done(report) => {
                            rec.chunks_done += 1;
                            rec.done += d.n_posts;
                            rec.stored += report.stored;
                            rec.rejected += report.failed;
                        }
                        Finish::Dead(reason) => {
                            rec.chunks_dead += 1;
                            rec.failed += d.n_posts;
                            rec.last_error = Some(reason.clone());
                        }
                        Finish::Skip => {
                            rec.chunks_skipped += 1;
                            rec.skipped += d.n_posts;
                        }
                    }
                    finish_if_done(rec);
                }
            }
        }
        if let Finish::Dead(reason) = outcome {
            if counted || d.job.is_none() {
                st.next_dead += 1;
                let posts = match (&held, &d.posts) {
                    (Some(p), _) => p.msg.posts.as_ref().clone(),
                    (None, Ok(posts)) => posts.clone(),
                    (None, Err(_)) => Vec::new(),
                };
                st.dead.push_back(DeadLetter {
                    id: st.next_dead.to_string(),
                    job: d.job.clone(),
                    chunk: d.chunk,
                    reason: reason.clone(),
                    deliveries: d.deliveries,
                    consumer: consumer.to_string(),
                    dead_at: now_ms(),
                    posts,
                });
                while st.dead.len() > DEAD_CAP {
                    st.dead.pop_front();
                }
            }
        }
        Ok(())
    }

    pub async fn note_error(&self, job: &JobId, error: &str) -> Result<(), JobError> {
        if let Some(j) = self.lock().jobs.get_mut(job) {
            j.rec.last_error = Some(error.to_string());
        }
        Ok(())
    }
}

/// A sealed job whose chunks have all finished ends: failed when any chunk
/// was dead-lettered, completed otherwise. Cancelled jobs stay cancelled.
fn finish_if_done(rec: &mut Record) {
    if rec.sealed && !rec.state.is_terminal() && rec.chunks_finished() >= rec.chunks_total {
        rec.state = rec.final_state();
        rec.finished_at = Some(now_ms());
    }
}
