//! Observability: the resource monitor, the performance monitor, the alert
//! engine and the live stream, tied together by one task that runs every
//! `telemetry.live_interval`:
//!
//! 1. roll the performance monitor's windows;
//! 2. sample every source into a [`LiveSnapshot`];
//! 3. feed the snapshot's signals to the alert engine and announce its
//!    transitions (log, event stream, webhook);
//! 4. colour the snapshot by rule state, keep it in a bounded history and
//!    send it to every `/performance/live` subscriber.

pub mod advice;
pub mod audit;
pub mod memory;
pub mod snapshot;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use osprey_monitor::ResourceMonitor;
use osprey_perf::{AlertEngine, AlertEvent, PerfMonitor, RuleStatus};
use serde::Serialize;
use tokio::sync::broadcast;

pub use snapshot::LiveSnapshot;

use crate::state::AppState;

/// A line of the dashboard's event log.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub ts_ms: i64,
    pub level: &'static str,
    pub message: String,
}

/// What `/performance/live` streams.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    Snapshot(Arc<LiveSnapshot>),
    Alert(AlertEvent),
    Log(LogLine),
}

/// Log lines kept for `/performance/stats` and new dashboards.
const LOG_KEEP: usize = 200;

pub struct Observability {
    pub monitor: ResourceMonitor,
    pub perf: PerfMonitor,
    pub alerts: AlertEngine,
    pub audit: audit::AuditLog,
    /// Held by `PUT /performance/config` from reading the settings in force
    /// to applying the change, so concurrent changes apply one after the
    /// other, each audited against what the previous one left.
    pub config_changes: Mutex<()>,
    events: broadcast::Sender<LiveEvent>,
    history: Mutex<VecDeque<Arc<LiveSnapshot>>>,
    logs: Mutex<VecDeque<LogLine>>,
    history_len: usize,
    started: std::time::Instant,
}

impl Observability {
    pub fn new(settings: &crate::Settings) -> Result<Self, String> {
        let alerts = AlertEngine::new(settings.alerts.clone()).map_err(|e| e.to_string())?;
        let audit_path =
            settings.telemetry.audit_log.clone().unwrap_or_else(|| settings.server.data_dir.join("audit.log"));
        Ok(Self {
            monitor: ResourceMonitor::new(settings.monitor.clone()),
            perf: crate::telemetry::perf(),
            alerts,
            audit: audit::AuditLog::new(audit_path),
            config_changes: Mutex::new(()),
            events: broadcast::channel(1024).0,
            history: Mutex::new(VecDeque::new()),
            logs: Mutex::new(VecDeque::new()),
            history_len: settings.telemetry.live_history,
            started: std::time::Instant::now(),
        })
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// A live subscription, and the history a new subscriber starts from.
    pub fn subscribe(&self) -> (broadcast::Receiver<LiveEvent>, Vec<Arc<LiveSnapshot>>, Vec<LogLine>) {
        let rx = self.events.subscribe();
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
        let logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
        (rx, history, logs)
    }

    pub fn latest(&self) -> Option<Arc<LiveSnapshot>> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner).back().cloned()
    }

    /// Recent log lines, oldest first.
    pub fn recent_logs(&self) -> Vec<LogLine> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }

    /// Adds a line to the dashboard's event log (the tracing log has its own).
    pub fn log(&self, level: &'static str, message: impl Into<String>) {
        let line = LogLine { ts_ms: chrono::Utc::now().timestamp_millis(), level, message: message.into() };
        {
            let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
            if logs.len() == LOG_KEEP {
                logs.pop_front();
            }
            logs.push_back(line.clone());
        }
        let _ = self.events.send(LiveEvent::Log(line));
    }

    fn publish(&self, snapshot: LiveSnapshot) {
        let snapshot = Arc::new(snapshot);
        {
            let mut h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            while h.len() >= self.history_len.max(1) {
                h.pop_front();
            }
            h.push_back(Arc::clone(&snapshot));
        }
        let _ = self.events.send(LiveEvent::Snapshot(snapshot));
    }
}

