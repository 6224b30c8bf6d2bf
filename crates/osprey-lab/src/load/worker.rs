//! One generator thread: a current-thread tokio runtime that owns a share of
//! the connections and its own [`ThreadStats`], so the request path takes no
//! lock and touches no shared cache line.
//!
//! - Closed model: one task per virtual user, each owning an HTTP/1.1
//!   connection (or a handle on the thread's HTTP/2 connection); it sends,
//!   waits for the response, optionally thinks, and repeats.
//! - Open model: a scheduler task computes the intended send time of each of
//!   this thread's arrivals and queues it; connection tasks take arrivals
//!   from the queue, and new connections open (up to the limit) when all are
//!   busy. Latency counts from the intended time. When the queue is full the
//!   arrival is counted as missed, never silently skipped.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use hyper::client::conn::http2;
use serde_json::Value;
use tokio::sync::{watch, Notify};

use super::cli::Shard;
use super::conn::{self, Body, Conn, ExchangeError, Watchdog, Window};
use super::request::{Picker, PreparedKind};
use super::saturation::{self, CpuTime};
use super::scenario::Check;
use super::stats::{micros, ErrorKind, IoCounters, SecondBucket, ThreadStats, Timing};
use super::workload::{ArrivalSchedule, Shape};

/// How often an inactive virtual user checks whether the ramp reached it.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// Requests a thread claims from the shared budget at once.
const TOKEN_CHUNK: u64 = 64;
/// Arrivals the scheduler queues back to back before yielding to the connections.
const SCHEDULER_BURST: u32 = 64;

/// Read-only state shared by all generator threads.
pub struct Shared {
    pub kinds: Vec<PreparedKind>,
    pub picker: Picker,
    pub records: Arc<Vec<Value>>,
    pub addr: SocketAddr,
    pub http2: bool,
    pub timeout: Duration,
    pub start: Instant,
    pub deadline: Instant,
    /// In-flight and queued requests may finish until then.
    pub drain_deadline: Instant,
    pub threads: usize,
    pub shard: Shard,
    pub seed: u64,
    pub plan: Plan,
}

/// The workload model, as the threads run it.
pub enum Plan {
    Closed {
        /// VUs of the whole run (all shards) over time.
        shape: Shape,
        think: Duration,
        /// VUs of the whole run at the peak.
        peak: u64,
        /// Requests this process may still send.
        budget: AtomicU64,
    },
    Open {
        schedule: ArrivalSchedule,
        /// Arrival numbers `0..limit` of the whole run are sent.
        limit: u64,
        connections_per_thread: u32,
        backlog_per_thread: usize,
    },
}

/// Which request to send next.
#[derive(Debug, Clone, Copy)]
struct Pick {
    kind: usize,
    record: usize,
    seq: u64,
}

/// What a thread sends to the collector.
pub enum Msg {
    Second(usize, SecondBucket),
    Done(usize),
}

/// What a thread hands back when it ends.
pub struct ThreadOutput {
    pub stats: ThreadStats,
    pub cpu: Option<CpuTime>,
    pub wall: Duration,
}

struct Local {
    sh: Arc<Shared>,
    index: usize,
    stats: RefCell<ThreadStats>,
    rng: RefCell<fastrand::Rng>,
    seq: Cell<u64>,
    tokens: Cell<u64>,
    io: Arc<IoCounters>,
    /// The thread's HTTP/2 connection, shared by its workers; the lock makes
    /// concurrent workers wait for one handshake instead of each opening one.
    h2: tokio::sync::Mutex<Option<http2::SendRequest<Body>>>,
    alive: Cell<usize>,
    exited: Notify,
    // Open model.
    queue: RefCell<VecDeque<Instant>>,
    wake: Notify,
    idle: Cell<usize>,
    connections: Cell<u32>,
    scheduling_done: Cell<bool>,
}

