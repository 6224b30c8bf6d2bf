//! The crate's one error type.
//!
//! Recording and window queries cannot fail; what can is configuring the
//! alert engine: a rule or a setting out of range, or an HTTP client for the
//! webhook that cannot be built.

/// Errors from validating alert settings and rules, or building the engine.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A rule is malformed; `reason` says which field and why.
    #[error("invalid alert rule {rule:?}: {reason}")]
    InvalidRule { rule: String, reason: String },

    /// Two rules share a name (names identify rules across `set_rules`).
    #[error("duplicate alert rule name {0:?}")]
    DuplicateRule(String),

    /// A setting outside the rules is out of range; the message names it.
    #[error("invalid alert settings: {0}")]
    InvalidSettings(String),

    /// The webhook's HTTP client could not be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    WebhookClient(#[source] reqwest::Error),
}
