//! The dynamic batcher: a queue of tokenized sequences, one thread that forms
//! batches from it, and one model thread that runs them.
//!
//! Callers ([`crate::Embedder`]) push [`Entry`]s and await a oneshot each. The
//! batch former waits until the model thread is idle (or a full batch is
//! waiting), then takes the oldest sequence and fills the batch with the
//! queued sequences closest to it in length, up to `max_batch_tokens` padded
//! tokens and `max_batch_requests` rows. While the model thread runs one batch
//! a full next batch is built ahead, so the model never waits on the queue.
//! Sequences whose caller went away are dropped, those past their deadline
//! answered with a timeout, before they cost any compute.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use osprey_types::metrics as m;
use tokio::sync::oneshot;

use crate::backend::{Backend, PaddedBatch};
use crate::error::{EngineError, Result};
use crate::model::Pooling;
use crate::tokenize::Sequence;

/// Real tokens past which a bigger batch no longer makes the matrix products
/// faster per token on a CPU (measured: short texts gain up to ~20 rows of
/// 25 tokens, 170-token texts gain nothing past one row).
const SATURATING_TOKENS: usize = 512;

/// Whether a batch holding `real` real tokens and `padded` padded tokens
/// (both counting the candidate row) is worth running as one: below
/// [`SATURATING_TOKENS`] up to a third may be padding, above it a tenth.
fn padding_acceptable(real: usize, padded: usize) -> bool {
    let waste = padded - real;
    if real < SATURATING_TOKENS {
        waste * 3 <= padded
    } else {
        waste * 10 <= padded
    }
}

/// A computed vector and how long the forward pass of its batch took.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub vector: Vec<f32>,
    pub inference: Duration,
}

pub(crate) type Reply = oneshot::Sender<Result<Answer>>;

/// One sequence waiting for its vector.
pub(crate) struct Entry {
    pub seq: Sequence,
    pub enqueued: Instant,
    pub deadline: Instant,
    pub reply: Reply,
    /// The caller's span, so the batch that runs this entry links back to it.
    pub span: tracing::Span,
}

#[derive(Default)]
struct State {
    entries: VecDeque<Entry>,
    /// The model thread is waiting for work.
    model_idle: bool,
    /// Batches formed and not yet taken by the model thread.
    pending: usize,
    closed: bool,
}

/// Limits the batch former applies.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_batch_tokens: usize,
    pub max_batch_requests: usize,
}

/// Running totals of one model's batcher, since it loaded.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub batches: AtomicU64,
    pub sequences: AtomicU64,
    pub padded_tokens: AtomicU64,
    pub real_tokens: AtomicU64,
    pub dropped_disconnected: AtomicU64,
    pub dropped_timeout: AtomicU64,
    pub failed: AtomicU64,
}

/// A snapshot of [`Counters`] plus the queue's current depth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatcherStats {
    pub queued: usize,
    pub batches: u64,
    pub sequences: u64,
    pub padded_tokens: u64,
    pub real_tokens: u64,
    pub dropped_disconnected: u64,
    pub dropped_timeout: u64,
    pub failed: u64,
}

/// The queue shared by callers, the batch former and the model thread.
pub(crate) struct Queue {
    state: Mutex<State>,
    wake: Condvar,
    max_batch_tokens: AtomicUsize,
    max_batch_requests: AtomicUsize,
    model: String,
    pub counters: Counters,
}

impl Queue {
    pub fn new(limits: BatchLimits, model: String) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            max_batch_tokens: AtomicUsize::new(limits.max_batch_tokens),
            max_batch_requests: AtomicUsize::new(limits.max_batch_requests),
            model,
            counters: Counters::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere while holding it; the queue
        // data itself stays consistent (every mutation is a single push/pop).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds entries; fails if the engine is shutting down.
    pub fn push(&self, entries: Vec<Entry>) -> Result<()> {
        let mut st = self.lock();
        if st.closed {
            return Err(EngineError::ShutDown);
        }
        st.entries.extend(entries);
        metrics::gauge!(m::QUEUE_SIZE, "model" => self.model.clone()).set(st.entries.len() as f64);
        drop(st);
        self.wake.notify_all();
        Ok(())
    }