/// Runs generator thread `index` to completion.
pub fn thread_main(
    sh: Arc<Shared>,
    index: usize,
    tx: mpsc::Sender<Msg>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<ThreadOutput> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let set = tokio::task::LocalSet::new();
    let io = Arc::new(IoCounters::default());
    let local = Rc::new(Local {
        stats: RefCell::new(ThreadStats::new(sh.kinds.len(), sh.start, io.clone())),
        rng: RefCell::new(fastrand::Rng::with_seed(sh.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))),
        seq: Cell::new(0),
        tokens: Cell::new(0),
        io,
        h2: tokio::sync::Mutex::new(None),
        alive: Cell::new(0),
        exited: Notify::new(),
        queue: RefCell::new(VecDeque::new()),
        wake: Notify::new(),
        idle: Cell::new(0),
        connections: Cell::new(0),
        scheduling_done: Cell::new(false),
        index,
        sh: sh.clone(),
    });
    let cpu_before = saturation::thread_cpu();
    let began = Instant::now();
    set.block_on(&rt, run_thread(local.clone(), tx.clone(), stop));
    // Dropping the set cancels whatever was still in flight; those requests count as cancelled.
    drop(set);
    let wall = began.elapsed();
    let cpu = saturation::thread_cpu().zip(cpu_before).map(|(after, before)| after.since(before));
    let mut stats = match Rc::try_unwrap(local) {
        Ok(l) => l.stats.into_inner(),
        Err(shared) => {
            let fresh = ThreadStats::new(sh.kinds.len(), sh.start, Arc::new(IoCounters::default()));
            std::mem::replace(&mut *shared.stats.borrow_mut(), fresh)
        }
    };
    if matches!(sh.plan, Plan::Closed { .. }) {
        stats.scheduled = stats.kinds.iter().map(|k| k.sent).sum();
    }
    stats.roll(Instant::now());
    for bucket in stats.take_seconds(true) {
        let _ = tx.send(Msg::Second(index, bucket));
    }
    let _ = tx.send(Msg::Done(index));
    Ok(ThreadOutput { stats, cpu, wall })
}

async fn run_thread(local: Rc<Local>, tx: mpsc::Sender<Msg>, mut stop: watch::Receiver<bool>) {
    let sh = local.sh.clone();
    tokio::time::sleep_until(sh.start.into()).await;
    let flusher = tokio::task::spawn_local(flush_loop(local.clone(), tx));
    match &sh.plan {
        Plan::Closed { peak, .. } => {
            // This thread's VUs: every `shards`-th of the run's, then every `threads`-th of the shard's.
            let (i, n) = (u64::from(sh.shard.index), u64::from(sh.shard.count));
            let mut vu = i + n * local.index as u64;
            while vu < *peak {
                spawn_tracked(&local, closed_vu(local.clone(), vu));
                vu += n * sh.threads as u64;
            }
        }
        Plan::Open { .. } => spawn_tracked(&local, scheduler(local.clone())),
    }
    let all_done = async {
        while local.alive.get() > 0 {
            local.exited.notified().await;
        }
    };
    let stopped = async {
        if stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = all_done => {}
        _ = stopped => {}
        _ = tokio::time::sleep_until(sh.drain_deadline.into()) => {}
    }
    flusher.abort();
}

fn spawn_tracked(local: &Rc<Local>, fut: impl Future<Output = ()> + 'static) {
    local.alive.set(local.alive.get() + 1);
    let l = local.clone();
    tokio::task::spawn_local(async move {
        fut.await;
        l.alive.set(l.alive.get() - 1);
        l.exited.notify_one();
    });
}

/// Hands each finished second to the collector shortly after it ends.
async fn flush_loop(local: Rc<Local>, tx: mpsc::Sender<Msg>) {
    let mut next = 1u32;
    loop {
        let at = local.sh.start + Duration::from_secs(u64::from(next)) + Duration::from_millis(2);
        tokio::time::sleep_until(at.into()).await;
        let now = Instant::now();
        let buckets = {
            let mut st = local.stats.borrow_mut();
            st.roll(now);
            st.take_seconds(false)
        };
        for b in buckets {
            let _ = tx.send(Msg::Second(local.index, b));
        }
        let elapsed = now.saturating_duration_since(local.sh.start).as_secs();
        next = u32::try_from(elapsed + 1).unwrap_or(u32::MAX);
    }
}

