//! Recommendations: what to change, derived from the bottlenecks first and
//! then from signals that scored poorly without a bottleneck to explain
//! them. Each names the setting, its current value when the inputs show it,
//! a suggested value where one can be computed, the expected effect, and the
//! ids of the bottlenecks and signals it answers (`evidence`).
//!
//! Two findings that call for the same setting give one recommendation with
//! both in its evidence. Priority follows the worst linked finding: a
//! bottleneck of severity ≥ 75 is `high`, any other bottleneck `medium`; a
//! signal alone is `medium` below a score of 25 and `low` below 50.

use serde::Serialize;
use serde_json::{json, Value};

use crate::bottleneck::{Bottleneck, Kind};
use crate::facts::Facts;
use crate::score::{Health, SignalId};

/// The load generator's "setting" (it is not the server's).
pub const LOAD_GENERATOR: &str = "load generator: more threads / another machine (--shard)";
/// Defaults the stats do not show (see the settings reference).
const DEFAULT_MAX_BATCH_TOKENS: u64 = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    High,
    Medium,
    Low,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// `R1`, `R2`, … in priority order.
    pub id: String,
    pub priority: Priority,
    pub title: String,
    /// Dotted settings name, or the load generator.
    pub setting: String,
    /// `null` when the inputs do not show it.
    pub current: Value,
    /// `null` when it cannot be computed.
    pub suggested: Value,
    pub expected_effect: String,
    /// Bottleneck and signal ids.
    pub evidence: Vec<String>,
}

struct Draft {
    priority: Priority,
    rank: f64,
    title: String,
    setting: String,
    current: Value,
    suggested: Value,
    effect: String,
    evidence: Vec<String>,
}

#[derive(Default)]
struct Drafts(Vec<Draft>);

impl Drafts {
    /// Adds `d`, or merges it into the draft for the same setting.
    fn push(&mut self, d: Draft) {
        match self.0.iter_mut().find(|x| x.setting == d.setting) {
            Some(x) => {
                x.priority = x.priority.min(d.priority);
                x.rank = x.rank.max(d.rank);
                for e in d.evidence {
                    if !x.evidence.contains(&e) {
                        x.evidence.push(e);
                    }
                }
            }
            None => self.0.push(d),
        }
    }

    fn has(&self, setting: &str) -> bool {
        self.0.iter().any(|d| d.setting == setting)
    }

    /// Links `evidence` to an existing draft for one of `settings`.
    fn link(&mut self, settings: &[&str], evidence: &str) -> bool {
        for s in settings {
            if let Some(d) = self.0.iter_mut().find(|d| d.setting == *s) {
                if !d.evidence.iter().any(|e| e == evidence) {
                    d.evidence.push(evidence.to_string());
                }
                return true;
            }
        }
        false
    }
}

fn from(b: &Bottleneck) -> (Priority, f64, Vec<String>) {
    let p = if b.severity >= 75.0 { Priority::High } else { Priority::Medium };
    (p, b.severity, vec![b.id.to_string()])
}

fn draft(
    (priority, rank, evidence): (Priority, f64, Vec<String>),
    title: &str,
    setting: &str,
    current: Value,
    suggested: Value,
    effect: &str,
) -> Draft {
    Draft {
        priority,
        rank,
        title: title.into(),
        setting: setting.into(),
        current,
        suggested,
        effect: effect.into(),
        evidence,
    }
}

fn num(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |v| json!(v.round() as u64))
}

/// Replicas needed to serve the offered rate at the achieved per-replica rate.
fn replicas(f: &Facts) -> Value {
    let need = match (&f.offered_rps, &f.throughput) {
        (Some(o), Some(t)) if t.value > 0.0 => (o.value / t.value).ceil().max(2.0),
        _ => 2.0,
    };
    json!(need as u64)
}

fn replicas_draft(f: &Facts, link: (Priority, f64, Vec<String>)) -> Draft {
    draft(
        link,
        "Add a replica (or cores): this server has no CPU left for more work",
        "replicas",
        json!(1),
        replicas(f),
        "throughput scales with replicas (assuming one served this run); batching cannot create CPU",
    )
}