    /// The limits the next batch is formed with.
    pub fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_batch_tokens: self.max_batch_tokens.load(Ordering::Relaxed),
            max_batch_requests: self.max_batch_requests.load(Ordering::Relaxed),
        }
    }

    /// Changes the limits at run time; batches formed after this use them.
    pub fn set_limits(&self, limits: BatchLimits) {
        self.max_batch_tokens.store(limits.max_batch_tokens, Ordering::Relaxed);
        self.max_batch_requests.store(limits.max_batch_requests, Ordering::Relaxed);
        self.wake.notify_all();
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn stats(&self) -> BatcherStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BatcherStats {
            queued: self.len(),
            batches: get(&c.batches),
            sequences: get(&c.sequences),
            padded_tokens: get(&c.padded_tokens),
            real_tokens: get(&c.real_tokens),
            dropped_disconnected: get(&c.dropped_disconnected),
            dropped_timeout: get(&c.dropped_timeout),
            failed: get(&c.failed),
        }
    }

    /// Stops the threads; queued entries are answered with `ShutDown`.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        for e in st.entries.drain(..) {
            let _ = e.reply.send(Err(EngineError::ShutDown));
        }
        drop(st);
        self.wake.notify_all();
    }

    fn full_batch_waiting(&self, st: &State) -> bool {
        let limits = self.limits();
        st.entries.len() >= limits.max_batch_requests
            || st.entries.iter().map(|e| e.seq.ids.len()).sum::<usize>() >= limits.max_batch_tokens
    }

    /// Blocks until a batch should be formed, then takes its entries.
    fn next_batch(&self) -> Option<Vec<Entry>> {
        let mut st = self.lock();
        loop {
            if st.closed {
                return None;
            }
            self.drop_dead(&mut st);
            if !st.entries.is_empty() && st.pending == 0 && (st.model_idle || self.full_batch_waiting(&st)) {
                let batch = self.select(&mut st);
                if !batch.is_empty() {
                    st.pending += 1;
                    st.model_idle = false;
                    metrics::gauge!(m::QUEUE_SIZE, "model" => self.model.clone()).set(st.entries.len() as f64);
                    return Some(batch);
                }
            }
            // Wake up at the nearest deadline to expire entries even when idle.
            let timeout = st
                .entries
                .iter()
                .map(|e| e.deadline.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(1));
            st = self.wake.wait_timeout(st, timeout).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
    }

    /// Removes entries whose caller is gone or whose deadline passed.
    fn drop_dead(&self, st: &mut State) {
        let now = Instant::now();
        // The former wakes on every push: scan, and rebuild only when something died.
        if !st.entries.iter().any(|e| e.reply.is_closed() || e.deadline <= now) {
            return;
        }
        let mut kept = VecDeque::with_capacity(st.entries.len());
        for e in st.entries.drain(..) {
            if e.reply.is_closed() {
                self.counters.dropped_disconnected.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(m::SEQUENCES_DROPPED_TOTAL, "reason" => "disconnected").increment(1);
            } else if e.deadline <= now {
                self.counters.dropped_timeout.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(m::SEQUENCES_DROPPED_TOTAL, "reason" => "timeout").increment(1);
                let _ = e.reply.send(Err(EngineError::Timeout(e.deadline - e.enqueued)));
            } else {
                kept.push_back(e);
            }
        }
        st.entries = kept;
    }

    /// Picks the oldest entry and the queued entries nearest to it in length
    /// that fit the limits, so rows in a batch need little padding.
    fn select(&self, st: &mut State) -> Vec<Entry> {
        let Some(anchor) = st.entries.front().map(|e| e.seq.ids.len()) else {
            return Vec::new();
        };
        let limits = self.limits();
        let scan = st.entries.len().min(limits.max_batch_requests * 8);
        let mut order: Vec<usize> = (0..scan).collect();
        order.sort_by_key(|&i| (st.entries[i].seq.ids.len().abs_diff(anchor), i));
        let (mut chosen, mut longest, mut real) = (Vec::new(), 0usize, 0usize);
        for i in order {
            if chosen.len() == limits.max_batch_requests {
                break;
            }
            let len = st.entries[i].seq.ids.len();
            let new_longest = longest.max(len);
            let padded = new_longest * (chosen.len() + 1);
            // Always admit the anchor, even if it alone exceeds the token budget.
            if !chosen.is_empty() && padded > limits.max_batch_tokens {
                continue;
            }
            // Every padded token costs as much as a real one: a row that would
            // pad the batch more than it speeds it up waits for a batch of rows
            // of its own length.
            if !chosen.is_empty() && !padding_acceptable(real + len, padded) {
                continue;
            }
            longest = new_longest;
            real += len;
            chosen.push(i);
        }
        chosen.sort_unstable_by(|a, b| b.cmp(a));
        let mut out: Vec<Entry> = chosen.into_iter().filter_map(|i| st.entries.remove(i)).collect();
        out.reverse();
        out
    }

    fn model_waiting(&self) {
        let mut st = self.lock();
        st.model_idle = true;
        drop(st);
        self.wake.notify_all();
    }

    fn batch_taken(&self) {
        let mut st = self.lock();
        st.pending = st.pending.saturating_sub(1);
        st.model_idle = false;
    }
}

