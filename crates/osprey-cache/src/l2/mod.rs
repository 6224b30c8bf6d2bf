//! L2: the shared tier in Redis, which replicas read each other's results from.
//!
//! One multiplexed [`ConnectionManager`] carries every command (it pipelines
//! concurrent commands on one socket and reconnects with exponential backoff
//! after a dropped connection). Every command runs under a deadline and
//! through the [`Breaker`]; a failure of any kind is counted and becomes a
//! miss or a skipped write, never an error for the request. The first
//! connection is made by a background task (`connect`), so start-up does not
//! wait on, or fail because of, Redis. Concurrent single-key reads are
//! coalesced into MGETs (`batch`). Writes run in spawned tasks bounded by a
//! semaphore, so a slow Redis costs a request nothing and a stalled one cannot
//! pile up unbounded work: past `max_pending_writes` a write is dropped.
//!
//! Keys are `{prefix}:v{SCHEMA_VERSION}:{kind}:{32 hex digits}`. The schema
//! version changes whenever the meaning of stored bytes does, so a rolling
//! deploy never feeds new code old values.

mod batch;
mod connect;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

use crate::breaker::{Admit, Breaker, Snapshot, Transition};
use crate::codec::Codec;
use crate::stats::{Counters, L2KindStats, L2State, L2Stats, PerKind};
use crate::{CacheError, Cacheable, Kind, L2Settings};

use batch::Lookup;

/// Bumped whenever stored bytes change meaning; part of every Redis key.
pub const SCHEMA_VERSION: u32 = 1;

/// Deadline for the administrative commands of `clear` (SCAN, UNLINK), which
/// touch up to a thousand keys each and have no request waiting on them.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Keys asked for per SCAN step.
const SCAN_COUNT: u64 = 1000;

/// Redis commands, for `errors_by_op`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Get,
    Mget,
    Set,
    Scan,
    Unlink,
}

impl Op {
    const ALL: [Op; 5] = [Op::Get, Op::Mget, Op::Set, Op::Scan, Op::Unlink];

    pub const fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Mget => "mget",
            Op::Set => "set",
            Op::Scan => "scan",
            Op::Unlink => "unlink",
        }
    }
}

/// Why a command failed, for `errors_by_op`. `overloaded`: a look-up could
/// not even be queued for coalescing.
const REASONS: [&str; 5] = ["timeout", "io", "server", "other", "overloaded"];

mod slot {
    pub const HIT: usize = 0;
    pub const MISS: usize = 1;
    pub const INSERT: usize = 2;
    pub const BYTES_WRITTEN: usize = 3;
    pub const BYTES_READ: usize = 4;
    pub const COMPRESSED: usize = 5;
    pub const ERROR: usize = 6;
    pub const TIMEOUT: usize = 7;
    pub const DECODE_ERROR: usize = 8;
    pub const SKIPPED_OPEN: usize = 9;
    pub const SKIPPED_CONNECTING: usize = 10;
    pub const DROPPED: usize = 11;
    pub const TOO_LARGE: usize = 12;
    pub const CLEARED: usize = 13;
    pub const N: usize = 14;
}

/// Why a call did not produce a value.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    NotConnected,
    Open,
    Timeout(Duration),
    Overloaded,
    Redis(RedisError),
}

impl Failure {
    fn into_error(self, op: Op) -> CacheError {
        match self {
            Failure::NotConnected => CacheError::L2Unavailable("not connected yet"),
            Failure::Open => CacheError::L2Unavailable("circuit breaker open"),
            Failure::Overloaded => CacheError::L2Unavailable("too many look-ups queued"),
            Failure::Timeout(timeout) => CacheError::Timeout { op: op.as_str(), timeout },
            Failure::Redis(source) => CacheError::Redis { op: op.as_str(), source },
        }
    }
}

pub(crate) struct L2 {
    settings: L2Settings,
    codec: Codec,
    /// `{prefix}:v{N}:{kind}:` per kind.
    key_prefixes: [String; 3],
    conn: OnceLock<ConnectionManager>,
    last_connect_error: Mutex<Option<String>>,
    breaker: Breaker,
    /// Per-kind outcomes of look-ups and writes (one count per key).
    counters: Counters<{ 3 * slot::N }>,
    /// Failed commands (one count per command, however many keys it carried).
    op_errors: [[AtomicU64; REASONS.len()]; Op::ALL.len()],
    lookups: mpsc::Sender<Lookup>,
    writes: Arc<Semaphore>,
    pending: AtomicUsize,
    idle: Notify,
    runtime: Handle,
}

