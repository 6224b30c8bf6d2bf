//! [`AlertEngine`]: signal windows, one state machine per rule, history, and
//! fan-out of events to subscribers and the webhook queue.
//!
//! Everything sits behind one mutex: `observe` runs once per evaluation
//! interval and touches a few dozen numbers, so there is nothing to gain from
//! finer locking. Events are sent after the lock is released.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::broadcast;

use super::event::{ActiveAlert, AlertEvent, AlertRecord, EventKind, RuleState, RuleStatus, Signals};
use super::rule::{validate_rules, AlertRule};
use super::settings::AlertSettings;
use super::signal::SignalWindow;
use super::webhook::{Webhook, WebhookStats};
use crate::AlertError;

/// Capacity of the live event stream; a subscriber that falls further behind
/// sees `RecvError::Lagged` and skips ahead.
const BROADCAST_CAPACITY: usize = 256;

/// Evaluates alert rules on windowed signal averages. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct AlertEngine {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<AlertEvent>,
    webhook: Option<Webhook>,
}

struct State {
    enabled: bool,
    history_capacity: usize,
    rules: Vec<RuleSlot>,
    signals: HashMap<String, SignalWindow>,
    /// Newest first.
    history: VecDeque<AlertRecord>,
    next_id: u64,
    /// The latest `at` given to `observe`: the engine's notion of now, used
    /// to time alerts ended by `set_rules`.
    last_at: Option<DateTime<Utc>>,
}

struct RuleSlot {
    rule: AlertRule,
    phase: Phase,
    /// Window average at the last evaluation.
    value: Option<f64>,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Ok,
    /// Beyond raise since `since`, waiting out the hold.
    Pending {
        since: DateTime<Utc>,
    },
    Firing(Live),
    /// Firing, but at or past the clear level since `since`.
    Resolving(Live, DateTime<Utc>),
}

/// The alert a firing rule holds.
#[derive(Clone, Copy, Debug)]
struct Live {
    id: u64,
    since: DateTime<Utc>,
    peak: f64,
    last: f64,
}

impl std::fmt::Debug for AlertEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertEngine").field("webhook", &self.inner.webhook.is_some()).finish_non_exhaustive()
    }
}