/// Recommendations, most urgent first, and notes on findings with nothing to change.
pub fn recommend(f: &Facts, bottlenecks: &[Bottleneck], health: &Health) -> (Vec<Recommendation>, Vec<String>) {
    let mut d = Drafts::default();
    let cpu_bound = bottlenecks.iter().any(|b| b.kind == Kind::CpuBound);
    let threads_short = matches!((f.model_threads, f.cores), (Some(t), Some(c)) if t < c);
    for b in bottlenecks {
        let link = from(b);
        match b.kind {
            Kind::ClientSaturation => {
                let c = &f.client;
                let current = match (c.threads, c.cores) {
                    (Some(t), Some(n)) => json!(format!("{t:.0} threads on {n:.0} cores")),
                    _ => Value::Null,
                };
                let suggested = match (c.threads, c.cores) {
                    (Some(t), Some(n)) if t < n => json!(format!("--threads {n:.0}")),
                    _ => json!("--shard 1/2 and --shard 2/2 on two machines, then osprey load merge"),
                };
                d.push(draft(
                    link,
                    "Give the load generator more room before trusting the other findings",
                    LOAD_GENERATOR,
                    current,
                    suggested,
                    "the figures describe the server, not the load generator",
                ));
            }
            Kind::CpuBound => {
                d.push(replicas_draft(f, link.clone()));
                if threads_short {
                    d.push(draft(
                        link,
                        "Let the model use every core",
                        "model.threads",
                        num(f.model_threads),
                        num(f.cores),
                        "forward passes use the idle cores: more sequences per second",
                    ));
                }
            }
            Kind::QueueWait => {
                if cpu_bound {
                    d.push(replicas_draft(f, link));
                    continue;
                }
                d.push(draft(
                    link.clone(),
                    "Form larger batches: requests wait for the model while CPU is left over",
                    "batching.max_batch_tokens",
                    Value::Null,
                    json!(2 * DEFAULT_MAX_BATCH_TOKENS),
                    "fewer, fuller forward passes: more sequences per second at the same CPU, less time queued \
                     (suggested: twice the default; double the current value if it was changed)",
                ));
                if threads_short {
                    d.push(draft(
                        link.clone(),
                        "Let the model use every core",
                        "model.threads",
                        num(f.model_threads),
                        num(f.cores),
                        "forward passes use the idle cores: the queue drains faster",
                    ));
                }
                let tokenize_heavy = match (&f.tokenize_p95, &f.server_p95) {
                    (Some(t), Some(s)) => t.value > 0.25 * s.value,
                    _ => false,
                };
                if tokenize_heavy {
                    d.push(draft(
                        link,
                        "Tokenize in parallel",
                        "batching.tokenizer_workers",
                        Value::Null,
                        json!(2),
                        "tokenization stops holding batches back",
                    ));
                }
            }
            Kind::PoolWait => {
                let pool = f.pool_size;
                d.push(draft(
                    link,
                    "Enlarge the database pool",
                    "store.pool.pool_size",
                    num(pool),
                    num(pool.map(|p| (2.0 * p).max(p + 1.0))),
                    "pool wait near zero; if statements themselves are slow, a larger pool only moves the queue \
                     into the database",
                ));
            }
            Kind::CacheMisses => d.push(cache_draft(f, link)),
            Kind::MemoryGrowth => d.push(draft(
                link,
                "Bound the in-process cache, then sample longer to tell growth from a leak",
                "cache.l1.max_bytes",
                num(f.cache.max_bytes),
                num(f.cache.max_bytes.map(|b| b / 2.0)),
                "RSS levels off once the cache is full; if it still grows, it is a leak: capture GET \
                 /performance/memory twice and report it",
            )),
            Kind::ServerErrors => d.push(draft(
                link,
                "Find the failing route in the server log",
                "log.level",
                Value::Null,
                json!("osprey_server=debug,info"),
                "the cause of the failures in the log, so they can be fixed rather than retried",
            )),
            Kind::AdmissionRejections => {
                if cpu_bound {
                    d.push(replicas_draft(f, link));
                    continue;
                }
                d.push(draft(
                    link,
                    "Admit more requests at once: the concurrency limit refuses work",
                    "batching.max_concurrent_requests",
                    num(f.capacity),
                    num(f.capacity.map(|c| 2.0 * c)),
                    "fewer 429s: bursts wait in the queue instead of being refused (queue wait rises instead; \
                     if the server's CPU is saturated, add a replica instead)",
                ));
            }
        }
    }
    let notes = signals(f, health, bottlenecks, &mut d);
    let mut drafts = d.0;
    drafts.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.rank.total_cmp(&a.rank)));
    let recs = drafts
        .into_iter()
        .enumerate()
        .map(|(i, x)| Recommendation {
            id: format!("R{}", i + 1),
            priority: x.priority,
            title: x.title,
            setting: x.setting,
            current: x.current,
            suggested: x.suggested,
            expected_effect: x.effect,
            evidence: x.evidence,
        })
        .collect();
    (recs, notes)
}