impl Local {
    /// Claims one request from the closed model's budget.
    fn take_token(&self) -> bool {
        if self.tokens.get() == 0 {
            let Plan::Closed { budget, .. } = &self.sh.plan else { return true };
            let mut left = budget.load(Ordering::Relaxed);
            loop {
                if left == 0 {
                    return false;
                }
                let take = left.min(TOKEN_CHUNK);
                match budget.compare_exchange_weak(left, left - take, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        self.tokens.set(take);
                        break;
                    }
                    Err(now) => left = now,
                }
            }
        }
        self.tokens.set(self.tokens.get() - 1);
        true
    }

    /// The next request to send.
    fn next_request(&self) -> Pick {
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        let (kind, record) = self.sh.picker.pick(&mut self.rng.borrow_mut(), seq, self.index, self.sh.threads);
        Pick { kind, record, seq }
    }

    /// Makes `slot` hold an open connection.
    async fn ensure_connection(&self, slot: &mut Option<Conn>) -> Result<(), String> {
        if slot.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        *slot = None;
        if !self.sh.http2 {
            let c = conn::connect(self.sh.addr, false, &self.io, self.sh.timeout).await?;
            self.stats.borrow_mut().connections_opened += 1;
            *slot = Some(c);
            return Ok(());
        }
        let mut shared = self.h2.lock().await;
        if let Some(s) = shared.as_ref().filter(|s| !s.is_closed()) {
            *slot = Some(Conn::H2(s.clone()));
            return Ok(());
        }
        let c = conn::connect(self.sh.addr, true, &self.io, self.sh.timeout).await?;
        self.stats.borrow_mut().connections_opened += 1;
        if let Conn::H2(s) = &c {
            *shared = Some(s.clone());
        }
        *slot = Some(c);
        Ok(())
    }

    /// Sends one request of `kind` on `slot` (connecting first when needed),
    /// records it, and returns when it finished. `start` is when the worker
    /// took the request on; raw latency counts from then (including a
    /// connection set-up when one was needed).
    async fn send_one(
        &self,
        slot: &mut Option<Conn>,
        dog: &mut Watchdog,
        pick: Pick,
        start: Instant,
        due: Option<Instant>,
    ) -> Instant {
        let Pick { kind, record, seq } = pick;
        let sh = &*self.sh;
        let window = Window { start, limit: start + sh.timeout };
        // A kept-alive connection that the server closed in between is replaced, not counted as an error.
        let mut failure = None;
        for attempt in 0..2 {
            if let Err(e) = self.ensure_connection(slot).await {
                failure = Some((ErrorKind::Connect, e));
                break;
            }
            let Some(c) = slot.as_mut() else { continue };
            match c.ready(dog, window).await {
                Ok(()) => {
                    failure = None;
                    break;
                }
                Err(ExchangeError::Timeout) => {
                    *slot = None;
                    failure = Some((
                        ErrorKind::Timeout,
                        format!("timed out after {:?} waiting for a connection", sh.timeout),
                    ));
                    break;
                }
                Err(e) => {
                    *slot = None;
                    failure =
                        Some((ErrorKind::Io, format!("connection not ready after {} attempts: {e}", attempt + 1)));
                }
            }
        }
        self.stats.borrow_mut().on_send(kind);
        let Some(c) = slot.as_mut().filter(|_| failure.is_none()) else {
            let (error, message) = failure.unwrap_or((ErrorKind::Io, "no connection".into()));
            let now = Instant::now();
            self.stats.borrow_mut().on_failure(kind, now, error, &message);
            return now;
        };
        let prepared = &sh.kinds[kind];
        let result = c.exchange(prepared, &sh.records, record, seq, dog, window).await;
        let done = Instant::now();
        let mut st = self.stats.borrow_mut();
        match result {
            Err(ExchangeError::Timeout) => {
                *slot = None;
                st.on_failure(kind, done, ErrorKind::Timeout, &format_args!("timed out after {:?}", sh.timeout));
            }
            Err(e) => {
                *slot = None;
                st.on_failure(kind, done, ErrorKind::Io, &format_args!("{}: {e}", prepared.name));
            }
            Ok(ex) => {
                let timing = Timing { raw_us: micros(done - start), corrected_us: due.map(|d| micros(done - d)) };
                let error = classify(&prepared.check, ex.status, &ex.body);
                if let Some(e) = error {
                    st.sample_error(&format_args!("{}: status {} ({:?})", prepared.name, ex.status, e));
                }
                if let Some(v) = ex.server_timing.as_deref() {
                    st.server_timing().record(v, timing.raw_us);
                }
                st.on_response(kind, done, timing, error, ex.body_len);
            }
        }
        done
    }
}

/// The error a response counts as, if any.
fn classify(check: &Check, status: u16, body: &[u8]) -> Option<ErrorKind> {
    if !check.status.accepts(status) {
        return Some(match status {
            500.. => ErrorKind::Status5xx,
            400..=499 => ErrorKind::Status4xx,
            _ => ErrorKind::Check,
        });
    }
    if let Some(needle) = &check.body_contains {
        if !needle.is_empty() && !body.windows(needle.len()).any(|w| w == needle.as_slice()) {
            return Some(ErrorKind::Check);
        }
    }
    if !check.json.is_empty() {
        let Ok(value) = serde_json::from_slice::<Value>(body) else { return Some(ErrorKind::Check) };
        if check.json.iter().any(|p| value.pointer(p).is_none()) {
            return Some(ErrorKind::Check);
        }
    }
    None
}