impl AlertEngine {
    /// Validates `settings` and builds the engine (and the webhook's HTTP
    /// client and queue, which [`AlertEngine::spawn_webhook`] starts draining).
    pub fn new(settings: AlertSettings) -> Result<Self, AlertError> {
        settings.validate()?;
        let webhook = settings.webhook.clone().map(Webhook::new).transpose()?;
        let mut state = State {
            enabled: settings.enabled,
            history_capacity: settings.history_capacity,
            rules: settings.rules.into_iter().map(|rule| RuleSlot { rule, phase: Phase::Ok, value: None }).collect(),
            signals: HashMap::new(),
            history: VecDeque::new(),
            next_id: 1,
            last_at: None,
        };
        state.retune_signals();
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        Ok(Self { inner: Arc::new(Inner { state: Mutex::new(state), events, webhook }) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Feeds the signals sampled at `at` into their windows, evaluates every
    /// enabled rule on its window average, and returns (and publishes) the
    /// alerts raised and cleared. `at` should not go backwards.
    pub fn observe(&self, at: DateTime<Utc>, signals: &Signals) -> Vec<AlertEvent> {
        let events = {
            let mut guard = self.state();
            if !guard.enabled {
                return Vec::new();
            }
            let state = &mut *guard;
            state.last_at = Some(at);
            for (name, window) in state.signals.iter_mut() {
                match signals.get(name) {
                    Some(&value) if value.is_finite() => window.push(at, value),
                    _ => window.prune(at),
                }
            }
            let mut events = Vec::new();
            for slot in &mut state.rules {
                if !slot.rule.enabled {
                    continue;
                }
                let window = TimeDelta::from_std(slot.rule.window).unwrap_or(TimeDelta::MAX);
                let avg = state.signals.get(&slot.rule.signal).and_then(|w| w.average(at, window));
                let Some(avg) = avg else {
                    slot.value = None; // no data: the state stays as it is
                    continue;
                };
                slot.value = Some(avg);
                events.extend(step(slot, avg, at, &mut state.next_id));
            }
            state.record(events)
        };
        self.publish(&events);
        events
    }

    /// Alerts firing now, oldest first.
    pub fn active(&self) -> Vec<ActiveAlert> {
        let state = self.state();
        let mut active: Vec<ActiveAlert> = state
            .rules
            .iter()
            .filter_map(|slot| {
                let live = slot.live()?;
                Some(ActiveAlert {
                    id: live.id,
                    rule: slot.rule.name.clone(),
                    signal: slot.rule.signal.clone(),
                    severity: slot.rule.severity,
                    since: live.since,
                    value: live.last,
                    peak: live.peak,
                    threshold: slot.rule.raise,
                    description: slot.rule.description.clone(),
                })
            })
            .collect();
        active.sort_by_key(|a| (a.since, a.id));
        active
    }

    /// Alert records, newest first, at most `history_capacity`; active alerts
    /// appear with `ended_at: None` and their peak so far.
    pub fn history(&self) -> Vec<AlertRecord> {
        let state = self.state();
        let peaks: HashMap<u64, f64> = state.rules.iter().filter_map(|s| s.live()).map(|l| (l.id, l.peak)).collect();
        state
            .history
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let Some(&peak) = peaks.get(&r.id) {
                    r.peak = peak;
                }
                r
            })
            .collect()
    }

    /// Every rule with its state, in configuration order.
    pub fn rule_states(&self) -> Vec<RuleState> {
        let state = self.state();
        state
            .rules
            .iter()
            .map(|slot| RuleState {
                rule: slot.rule.clone(),
                state: match slot.phase {
                    Phase::Ok => RuleStatus::Ok,
                    Phase::Pending { .. } => RuleStatus::Pending,
                    Phase::Firing(_) => RuleStatus::Firing,
                    Phase::Resolving(..) => RuleStatus::Resolving,
                },
                value: slot.value,
            })
            .collect()
    }

    /// The rules in force, in configuration order.
    pub fn rules(&self) -> Vec<AlertRule> {
        self.state().rules.iter().map(|s| s.rule.clone()).collect()
    }

    /// Replaces every rule at once after validating them all (nothing changes
    /// on error). Rules are matched by name:
    ///
    /// - a rule that keeps its name, signal and comparison keeps its state,
    ///   and new levels, hold or window apply from the next `observe`;
    /// - an alert whose rule was removed, disabled, or given another signal
    ///   or comparison ends now, with a `cleared` event carrying a `reason`.
    pub fn set_rules(&self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
        validate_rules(&rules)?;
        let events = {
            let mut state = self.state();
            let now = state.last_at.unwrap_or_else(Utc::now);
            let mut old: HashMap<String, RuleSlot> = state.rules.drain(..).map(|s| (s.rule.name.clone(), s)).collect();
            let mut events = Vec::new();
            let mut slots = Vec::with_capacity(rules.len());
            for rule in rules {
                let mut slot = match old.remove(&rule.name) {
                    Some(prev) if prev.rule.signal == rule.signal && prev.rule.comparison == rule.comparison => prev,
                    Some(mut prev) => {
                        events.extend(prev.end(now, "rule changed its signal or comparison"));
                        prev
                    }
                    None => RuleSlot { rule: rule.clone(), phase: Phase::Ok, value: None },
                };
                if !rule.enabled {
                    events.extend(slot.end(now, "rule disabled"));
                }
                slot.rule = rule;
                slots.push(slot);
            }
            for (_, mut removed) in old {
                events.extend(removed.end(now, "rule removed"));
            }
            state.rules = slots;
            state.retune_signals();
            state.record(events)
        };
        self.publish(&events);
        Ok(())
    }

    /// A live stream of events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AlertEvent> {
        self.inner.events.subscribe()
    }

    /// Starts the webhook delivery task on the current Tokio runtime. `None`
    /// without webhook settings, or when it was already started. Events
    /// raised before it starts wait in its queue.
    pub fn spawn_webhook(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.inner.webhook.as_ref()?.spawn()
    }

    /// Delivery counters (all zero without a webhook).
    pub fn webhook_stats(&self) -> WebhookStats {
        self.inner.webhook.as_ref().map(Webhook::stats).unwrap_or_default()
    }

    fn publish(&self, events: &[AlertEvent]) {
        for event in events {
            // An error only means nobody is subscribed.
            let _ = self.inner.events.send(event.clone());
            if let Some(webhook) = &self.inner.webhook {
                webhook.enqueue(event.clone());
            }
        }
    }
}

/// An event with the alert's peak at that moment (for the history).
type Transition = (AlertEvent, f64);