fn cache_draft(f: &Facts, link: (Priority, f64, Vec<String>)) -> Draft {
    let c = &f.cache;
    let expired = c.expired_evictions.unwrap_or(0.0);
    let size = c.size_evictions.unwrap_or(0.0);
    let effect = "repeats answered from memory instead of a forward pass: the hit rate rises toward the share \
                  of repeated texts";
    if expired > size {
        return draft(
            link,
            "Keep results longer: entries expire before their repeat arrives",
            "cache.l1.ttl",
            Value::Null,
            json!("twice the current per-kind TTL (default prediction 5m → 10m)"),
            effect,
        );
    }
    let entries_bound = matches!((c.entries, c.max_entries), (Some(e), Some(m)) if m > 0.0 && e >= 0.9 * m);
    if entries_bound {
        let m = c.max_entries.unwrap_or(0.0);
        let seen = c.entries.unwrap_or(0.0) + size;
        return draft(
            link,
            "Hold more entries: the entry limit evicts results before they are reused",
            "cache.l1.max_entries",
            num(Some(m)),
            num(Some((2.0 * m).max(seen))),
            "repeats answered from memory instead of a forward pass (suggested: room for every entry held or \
             evicted in the window, at least twice the limit)",
        );
    }
    draft(
        link,
        "Give the result cache more memory: the byte limit evicts results before they are reused",
        "cache.l1.max_bytes",
        num(c.max_bytes),
        num(c.max_bytes.map(|b| 2.0 * b)),
        effect,
    )
}

/// Recommendations for poorly scoring signals no bottleneck explains, and notes.
fn signals(f: &Facts, health: &Health, bottlenecks: &[Bottleneck], d: &mut Drafts) -> Vec<String> {
    let mut notes = Vec::new();
    let has = |k: Kind| bottlenecks.iter().any(|b| b.kind == k);
    for s in health.signals.iter().filter(|s| s.score < 50.0) {
        let priority = if s.score < 25.0 { Priority::Medium } else { Priority::Low };
        let link = (priority, 50.0 - s.score / 2.0, vec![s.id.as_str().to_string()]);
        match s.id {
            SignalId::LatencyP95 | SignalId::Throughput | SignalId::QueueSaturation => {
                let capacity =
                    ["replicas", "batching.max_batch_tokens", "batching.max_concurrent_requests", "model.threads"];
                if !d.link(&capacity, s.id.as_str()) {
                    d.push(replicas_draft(f, link));
                }
            }
            SignalId::Memory => d.push(draft(
                link,
                "Memory is short: shrink the in-process cache",
                "cache.l1.max_bytes",
                num(f.cache.max_bytes),
                num(f.cache.max_bytes.map(|b| b / 2.0)),
                "lower RSS; somewhat more cache misses",
            )),
            SignalId::ModelFallback => d.push(draft(
                link,
                "Emotion answers fall back to the lexicon: configure or fix the emotion model",
                "analysis.emotion.model",
                Value::Null,
                Value::Null,
                "emotion from the classifier instead of the lexicon (see GET /performance/health for why it fell back)",
            )),
            SignalId::PoolWaitP95 if !d.link(&["store.pool.pool_size"], s.id.as_str()) => d.push(draft(
                link,
                "Enlarge the database pool",
                "store.pool.pool_size",
                num(f.pool_size),
                num(f.pool_size.map(|p| (2.0 * p).max(p + 1.0))),
                "pool wait near zero",
            )),
            SignalId::ErrorRate => {
                if !has(Kind::ServerErrors) && !has(Kind::AdmissionRejections) && !d.has("log.level") {
                    d.push(draft(
                        link,
                        "Find out why requests fail: read the report's error samples and the server log",
                        "log.level",
                        Value::Null,
                        json!("osprey_server=debug,info"),
                        "the cause of the failures",
                    ));
                } else {
                    d.link(&["log.level", "batching.max_concurrent_requests", "replicas"], s.id.as_str());
                }
            }
            SignalId::Cpu if !has(Kind::CpuBound) => {
                let own =
                    f.process_cpu.as_ref().map_or(String::new(), |p| format!(" (the server process: {:.0}%)", p.value));
                notes.push(format!(
                    "Host CPU at {:.0}%{own} without the server being CPU-bound: other processes compete for the CPU, \
                     or the server is busy without falling behind. Nothing to change in osprey.",
                    s.value
                ));
            }
            SignalId::CacheHitRate if !has(Kind::CacheMisses) => notes.push(format!(
                "Cache hit rate {:.1}% with no evictions: the traffic does not repeat (or the cache is still warming); \
                 a larger cache would not help.",
                s.value
            )),
            SignalId::DbQueryP95 => notes.push(format!(
                "Database statements are slow (p95 {:.1} ms): GET /performance/database names the slow ones.",
                s.value
            )),
            _ => {}
        }
    }
    notes
}
