//! Statement timing: every statement the store runs goes through [`Timed`],
//! which measures the wait for a pooled connection and the execution
//! separately, keeps per-statement histograms for `query_stats`, records
//! the same as Prometheus metrics, and logs and remembers slow statements.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::metrics::{DB_POOL_WAIT_SECONDS, DB_QUERIES_TOTAL, DB_QUERY_DURATION_SECONDS, DB_SLOW_QUERIES_TOTAL};
use crate::model::{now_ms, rfc3339};
use crate::StoreError;

/// How many slow statements `query_stats` remembers.
const SLOW_RING: usize = 100;

/// Per-statement timings of one store.
pub(crate) struct Timings {
    slow_threshold: Duration,
    /// SQLite statements cannot be cancelled server-side, so the store
    /// stops waiting for them after this; PostgreSQL enforces its own.
    client_timeout: Option<Duration>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    statements: BTreeMap<&'static str, Entry>,
    slow: VecDeque<SlowQuery>,
    slow_total: u64,
}

struct Entry {
    count: u64,
    errors: u64,
    /// Microseconds.
    exec: Histogram<u64>,
    wait: Histogram<u64>,
}

impl Entry {
    fn new() -> Self {
        Self { count: 0, errors: 0, exec: histogram(), wait: histogram() }
    }
}

fn histogram() -> Histogram<u64> {
    // One microsecond to one hour at three significant figures.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds and precision are within hdrhistogram's limits")
}

/// Statistics of every statement name, the slow-query ring and the pool
/// and writer state: what `GET /performance/database` returns.
#[derive(Debug, Clone, Serialize)]
pub struct QueryStats {
    pub statements: BTreeMap<String, StatementStats>,
    /// Newest last.
    pub slow_queries: Vec<SlowQuery>,
    /// Slow statements since start (the ring above keeps the newest).
    pub slow_total: u64,
    pub slow_query_threshold_ms: f64,
    pub pool: PoolState,
    pub writer: WriterStats,
}

