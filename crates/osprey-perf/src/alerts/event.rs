//! What the engine reports: transitions ([`AlertEvent`]), alerts firing now
//! ([`ActiveAlert`]), past and present alerts ([`AlertRecord`]) and the state
//! of every rule ([`RuleState`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::rule::{AlertRule, Severity};

/// The signals sampled at one instant, by name. A missing or non-finite
/// value means "no data this time" for that signal.
pub type Signals = std::collections::BTreeMap<String, f64>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Raised,
    Cleared,
}

/// One transition of one alert, as broadcast to subscribers and posted to
/// the webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub kind: EventKind,
    pub rule: String,
    pub signal: String,
    pub severity: Severity,
    /// The window average that caused the transition (the last known one
    /// for a clear forced by a rule change).
    pub value: f64,
    /// The level crossed: `raise` for a raise, `clear` for a clear.
    pub threshold: f64,
    pub at: DateTime<Utc>,
    /// Shared by the raise and the clear of one alert.
    pub alert_id: u64,
    /// Why an alert ended without its signal recovering (its rule was
    /// removed, disabled or changed); absent for ordinary transitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An alert firing now (or recovering, but not yet cleared).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveAlert {
    pub id: u64,
    pub rule: String,
    pub signal: String,
    pub severity: Severity,
    /// When it was raised.
    pub since: DateTime<Utc>,
    /// The latest window average.
    pub value: f64,
    /// The worst window average since it was raised (highest for `above`
    /// rules, lowest for `below`).
    pub peak: f64,
    /// The raise level.
    pub threshold: f64,
    pub description: String,
}

/// One alert's life; `ended_at` is `None` while it is active.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: u64,
    pub rule: String,
    pub signal: String,
    pub severity: Severity,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub peak: f64,
    /// The raise level.
    pub threshold: f64,
}

/// Where a rule's state machine is (see the `alerts` module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    Ok,
    Pending,
    Firing,
    Resolving,
}

impl RuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolving => "resolving",
        }
    }
}

/// A rule with its current state, for dashboards colouring gauges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    pub rule: AlertRule,
    pub state: RuleStatus,
    /// The window average at the last evaluation; `None` without data.
    pub value: Option<f64>,
}