impl L2 {
    /// Creates the client and starts connecting in the background. Must run
    /// inside a Tokio runtime; settings must have been validated.
    pub fn start(settings: &L2Settings, url: &str) -> Result<Arc<Self>, CacheError> {
        let client = redis::Client::open(url)
            .map_err(|e| CacheError::InvalidSettings(format!("l2.url {}: {e}", crate::settings::redact_url(url))))?;
        let runtime = Handle::try_current()
            .map_err(|_| CacheError::InvalidSettings("an L2 cache must be created inside a Tokio runtime".into()))?;
        let (lookups, queue) = mpsc::channel(batch::QUEUE);
        let l2 = Arc::new(Self {
            codec: Codec {
                compress_min_bytes: settings.compress_min_bytes,
                zstd_level: settings.zstd_level,
                max_value_bytes: settings.max_value_bytes,
            },
            key_prefixes: Kind::ALL.map(|k| format!("{}:v{SCHEMA_VERSION}:{k}:", settings.prefix)),
            conn: OnceLock::new(),
            last_connect_error: Mutex::new(None),
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_cooldown),
            counters: Counters::new(),
            op_errors: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            lookups,
            writes: Arc::new(Semaphore::new(settings.max_pending_writes)),
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            runtime: runtime.clone(),
            settings: settings.clone(),
        });
        runtime.spawn(connect::connect(Arc::downgrade(&l2), client));
        runtime.spawn(batch::run(Arc::downgrade(&l2), queue));
        Ok(l2)
    }

    /// The Redis key for an entry.
    pub fn redis_key(&self, kind: Kind, key: u128) -> String {
        let prefix = &self.key_prefixes[kind.index()];
        let mut s = String::with_capacity(prefix.len() + 32);
        s.push_str(prefix);
        let _ = write!(s, "{key:032x}");
        s
    }

    fn count(&self, kind: Kind, slot: usize, n: u64) {
        self.counters.add(kind.index() * slot::N + slot, n);
    }

    /// Counts `n` look-ups or writes of `kind` that `failure` stopped.
    fn count_failure(&self, kind: Kind, failure: &Failure, n: u64) {
        let slot = match failure {
            Failure::NotConnected => slot::SKIPPED_CONNECTING,
            Failure::Open => slot::SKIPPED_OPEN,
            Failure::Timeout(_) => slot::TIMEOUT,
            Failure::Overloaded | Failure::Redis(_) => slot::ERROR,
        };
        self.count(kind, slot, n);
    }

    fn count_op_error(&self, op: Op, reason: &str) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            self.op_errors[op as usize][i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs one command under the breaker and a deadline; failures feed the
    /// breaker and `errors_by_op` (per-kind counting is the caller's).
    async fn call<R: FromRedisValue>(&self, op: Op, timeout: Duration, cmd: &Cmd) -> Result<R, Failure> {
        let Some(conn) = self.conn.get() else { return Err(Failure::NotConnected) };
        let admit = self.breaker.admit(Instant::now());
        if admit == Admit::Skip {
            return Err(Failure::Open);
        }
        let mut probe = ProbeGuard { breaker: &self.breaker, admit, settled: false };
        let mut conn = conn.clone();
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(timeout, cmd.query_async::<R>(&mut conn)).await;
        probe.settled = true;
        metrics::histogram!(crate::metrics::L2_COMMAND_SECONDS, "op" => op.as_str(), "outcome" => match &result {
            Ok(Ok(_)) => "ok",
            _ => "error",
        })
        .record(started.elapsed().as_secs_f64());
        let (reason, failure) = match result {
            Ok(Ok(value)) => {
                self.log_transition(self.breaker.success(admit));
                return Ok(value);
            }
            Ok(Err(e)) => (classify(&e), Failure::Redis(e)),
            Err(_) => ("timeout", Failure::Timeout(timeout)),
        };
        self.count_op_error(op, reason);
        if reason == "server" {
            // Redis answered: it is up, the command was wrong (or refused, as
            // under maxmemory). That is no reason to stop using it.
            self.log_transition(self.breaker.success(admit));
        } else {
            self.log_transition(self.breaker.failure(admit, Instant::now()));
        }
        if let Failure::Redis(e) = &failure {
            tracing::debug!(op = op.as_str(), error = %e, "L2 command failed");
        }
        Err(failure)
    }

    fn log_transition(&self, t: Transition) {
        match t {
            Transition::Opened => tracing::warn!(
                failures = self.settings.breaker_failures,
                cooldown = ?self.settings.breaker_cooldown,
                "L2 (Redis) circuit breaker opened: serving from L1 and computing until a probe succeeds"
            ),
            Transition::Closed => tracing::info!("L2 (Redis) reachable again: circuit breaker closed"),
            Transition::None => {}
        }
    }

    /// Counts and decodes one look-up's answer.
    fn answer<T: Cacheable>(&self, kind: Kind, answer: Option<Vec<u8>>) -> Option<T> {
        let Some(bytes) = answer else {
            self.count(kind, slot::MISS, 1);
            return None;
        };
        match self.codec.decode::<T>(&bytes) {
            Ok(value) => {
                self.count(kind, slot::HIT, 1);
                self.count(kind, slot::BYTES_READ, bytes.len() as u64);
                Some(value)
            }
            Err(e) => {
                self.count(kind, slot::DECODE_ERROR, 1);
                self.count(kind, slot::MISS, 1);
                tracing::debug!(kind = kind.as_str(), error = %e, "undecodable L2 value served as a miss");
                None
            }
        }
    }

    /// One key, coalesced with concurrent look-ups into a shared MGET.
    pub async fn get<T: Cacheable>(&self, kind: Kind, key: u128) -> Option<T> {
        match self.fetch(kind, key).await {
            Ok(answer) => self.answer(kind, answer),
            Err(failure) => {
                self.count_failure(kind, &failure, 1);
                None
            }
        }
    }

    async fn fetch(&self, kind: Kind, key: u128) -> Result<Option<Vec<u8>>, Failure> {
        if self.conn.get().is_none() {
            return Err(Failure::NotConnected);
        }
        if self.breaker.would_skip(Instant::now()) {
            return Err(Failure::Open);
        }
        let (reply, answer) = oneshot::channel();
        if self.lookups.try_send(Lookup { key: self.redis_key(kind, key), reply }).is_err() {
            self.count_op_error(Op::Get, "overloaded");
            return Err(Failure::Overloaded);
        }
        // The deadline covers the wait in the queue too.
        let timeout = self.settings.command_timeout;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Failure::Overloaded),
            Err(_) => Err(Failure::Timeout(timeout)),
        }
    }

    /// One MGET for many keys; the answer has one slot per key.
    pub async fn get_many<T: Cacheable>(&self, kind: Kind, keys: &[u128]) -> Vec<Option<T>> {
        let mut cmd = redis::cmd("MGET");
        for &key in keys {
            cmd.arg(self.redis_key(kind, key));
        }
        let failure = match self.call::<Vec<Option<Vec<u8>>>>(Op::Mget, self.settings.command_timeout, &cmd).await {
            Ok(values) if values.len() == keys.len() => {
                return values.into_iter().map(|v| self.answer(kind, v)).collect();
            }
            Ok(_) => Failure::Redis(batch::length_mismatch()),
            Err(failure) => failure,
        };
        self.count_failure(kind, &failure, keys.len() as u64);
        keys.iter().map(|_| None).collect()
    }

    /// Writes in the background; returns at once.
    pub fn spawn_write<T: Cacheable>(self: &Arc<Self>, kind: Kind, key: u128, value: Arc<T>) {
        if self.conn.get().is_none() {
            self.count(kind, slot::SKIPPED_CONNECTING, 1);
            return;
        }
        let Ok(permit) = Arc::clone(&self.writes).try_acquire_owned() else {
            self.count(kind, slot::DROPPED, 1);
            return;
        };
        self.pending.fetch_add(1, Ordering::SeqCst);
        let pending = PendingGuard(Arc::clone(self));
        self.runtime.spawn(async move {
            pending.0.write(kind, key, &*value).await;
            drop(permit);
            drop(pending);
        });
    }

    async fn write<T: Cacheable>(&self, kind: Kind, key: u128, value: &T) {
        let encoded = match self.codec.encode(value) {
            Ok(e) => e,
            Err(CacheError::TooLarge { .. }) => {
                self.count(kind, slot::TOO_LARGE, 1);
                return;
            }
            Err(e) => {
                tracing::warn!(kind = kind.as_str(), error = %e, "cannot encode a value for L2");
                return;
            }
        };
        let ttl_ms = u64::try_from(self.settings.ttl.get(kind).as_millis()).unwrap_or(u64::MAX);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.redis_key(kind, key)).arg(&encoded.bytes).arg("PX").arg(ttl_ms);
        match self.call::<()>(Op::Set, self.settings.command_timeout, &cmd).await {
            Ok(()) => {
                self.count(kind, slot::INSERT, 1);
                self.count(kind, slot::BYTES_WRITTEN, encoded.bytes.len() as u64);
                if encoded.compressed {
                    self.count(kind, slot::COMPRESSED, 1);
                }
            }
            Err(failure) => self.count_failure(kind, &failure, 1),
        }
    }

    /// Waits until every write spawned so far has finished.
    pub async fn flush_writes(&self) {
        loop {
            let mut notified = std::pin::pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Deletes every key of `kind` under this prefix and schema version with
    /// SCAN + UNLINK (non-blocking on the server, unlike KEYS and DEL).
    pub async fn clear(&self, kind: Kind) -> Result<u64, CacheError> {
        let pattern = format!("{}*", glob_escape(&self.key_prefixes[kind.index()]));
        let mut cursor = 0u64;
        let mut removed = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<Vec<u8>>) =
                self.call(Op::Scan, ADMIN_TIMEOUT, &scan).await.map_err(|f| f.into_error(Op::Scan))?;
            if !keys.is_empty() {
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(keys);
                let n: u64 =
                    self.call(Op::Unlink, ADMIN_TIMEOUT, &unlink).await.map_err(|f| f.into_error(Op::Unlink))?;
                removed += n;
                self.count(kind, slot::CLEARED, n);
            }
            cursor = next;
            if cursor == 0 {
                return Ok(removed);
            }
        }
    }

    pub fn state(&self) -> L2State {
        if self.conn.get().is_none() {
            let last_error = self.last_connect_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return L2State::Connecting { last_error };
        }
        match self.breaker.snapshot(Instant::now()) {
            Snapshot::Closed => L2State::Up,
            Snapshot::HalfOpen => L2State::HalfOpen,
            Snapshot::Open { since, retry_in } => L2State::Open {
                since_unix_ms: since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
                retry_in_ms: retry_in.as_millis() as u64,
            },
        }
    }

    pub fn stats(&self) -> L2Stats {
        let c = &self.counters;
        let kinds = PerKind::from_fn(|k| {
            let s = |slot: usize| c.sum(k.index() * slot::N + slot);
            L2KindStats {
                hits: s(slot::HIT),
                misses: s(slot::MISS),
                inserts: s(slot::INSERT),
                bytes_written: s(slot::BYTES_WRITTEN),
                bytes_read: s(slot::BYTES_READ),
                compressed_writes: s(slot::COMPRESSED),
                errors: s(slot::ERROR),
                timeouts: s(slot::TIMEOUT),
                decode_errors: s(slot::DECODE_ERROR),
                skipped_open: s(slot::SKIPPED_OPEN),
                skipped_connecting: s(slot::SKIPPED_CONNECTING),
                dropped_writes: s(slot::DROPPED),
                too_large: s(slot::TOO_LARGE),
                cleared: s(slot::CLEARED),
            }
        });
        let mut errors_by_op = BTreeMap::new();
        for op in Op::ALL {
            for (i, reason) in REASONS.iter().enumerate() {
                let n = self.op_errors[op as usize][i].load(Ordering::Relaxed);
                if n > 0 {
                    errors_by_op.entry(op.as_str()).or_insert_with(BTreeMap::new).insert(*reason, n);
                }
            }
        }
        L2Stats::new(self.state(), self.pending.load(Ordering::SeqCst) as u64, errors_by_op, kinds)
    }
}