/// A batch ready for the model: the padded tensors and who to answer.
pub(crate) struct Prepared {
    batch: PaddedBatch,
    replies: Vec<Reply>,
    spans: Vec<tracing::Span>,
}

/// Starts the batch-former thread; returns the receiving end for the model thread.
pub(crate) fn spawn_former(queue: Arc<Queue>) -> std::io::Result<Receiver<Prepared>> {
    let (tx, rx): (SyncSender<Prepared>, Receiver<Prepared>) = sync_channel(1);
    std::thread::Builder::new().name("osprey-batcher".into()).spawn(move || {
        while let Some(entries) = queue.next_batch() {
            let now = Instant::now();
            for e in &entries {
                metrics::histogram!(m::QUEUE_WAIT_SECONDS).record(now.duration_since(e.enqueued).as_secs_f64());
            }
            let batch =
                PaddedBatch::from_sequences(entries.iter().map(|e| (e.seq.ids.as_slice(), e.seq.type_ids.as_slice())));
            let (replies, spans) = entries.into_iter().map(|e| (e.reply, e.span)).unzip();
            if tx.send(Prepared { batch, replies, spans }).is_err() {
                break;
            }
        }
    })?;
    Ok(rx)
}

/// Runs batches on `backend` until the former stops.
pub(crate) fn run_model(queue: &Queue, backend: &mut dyn Backend, pooling: Pooling, batches: &Receiver<Prepared>) {
    loop {
        queue.model_waiting();
        let Ok(Prepared { batch, replies, spans }) = batches.recv() else { return };
        queue.batch_taken();
        let rows = batch.batch_size();
        let padded = batch.padded_tokens();
        let span = tracing::debug_span!("inference", model = %queue.model, rows, padded_tokens = padded);
        for s in &spans {
            span.follows_from(s);
        }
        let _entered = span.enter();
        let c = &queue.counters;
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.sequences.fetch_add(rows as u64, Ordering::Relaxed);
        c.padded_tokens.fetch_add(padded as u64, Ordering::Relaxed);
        c.real_tokens.fetch_add(batch.real_tokens() as u64, Ordering::Relaxed);
        metrics::histogram!(m::BATCH_SIZE).record(rows as f64);
        metrics::histogram!(m::BATCH_TOKENS).record(padded as f64);
        if padded > 0 {
            metrics::histogram!(m::BATCH_PADDING_RATIO).record(1.0 - batch.real_tokens() as f64 / padded as f64);
        }
        let started = Instant::now();
        let result = backend.embed(&batch, pooling);
        let inference = started.elapsed();
        metrics::histogram!(m::INFERENCE_DURATION_SECONDS, "model" => queue.model.clone())
            .record(inference.as_secs_f64());
        match result {
            Ok(vectors) if vectors.len() == rows => {
                for (reply, vector) in replies.into_iter().zip(vectors) {
                    let _ = reply.send(Ok(Answer { vector, inference }));
                }
            }
            Ok(vectors) => {
                c.failed.fetch_add(rows as u64, Ordering::Relaxed);
                tracing::error!(rows, got = vectors.len(), "backend returned the wrong number of vectors");
                for reply in replies {
                    let _ =
                        reply.send(Err(EngineError::Backend("backend returned the wrong number of vectors".into())));
                }
            }
            Err(e) => {
                c.failed.fetch_add(rows as u64, Ordering::Relaxed);
                tracing::error!(error = %e, rows, "inference failed");
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(EngineError::Backend(msg.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendInfo;
    use std::sync::mpsc;

    /// Records each batch's row lengths; blocks on `gate` before each batch
    /// when one is given, so tests control when the "model" is busy.
    struct Recording {
        batches: mpsc::Sender<Vec<usize>>,
        gate: Option<mpsc::Receiver<()>>,
    }

    impl Backend for Recording {
        fn embed(&mut self, batch: &PaddedBatch, _pooling: Pooling) -> Result<Vec<Vec<f32>>> {
            if let Some(g) = &self.gate {
                let _ = g.recv();
            }
            let _ = self.batches.send(batch.lengths.clone());
            Ok(batch.lengths.iter().map(|&l| vec![l as f32]).collect())
        }
        fn info(&self) -> BackendInfo {
            BackendInfo { name: "recording", device: "cpu".into(), dtype: "f32".into() }
        }
    }

    fn entry(len: usize, deadline: Duration) -> (Entry, oneshot::Receiver<Result<Answer>>) {
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        let seq = Sequence { ids: vec![1; len], type_ids: vec![0; len] };
        (Entry { seq, enqueued: now, deadline: now + deadline, reply: tx, span: tracing::Span::none() }, rx)
    }

    fn start(limits: BatchLimits, gated: bool) -> (Arc<Queue>, mpsc::Receiver<Vec<usize>>, Option<mpsc::Sender<()>>) {
        let queue = Queue::new(limits, "test".into());
        let prepared = spawn_former(Arc::clone(&queue)).expect("former thread");
        let (btx, brx) = mpsc::channel();
        let (gtx, grx) = if gated {
            let (t, r) = mpsc::channel();
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let q = Arc::clone(&queue);
        std::thread::spawn(move || {
            let mut backend = Recording { batches: btx, gate: grx };
            run_model(&q, &mut backend, Pooling::Mean, &prepared);
        });
        (queue, brx, gtx)
    }

    const LONG: Duration = Duration::from_secs(30);

    /// A gated model thread already busy with a one-row batch, so entries
    /// pushed next queue up; returns the queue, the batches seen (the blocker
    /// first), the gate that lets each batch run, and the blocker's reply
    /// (kept alive so the blocker is not dropped as disconnected).
    fn busy_model(limits: BatchLimits) -> (Arc<Queue>, mpsc::Receiver<Vec<usize>>, mpsc::Sender<()>, Reply) {
        let (queue, batches, gate) = start(limits, true);
        let (blocker, rx) = entry(1, LONG);
        queue.push(vec![blocker]).expect("push");
        wait_until_taken(&queue);
        (queue, batches, gate.expect("gated"), rx)
    }

    /// Waits until the former has taken everything queued into a batch.
    fn wait_until_taken(queue: &Queue) {
        let deadline = Instant::now() + LONG;
        while queue.len() > 0 {
            assert!(Instant::now() < deadline, "the batch former never took the queued entries");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    type Reply = oneshot::Receiver<Result<Answer>>;

    /// Lets the blocker and the next two batches run; returns those two
    /// batches' row lengths, sorted.
    fn two_batches_after_blocker(
        batches: &mpsc::Receiver<Vec<usize>>,
        gate: &mpsc::Sender<()>,
    ) -> (Vec<usize>, Vec<usize>) {
        for _ in 0..3 {
            let _ = gate.send(());
        }
        let _ = batches.recv_timeout(LONG).expect("blocker");
        let mut b1 = batches.recv_timeout(LONG).expect("first batch");
        let mut b2 = batches.recv_timeout(LONG).expect("second batch");
        b1.sort_unstable();
        b2.sort_unstable();
        (b1, b2)
    }

    #[test]
    fn requests_queued_while_the_model_is_busy_form_one_batch() {
        let limits = BatchLimits { max_batch_tokens: 10_000, max_batch_requests: 64 };
        let (queue, batches, gate) = start(limits, true);
        let gate = gate.expect("gated");
        let (first, rx_first) = entry(5, LONG);
        queue.push(vec![first]).expect("push");
        // The first batch is taken; the model thread blocks on the gate.
        wait_until_taken(&queue);
        let mut rxs = Vec::new();
        for _ in 0..10 {
            let (e, rx) = entry(5, LONG);
            queue.push(vec![e]).expect("push");
            rxs.push(rx);
        }
        gate.send(()).expect("release first");
        gate.send(()).expect("release second");
        assert_eq!(batches.recv_timeout(LONG).expect("batch 1"), vec![5]);
        assert_eq!(batches.recv_timeout(LONG).expect("batch 2").len(), 10, "queued requests share one batch");
        assert!(rx_first.blocking_recv().expect("answer").is_ok());
        for rx in rxs {
            assert_eq!(rx.blocking_recv().expect("answer").expect("ok").vector, vec![5.0]);
        }
        queue.close();
    }

    #[test]
    fn batches_respect_the_padded_token_and_row_limits() {
        let limits = BatchLimits { max_batch_tokens: 100, max_batch_requests: 4 };
        let (queue, batches, gate, _blocker) = busy_model(limits);
        let mut rxs = Vec::new();
        // Ten rows of 30 tokens: at most 3 fit 100 padded tokens.
        for _ in 0..10 {
            let (e, rx) = entry(30, LONG);
            rxs.push(rx);
            queue.push(vec![e]).expect("push");
        }
        for _ in 0..8 {
            let _ = gate.send(());
        }
        let mut seen = 0;
        let _ = batches.recv_timeout(LONG).expect("blocker batch");
        while seen < 10 {
            let b = batches.recv_timeout(LONG).expect("batch");
            assert!(b.len() <= 4 && b.len() * 30 <= 100, "batch {b:?} breaks the limits");
            seen += b.len();
        }
        queue.close();
    }

    #[test]
    fn similar_lengths_are_grouped() {
        let limits = BatchLimits { max_batch_tokens: 100_000, max_batch_requests: 3 };
        let (queue, batches, gate, _blocker) = busy_model(limits);
        // One push, so the former sees all six at once (pushed one by one, a
        // full batch of three could form before the rest arrive).
        let (entries, rxs): (Vec<_>, Vec<_>) = [10, 200, 11, 201, 12, 202].iter().map(|&l| entry(l, LONG)).unzip();
        queue.push(entries).expect("push");
        let (b1, b2) = two_batches_after_blocker(&batches, &gate);
        assert_eq!(b1, vec![10, 11, 12], "oldest row's neighbours in length go first");
        assert_eq!(b2, vec![200, 201, 202]);
        drop(rxs);
        queue.close();
    }

    #[test]
    fn rows_that_would_make_a_batch_mostly_padding_wait_for_their_own() {
        let limits = BatchLimits { max_batch_tokens: 100_000, max_batch_requests: 64 };
        let (queue, batches, gate, _blocker) = busy_model(limits);
        // Twelve short rows and two long ones: the long ones would make the
        // short batch over 80% padding.
        let (entries, rxs): (Vec<_>, Vec<_>) =
            [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 120, 121].iter().map(|&l| entry(l, LONG)).unzip();
        queue.push(entries).expect("push");
        let (b1, b2) = two_batches_after_blocker(&batches, &gate);
        assert_eq!(b1, vec![10; 12]);
        assert_eq!(b2, vec![120, 121]);
        for rx in rxs {
            assert!(rx.blocking_recv().expect("answer").is_ok());
        }
        queue.close();
    }

    #[test]
    fn expired_entries_time_out_and_disconnected_ones_are_skipped() {
        let limits = BatchLimits { max_batch_tokens: 10_000, max_batch_requests: 64 };
        let (queue, batches, gate, _blocker) = busy_model(limits);
        let (expiring, rx_expiring) = entry(7, Duration::from_millis(20));
        let (gone, rx_gone) = entry(8, LONG);
        let (kept, rx_kept) = entry(9, LONG);
        queue.push(vec![expiring, gone, kept]).expect("push");
        drop(rx_gone); // the client went away
        std::thread::sleep(Duration::from_millis(60));
        gate.send(()).expect("release");
        gate.send(()).expect("release");
        let _ = batches.recv_timeout(LONG).expect("blocker");
        assert_eq!(batches.recv_timeout(LONG).expect("batch"), vec![9], "only the live entry is computed");
        assert!(matches!(rx_expiring.blocking_recv().expect("answer"), Err(EngineError::Timeout(_))));
        assert!(rx_kept.blocking_recv().expect("answer").is_ok());
        queue.close();
    }

    #[test]
    fn close_answers_queued_entries_and_refuses_new_ones() {
        let limits = BatchLimits { max_batch_tokens: 10_000, max_batch_requests: 64 };
        let (queue, _batches, gate, _blocker) = busy_model(limits);
        let (waiting, rx) = entry(3, LONG);
        queue.push(vec![waiting]).expect("push");
        queue.close();
        assert!(matches!(rx.blocking_recv().expect("answer"), Err(EngineError::ShutDown)));
        let (late, _r) = entry(3, LONG);
        assert!(matches!(queue.push(vec![late]), Err(EngineError::ShutDown)));
        drop(gate);
    }
}