/// Advances one rule's state machine on a fresh window average; returns the
/// event when the alert is raised or cleared.
fn step(slot: &mut RuleSlot, avg: f64, at: DateTime<Utc>, next_id: &mut u64) -> Option<Transition> {
    let rule = &slot.rule;
    let hold = TimeDelta::from_std(rule.hold).unwrap_or(TimeDelta::MAX);
    let held = |since: DateTime<Utc>| at - since >= hold;
    let (phase, event) = match slot.phase {
        Phase::Ok | Phase::Pending { .. } if !rule.beyond_raise(avg) => (Phase::Ok, None),
        Phase::Ok if !hold.is_zero() => (Phase::Pending { since: at }, None),
        Phase::Pending { since } if !held(since) => (Phase::Pending { since }, None),
        Phase::Ok | Phase::Pending { .. } => {
            let live = Live { id: *next_id, since: at, peak: avg, last: avg };
            *next_id += 1;
            (Phase::Firing(live), Some((slot.event(EventKind::Raised, live.id, avg, at, None), avg)))
        }
        Phase::Firing(mut live) | Phase::Resolving(mut live, _) => {
            live.last = avg;
            if rule.worse(avg, live.peak) {
                live.peak = avg;
            }
            let since = match slot.phase {
                Phase::Resolving(_, since) => since,
                _ => at,
            };
            if !rule.cleared_by(avg) {
                // Between the levels or beyond raise: still firing; a
                // clearing hold in progress starts over.
                (Phase::Firing(live), None)
            } else if held(since) {
                (Phase::Ok, Some((slot.event(EventKind::Cleared, live.id, avg, at, None), live.peak)))
            } else {
                (Phase::Resolving(live, since), None)
            }
        }
    };
    slot.phase = phase;
    event
}

impl RuleSlot {
    fn live(&self) -> Option<Live> {
        match self.phase {
            Phase::Firing(live) | Phase::Resolving(live, _) => Some(live),
            Phase::Ok | Phase::Pending { .. } => None,
        }
    }

    /// Ends the rule's alert, if any, for `reason`; resets the state.
    fn end(&mut self, at: DateTime<Utc>, reason: &str) -> Option<Transition> {
        let live = self.live();
        self.phase = Phase::Ok;
        self.value = None;
        let live = live?;
        Some((self.event(EventKind::Cleared, live.id, live.last, at, Some(reason.to_string())), live.peak))
    }

    fn event(
        &self,
        kind: EventKind,
        alert_id: u64,
        value: f64,
        at: DateTime<Utc>,
        reason: Option<String>,
    ) -> AlertEvent {
        AlertEvent {
            kind,
            rule: self.rule.name.clone(),
            signal: self.rule.signal.clone(),
            severity: self.rule.severity,
            value,
            threshold: match kind {
                EventKind::Raised => self.rule.raise,
                EventKind::Cleared => self.rule.clear,
            },
            at,
            alert_id,
            reason,
        }
    }
}

impl State {
    /// Updates the history for each transition; returns the events.
    fn record(&mut self, transitions: Vec<Transition>) -> Vec<AlertEvent> {
        transitions
            .into_iter()
            .map(|(event, peak)| {
                self.record_one(&event, peak);
                event
            })
            .collect()
    }

    fn record_one(&mut self, event: &AlertEvent, peak: f64) {
        match event.kind {
            EventKind::Raised => {
                self.history.push_front(AlertRecord {
                    id: event.alert_id,
                    rule: event.rule.clone(),
                    signal: event.signal.clone(),
                    severity: event.severity,
                    started_at: event.at,
                    ended_at: None,
                    peak,
                    threshold: event.threshold,
                });
                self.history.truncate(self.history_capacity);
            }
            EventKind::Cleared => {
                if let Some(record) = self.history.iter_mut().find(|r| r.id == event.alert_id) {
                    record.ended_at = Some(event.at);
                    record.peak = peak;
                }
            }
        }
    }

    /// Keeps one sample window per signal read by an enabled rule, retaining
    /// the longest window among those rules.
    fn retune_signals(&mut self) {
        let mut retention: HashMap<&str, TimeDelta> = HashMap::new();
        for slot in self.rules.iter().filter(|s| s.rule.enabled) {
            let window = TimeDelta::from_std(slot.rule.window).unwrap_or(TimeDelta::MAX);
            let entry = retention.entry(slot.rule.signal.as_str()).or_insert(window);
            *entry = (*entry).max(window);
        }
        self.signals.retain(|name, _| retention.contains_key(name.as_str()));
        for (name, window) in retention {
            match self.signals.get_mut(name) {
                Some(signal) => signal.set_retention(window),
                None => {
                    self.signals.insert(name.to_string(), SignalWindow::new(window));
                }
            }
        }
    }
}