/// Execution (`exec_*`) and connection wait (`wait_*`) of one statement
/// name, in milliseconds. Statements run inside a transaction that already
/// holds its connection have no wait of their own: `waits` counts the
/// acquisitions.
#[derive(Debug, Clone, Serialize)]
pub struct StatementStats {
    pub count: u64,
    pub errors: u64,
    pub exec_mean_ms: f64,
    pub exec_p50_ms: f64,
    pub exec_p95_ms: f64,
    pub exec_max_ms: f64,
    pub waits: u64,
    pub wait_mean_ms: f64,
    pub wait_p95_ms: f64,
    pub wait_max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlowQuery {
    pub statement: String,
    /// XXH3-64 (hex) of the SQL with whitespace and placeholder lists
    /// normalised, so the same statement with 10 or 500 rows matches.
    pub fingerprint: String,
    pub duration_ms: f64,
    pub at: i64,
    pub at_rfc3339: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolState {
    pub size: u32,
    pub idle: usize,
    pub max: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct WriterStats {
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub written: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub batches: u64,
    /// Batch attempts that failed on a transient error and were retried.
    pub retries: u64,
}

impl Timings {
    pub(crate) fn new(slow_threshold: Duration, client_timeout: Option<Duration>) -> Self {
        Self { slow_threshold, client_timeout, state: Mutex::new(State::default()) }
    }

    /// The timer for one statement name.
    pub(crate) fn stmt(&self, name: &'static str) -> Timed<'_> {
        Timed { timings: self, name }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent counters behind.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record_wait(&self, name: &'static str, waited: Duration, ok: bool) {
        metrics::histogram!(DB_POOL_WAIT_SECONDS, "statement" => name).record(waited.as_secs_f64());
        let mut state = self.lock();
        let entry = state.statements.entry(name).or_insert_with(Entry::new);
        entry.wait.saturating_record(micros(waited));
        if !ok {
            entry.count += 1;
            entry.errors += 1;
        }
        drop(state);
        if !ok {
            metrics::counter!(DB_QUERIES_TOTAL, "statement" => name, "outcome" => "error").increment(1);
        }
    }

    fn record_exec(&self, name: &'static str, sql: &str, took: Duration, outcome: &'static str) {
        metrics::histogram!(DB_QUERY_DURATION_SECONDS, "statement" => name).record(took.as_secs_f64());
        metrics::counter!(DB_QUERIES_TOTAL, "statement" => name, "outcome" => outcome).increment(1);
        let slow = took > self.slow_threshold;
        let slow_query = slow.then(|| {
            let at = now_ms();
            SlowQuery {
                statement: name.to_string(),
                fingerprint: fingerprint(sql),
                duration_ms: ms(took),
                at,
                at_rfc3339: rfc3339(at),
            }
        });
        let mut state = self.lock();
        let entry = state.statements.entry(name).or_insert_with(Entry::new);
        entry.count += 1;
        if outcome != "ok" {
            entry.errors += 1;
        }
        entry.exec.saturating_record(micros(took));
        if let Some(q) = slow_query {
            metrics::counter!(DB_SLOW_QUERIES_TOTAL, "statement" => name).increment(1);
            tracing::warn!(statement = name, fingerprint = %q.fingerprint, duration_ms = q.duration_ms, "slow query");
            state.slow_total += 1;
            if state.slow.len() == SLOW_RING {
                state.slow.pop_front();
            }
            state.slow.push_back(q);
        }
    }

    /// Slow statements since start.
    pub(crate) fn slow_total(&self) -> u64 {
        self.lock().slow_total
    }

    /// Statement statistics and the slow ring; the caller adds pool and
    /// writer state.
    pub(crate) fn snapshot(&self) -> (BTreeMap<String, StatementStats>, Vec<SlowQuery>, f64) {
        let state = self.lock();
        let statements = state
            .statements
            .iter()
            .map(|(name, e)| {
                let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1000.0;
                let stats = StatementStats {
                    count: e.count,
                    errors: e.errors,
                    exec_mean_ms: e.exec.mean() / 1000.0,
                    exec_p50_ms: q(&e.exec, 0.5),
                    exec_p95_ms: q(&e.exec, 0.95),
                    exec_max_ms: e.exec.max() as f64 / 1000.0,
                    waits: e.wait.len(),
                    wait_mean_ms: e.wait.mean() / 1000.0,
                    wait_p95_ms: q(&e.wait, 0.95),
                    wait_max_ms: e.wait.max() as f64 / 1000.0,
                };
                (name.to_string(), stats)
            })
            .collect();
        (statements, state.slow.iter().cloned().collect(), ms(self.slow_threshold))
    }
}

/// One statement name's timer. `acquire` and `exec` are separate calls so
/// that a transaction can take one connection and time each statement in
/// it under its own name.
pub(crate) struct Timed<'a> {
    timings: &'a Timings,
    name: &'static str,
}

impl Timed<'_> {
    /// Awaits a pool acquisition (or `begin`), recording the wait.
    pub(crate) async fn acquire<C>(&self, fut: impl Future<Output = Result<C, sqlx::Error>>) -> Result<C, StoreError> {
        let start = Instant::now();
        let result = fut.await;
        self.timings.record_wait(self.name, start.elapsed(), result.is_ok());
        result.map_err(|e| StoreError::query(self.name, e))
    }

    /// Awaits one statement's execution, recording its time and outcome.
    /// `sql` is only read when the statement turns out slow.
    pub(crate) async fn exec<T>(
        &self,
        sql: &str,
        fut: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let result = match self.timings.client_timeout {
            Some(limit) => match tokio::time::timeout(limit, fut).await {
                Ok(r) => r.map_err(|e| StoreError::query(self.name, e)),
                Err(_) => Err(StoreError::Timeout { statement: self.name, after: limit }),
            },
            None => fut.await.map_err(|e| StoreError::query(self.name, e)),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(StoreError::Timeout { .. }) => "timeout",
            Err(_) => "error",
        };
        self.timings.record_exec(self.name, sql, start.elapsed(), outcome);
        result
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// XXH3-64 of the normalised SQL, as 16 hex digits.
pub(crate) fn fingerprint(sql: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(normalise(sql).as_bytes()))
}

/// Whitespace collapsed, `$n` placeholders made `?`, and placeholder lists
/// and repeated `VALUES` tuples collapsed to one, so a statement's shape,
/// not its batch size, decides its fingerprint.
fn normalise(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let collapsed = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = collapsed.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    loop {
        let next = out.replace("?, ?", "?").replace("(?), (?)", "(?)");
        if next == out {
            return out;
        }
        out = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_layout_and_batch_size() {
        let a = "INSERT INTO t (a, b)\n   VALUES ($1, $2), ($3, $4)";
        let b = "INSERT INTO t (a, b) VALUES (?, ?)";
        assert_eq!(normalise(a), "INSERT INTO t (a, b) VALUES (?)");
        assert_eq!(fingerprint(a), fingerprint(b));
        assert_ne!(fingerprint(a), fingerprint("SELECT 1"));
        assert_eq!(fingerprint("SELECT 1").len(), 16);
    }

    #[tokio::test]
    async fn wait_and_exec_are_recorded_apart_and_slow_ones_remembered() {
        let t = Timings::new(Duration::from_millis(5), None);
        let timed = t.stmt("probe");
        timed.acquire(async { Ok::<_, sqlx::Error>(()) }).await.expect("acquire");
        timed.exec("SELECT 1", async { Ok::<_, sqlx::Error>(()) }).await.expect("fast");
        let slow = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, sqlx::Error>(())
        };
        timed.exec("SELECT  2", slow).await.expect("slow");
        let failed = timed.exec("SELECT 3", async { Err::<(), _>(sqlx::Error::RowNotFound) }).await;
        assert!(matches!(failed, Err(StoreError::Query { statement: "probe", .. })));
        let (stats, slow, _) = t.snapshot();
        let s = &stats["probe"];
        assert_eq!((s.count, s.errors, s.waits), (3, 1, 1));
        assert!(s.exec_max_ms >= 20.0, "{s:?}");
        assert_eq!(slow.len(), 1);
        assert_eq!(slow[0].fingerprint, fingerprint("SELECT 2"));
    }

    #[tokio::test]
    async fn client_timeout_stops_waiting() {
        let t = Timings::new(Duration::from_secs(1), Some(Duration::from_millis(10)));
        let never = std::future::pending::<Result<(), sqlx::Error>>();
        let r = t.stmt("stuck").exec("SELECT 1", never).await;
        assert!(matches!(r, Err(StoreError::Timeout { statement: "stuck", .. })));
        assert!(r.is_err_and(|e| e.is_transient()));
    }
}