/// Reports a probe that was dropped mid-flight (its request was cancelled),
/// so the breaker does not stay half-open with nobody left to decide.
struct ProbeGuard<'a> {
    breaker: &'a Breaker,
    admit: Admit,
    settled: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.abandon(self.admit, Instant::now());
        }
    }
}

/// Counts a background write as finished however its task ends (completed,
/// panicked, or dropped unpolled by a runtime shutting down).
struct PendingGuard(Arc<L2>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

fn classify(e: &RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        "io"
    } else if matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension) {
        "server"
    } else {
        "other"
    }
}

/// Escapes Redis glob metacharacters so a prefix matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_follow_the_documented_format() -> Result<(), CacheError> {
        let settings =
            L2Settings { url: Some("redis://127.0.0.1:1".into()), prefix: "osp".into(), ..L2Settings::default() };
        let l2 = L2::start(&settings, "redis://127.0.0.1:1")?;
        assert_eq!(l2.redis_key(Kind::Prediction, 0xabc), "osp:v1:prediction:00000000000000000000000000000abc");
        assert_eq!(
            l2.redis_key(Kind::Response, u128::MAX),
            format!("osp:v{SCHEMA_VERSION}:response:ffffffffffffffffffffffffffffffff")
        );
        assert!(matches!(l2.state(), L2State::Connecting { .. }));
        Ok(())
    }

    #[test]
    fn prefixes_are_matched_literally() {
        assert_eq!(glob_escape("a*b?[c]:v1:x:"), r"a\*b\?\[c\]:v1:x:");
        assert_eq!(glob_escape("plain:v1:metadata:"), "plain:v1:metadata:");
    }
}
