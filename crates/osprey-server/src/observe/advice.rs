//! `GET /performance/recommendations`: what to change, from the alert rules'
//! state and the newest live figures. Each recommendation names the setting,
//! its value now, a suggested value, the evidence and the expected effect.
//! `osprey analyze` gives deeper advice from a load test; this is what the
//! running server can say about itself.

use osprey_perf::RuleStatus;
use serde::Serialize;

use crate::state::AppState;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recommendation {
    /// `high`, `medium` or `low`.
    pub priority: &'static str,
    pub title: String,
    /// Dotted settings name (`PUT /performance/config` takes most of them).
    pub setting: &'static str,
    pub current: serde_json::Value,
    pub suggested: serde_json::Value,
    pub expected_effect: String,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    pub signal: String,
    pub value: f64,
    pub threshold: f64,
    /// The alert rule behind it, when one is firing or pending.
    pub rule: Option<String>,
    pub state: String,
}

/// Recommendations, most urgent first.
pub fn recommend(state: &AppState) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let states = state.observe.alerts.rule_states();
    let batching = state.registry.batching();
    let l1 = state.cache.settings().l1;
    for rs in states.iter().filter(|s| s.state != RuleStatus::Ok) {
        let Some(value) = rs.value else { continue };
        let evidence = Evidence {
            signal: rs.rule.signal.clone(),
            value,
            threshold: rs.rule.raise,
            rule: Some(rs.rule.name.clone()),
            state: rs.state.as_str().to_string(),
        };
        let priority = if rs.state == RuleStatus::Firing { "high" } else { "medium" };
        let rec = match rs.rule.signal.as_str() {
            "queue_saturation_percent" | "latency_p95_ms" => {
                let tokens = batching.max_batch_tokens;
                Recommendation {
                    priority,
                    title: "Requests wait for the model: form larger batches or add replicas".into(),
                    setting: "batching.max_batch_tokens",
                    current: tokens.into(),
                    suggested: tokens.saturating_mul(2).min(65_536).into(),
                    expected_effect: "fewer, fuller forward passes: higher throughput at the same CPU; \
                                      if CPU is already saturated, add a replica instead"
                        .into(),
                    evidence,
                }
            }
            "cache_hit_rate_percent" => Recommendation {
                priority,
                title: "The result cache misses often: give it more room or longer TTLs".into(),
                setting: "cache.l1.max_bytes",
                current: l1.max_bytes.into(),
                suggested: l1.max_bytes.saturating_mul(2).into(),
                expected_effect: "repeat texts answered from memory instead of a forward pass".into(),
                evidence,
            },
            "cpu_percent" => Recommendation {
                priority,
                title: "CPU is the limit: add a replica or a GPU".into(),
                setting: "replicas",
                current: 1.into(),
                suggested: 2.into(),
                expected_effect: "throughput scales with cores; batching cannot create CPU".into(),
                evidence,
            },
            "memory_percent" => Recommendation {
                priority,
                title: "Memory is short: shrink the in-process cache or run POST /performance/memory/cleanup".into(),
                setting: "cache.l1.max_bytes",
                current: l1.max_bytes.into(),
                suggested: (l1.max_bytes / 2).into(),
                expected_effect: "lower RSS; more cache misses".into(),
                evidence,
            },
            "disk_percent" => Recommendation {
                priority,
                title: "The disk is filling: move the data directory or prune stored analyses".into(),
                setting: "server.data_dir",
                current: serde_json::Value::Null,
                suggested: serde_json::Value::Null,
                expected_effect: "writes keep succeeding".into(),
                evidence,
            },
            "error_rate_percent" => Recommendation {
                priority: "high",
                title: "Requests fail with 5xx: read the server log for the failing route".into(),
                setting: "log.level",
                current: state.log_level().into(),
                suggested: "osprey_server=debug,info".into(),
                expected_effect: "the cause of the failures in the log".into(),
                evidence,
            },
            "slow_queries_per_minute" => {
                let pool = pool_max(state);
                Recommendation {
                    priority,
                    title: "Database statements are slow: see /performance/database for which".into(),
                    setting: "store.pool.pool_size",
                    current: pool.into(),
                    suggested: pool.saturating_add(pool / 2).max(pool.saturating_add(1)).into(),
                    expected_effect: "less waiting for a connection when the database has headroom".into(),
                    evidence,
                }
            }
            "model_fallback_percent" => Recommendation {
                priority,
                title: "Emotion answers fall back to the lexicon: the model is missing, failing or overloaded".into(),
                setting: "analysis.emotion.model",
                current: state.settings.analysis.emotion.model.clone().into(),
                suggested: serde_json::Value::Null,
                expected_effect: "emotion from the classifier ensemble again".into(),
                evidence,
            },
            _ => continue,
        };
        out.push(rec);
    }
    // Figures no default rule watches.
    if let Some(snap) = state.observe.latest() {
        if let Some(db) = &snap.db {
            if let Some(wait) = db.pool_wait_p95_ms.filter(|w| *w > 10.0) {
                let pool = pool_max(state);
                out.push(Recommendation {
                    priority: "medium",
                    title: "Statements wait for a pooled connection".into(),
                    setting: "store.pool.pool_size",
                    current: pool.into(),
                    suggested: pool.saturating_mul(2).into(),
                    expected_effect: "pool wait near zero".into(),
                    evidence: Evidence {
                        signal: "db_pool_wait_p95_ms".into(),
                        value: wait,
                        threshold: 10.0,
                        rule: None,
                        state: "observed".into(),
                    },
                });
            }
        }
    }
    let rank = |p: &str| match p {
        "high" => 0,
        "medium" => 1,
        _ => 2,
    };
    out.sort_by_key(|r| rank(r.priority));
    out
}

/// The store pool's maximum size now (0 with storage off).
fn pool_max(state: &AppState) -> u32 {
    state.store.as_ref().map_or(0, |s| s.pool_and_queue().0.max)
}