/// Which dashboard gauge a signal colours.
fn gauge_of(signal: &str) -> Option<&'static str> {
    Some(match signal {
        "cpu_percent" => "cpu",
        "memory_percent" => "memory",
        "disk_percent" => "disk",
        "latency_p95_ms" => "latency",
        "error_rate_percent" => "error_rate",
        "cache_hit_rate_percent" => "cache",
        "queue_saturation_percent" => "queue",
        "slow_queries_per_minute" => "db",
        "model_fallback_percent" => "model",
        _ => return None,
    })
}

/// How bad a rule state is, to colour a gauge several rules share.
fn severity_rank(state: &str) -> u8 {
    match state {
        "firing" => 3,
        "pending" => 2,
        "resolving" => 1,
        _ => 0,
    }
}

/// One round: sample, evaluate, publish. Returns the snapshot.
pub fn tick(state: &AppState, sampler: &mut snapshot::Sampler) -> Arc<LiveSnapshot> {
    let obs = &state.observe;
    obs.perf.tick();
    let (mut snap, extra) = sampler.sample(state);
    let signals = snap.signals(&extra);
    for event in obs.alerts.observe(chrono::Utc::now(), &signals) {
        let (level, verb) = match event.kind {
            osprey_perf::EventKind::Raised => ("warn", "raised"),
            osprey_perf::EventKind::Cleared => ("info", "cleared"),
        };
        tracing::warn!(rule = %event.rule, value = event.value, threshold = event.threshold, "alert {verb}");
        obs.log(
            level,
            format!(
                "alert {} {verb}: {} = {:.2} (threshold {})",
                event.rule, event.signal, event.value, event.threshold
            ),
        );
        let _ = obs.events.send(LiveEvent::Alert(event));
    }
    for rs in obs.alerts.rule_states() {
        if let Some(g) = gauge_of(&rs.rule.signal) {
            let entry = snap.gauges.entry(g.to_string()).or_insert_with(|| "ok".to_string());
            if severity_rank(rs.state.as_str()) > severity_rank(entry) {
                *entry = rs.state.as_str().to_string();
            }
        }
    }
    snap.alerts = obs.alerts.active();
    export(&snap, &signals, &obs.alerts);
    obs.publish(snap);
    obs.latest().unwrap_or_else(|| Arc::new(sampler.sample(state).0))
}

/// Copies figures Prometheus has no other way to see into gauges.
fn export(snap: &LiveSnapshot, signals: &osprey_perf::Signals, alerts: &AlertEngine) {
    use osprey_types::metrics as m;
    if let (Some(n), Some(cap)) = (snap.queue.in_flight, snap.queue.capacity) {
        metrics::gauge!(m::QUEUE_ADMITTED_REQUESTS).set(n as f64);
        metrics::gauge!(m::QUEUE_ADMISSION_LIMIT).set(cap as f64);
    }
    if let Some(db) = &snap.db {
        metrics::gauge!(m::DB_POOL_CONNECTIONS).set(f64::from(db.pool_size));
        metrics::gauge!(m::DB_POOL_IDLE_CONNECTIONS).set(db.pool_idle as f64);
    }
    for (name, value) in signals {
        metrics::gauge!(m::ALERT_SIGNAL, "signal" => name.clone()).set(*value);
    }
    for rs in alerts.rule_states() {
        let firing = if matches!(rs.state, RuleStatus::Firing | RuleStatus::Resolving) { 1.0 } else { 0.0 };
        let severity = format!("{:?}", rs.rule.severity).to_lowercase();
        metrics::gauge!(m::ALERTS_FIRING, "rule" => rs.rule.name.clone(), "severity" => severity).set(firing);
    }
}

/// Starts the resource monitor, the alert webhook and the sampling loop;
/// they stop when the runtime does.
pub fn spawn(state: AppState) {
    let obs = &state.observe;
    if obs.monitor.settings().enabled {
        obs.monitor.spawn();
    }
    obs.alerts.spawn_webhook();
    let interval = state.settings.telemetry.live_interval;
    tokio::spawn(async move {
        let mut sampler = snapshot::Sampler::default();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticker.tick().await;
            tick(&state, &mut sampler);
        }
    });
}