async fn closed_vu(local: Rc<Local>, vu: u64) {
    let sh = local.sh.clone();
    let Plan::Closed { shape, think, .. } = &sh.plan else { return };
    let constant = shape.is_constant();
    let mut slot: Option<Conn> = None;
    let mut dog = Watchdog::new();
    let mut now = Instant::now();
    loop {
        if now >= sh.deadline {
            break;
        }
        if !constant {
            let active = shape.value_at(now.saturating_duration_since(sh.start).as_secs_f64()).round();
            if vu as f64 >= active {
                slot = None;
                tokio::time::sleep(IDLE_POLL).await;
                now = Instant::now();
                continue;
            }
        }
        if !local.take_token() {
            break;
        }
        // The previous request's end is this one's start: no clock read in between.
        now = local.send_one(&mut slot, &mut dog, local.next_request(), now, None).await;
        if !think.is_zero() {
            tokio::time::sleep(*think).await;
            now = Instant::now();
        }
    }
}

async fn scheduler(local: Rc<Local>) {
    let sh = local.sh.clone();
    let Plan::Open { schedule, limit, connections_per_thread, backlog_per_thread } = &sh.plan else { return };
    let stride = u64::from(sh.shard.count) * sh.threads as u64;
    let mut k = u64::from(sh.shard.index) + u64::from(sh.shard.count) * local.index as u64;
    let mut cursor = schedule.cursor();
    let mut burst = 0;
    while k < *limit {
        let Some(t) = cursor.time_of(k) else { break };
        let due = sh.start + Duration::from_secs_f64(t);
        if due >= sh.deadline {
            break;
        }
        let mut now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
            now = Instant::now();
            burst = 0;
        } else {
            burst += 1;
            if burst >= SCHEDULER_BURST {
                tokio::task::yield_now().await;
                now = Instant::now();
                burst = 0;
            }
        }
        {
            let mut st = local.stats.borrow_mut();
            st.scheduled += 1;
            super::hist::record(&mut st.scheduler_lag, micros(now.saturating_duration_since(due)));
            if local.queue.borrow().len() >= *backlog_per_thread {
                st.on_missed(now);
            } else {
                local.queue.borrow_mut().push_back(due);
                drop(st);
                if local.idle.get() > 0 {
                    local.idle.set(local.idle.get() - 1);
                    local.wake.notify_one();
                } else if local.connections.get() < *connections_per_thread {
                    local.connections.set(local.connections.get() + 1);
                    spawn_tracked(&local, open_connection(local.clone()));
                }
            }
        }
        k += stride;
    }
    local.scheduling_done.set(true);
    local.wake.notify_waiters();
}

async fn open_connection(local: Rc<Local>) {
    let mut slot: Option<Conn> = None;
    let mut dog = Watchdog::new();
    loop {
        let next = local.queue.borrow_mut().pop_front();
        let due = match next {
            Some(d) => d,
            None if local.scheduling_done.get() => break,
            None => {
                local.idle.set(local.idle.get() + 1);
                local.wake.notified().await;
                continue;
            }
        };
        let now = Instant::now();
        super::hist::record(&mut local.stats.borrow_mut().send_delay, micros(now.saturating_duration_since(due)));
        local.send_one(&mut slot, &mut dog, local.next_request(), now, Some(due)).await;
    }
    local.connections.set(local.connections.get() - 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::scenario::StatusCheck;

    #[test]
    fn responses_are_classified() {
        let plain = Check::default();
        assert_eq!(classify(&plain, 200, b""), None);
        assert_eq!(classify(&plain, 404, b""), Some(ErrorKind::Status4xx));
        assert_eq!(classify(&plain, 503, b""), Some(ErrorKind::Status5xx));
        let strict = Check {
            status: StatusCheck::Exact(200),
            json: vec!["/results/0/label".into()],
            body_contains: Some(b"label".to_vec()),
        };
        assert_eq!(classify(&strict, 201, b""), Some(ErrorKind::Check));
        assert_eq!(classify(&strict, 200, br#"{"results":[{"label":"joy"}]}"#), None);
        assert_eq!(classify(&strict, 200, br#"{"results":[{"labels":1}]}"#), Some(ErrorKind::Check));
        assert_eq!(classify(&strict, 200, br#"{"label": 1}"#), Some(ErrorKind::Check));
        assert_eq!(classify(&strict, 200, b"label but not json"), Some(ErrorKind::Check));
    }
}
