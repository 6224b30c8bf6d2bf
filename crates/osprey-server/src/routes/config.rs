//! `GET` and `PUT /performance/config`: the effective settings, and the
//! subset that can change without a restart — batch limits, L1 cache sizes
//! and TTLs, alert rules, log level and rate limits. Admin only.
//!
//! A `PUT` names only what it changes; unknown keys are refused. Every part
//! is validated before anything is applied, the change is written to the
//! audit log (and fsynced) before it takes effect, and a change that cannot
//! be audited is not made.

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use osprey_types::error::{ErrorBody, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::observe::audit::AuditRecord;
use crate::security::{Caller, RateLimitSettings};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/performance/config", get(get_config).put(put_config))
}

/// The settings that change at run time, each part optional in a `PUT`.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tunables {
    #[schema(value_type = Object)]
    pub batching: Option<BatchTunables>,
    /// `[cache.l1]`: `enabled`, `max_bytes`, `max_entries`, `ttl` per kind, `tti`.
    #[schema(value_type = Object)]
    pub cache_l1: Option<osprey_cache::L1Settings>,
    /// The complete new rule list (`[[alerts.rules]]`).
    #[schema(value_type = Object)]
    pub alert_rules: Option<Vec<osprey_perf::AlertRule>>,
    /// An `EnvFilter` directive, e.g. `info` or `osprey_engine=debug,info`.
    pub log_level: Option<String>,
    #[schema(value_type = Object)]
    pub rate_limit: Option<RateLimitSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchTunables {
    pub max_batch_tokens: usize,
    pub max_batch_requests: usize,
}

/// What is in force now.
fn current(state: &AppState) -> Tunables {
    let b = state.registry.batching();
    Tunables {
        batching: Some(BatchTunables {
            max_batch_tokens: b.max_batch_tokens,
            max_batch_requests: b.max_batch_requests,
        }),
        cache_l1: Some(state.cache.settings().l1),
        alert_rules: Some(state.observe.alerts.rules()),
        log_level: Some(state.log_level()),
        rate_limit: Some(state.security.limiter.settings()),
    }
}

/// Effective settings (secrets shown as `***`), the tunable subset as in
/// force now, and the newest audit records.
#[utoipa::path(get, path = "/performance/config", tag = "Performance",
    responses(
        (status = 200, description = "settings, tunables, audit", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub async fn get_config(State(state): State<AppState>) -> Json<Value> {
    let mut settings = (*state.settings).clone();
    settings.store.url = settings.store.url.as_deref().map(osprey_types::redact::redact_url);
    settings.cache.l2.url = settings.cache.l2.url.as_deref().map(osprey_types::redact::redact_url);
    if let Some(w) = settings.alerts.webhook.as_mut() {
        w.url = osprey_types::redact::redact_url(&w.url);
    }
    Json(json!({
        "settings": settings,
        "tunable": current(&state),
        "audit_log": state.observe.audit.path(),
        "audit": state.observe.audit.recent(),
    }))
}

/// Changes the tunable subset. Answers with what changed (from → to).
#[utoipa::path(put, path = "/performance/config", tag = "Performance", request_body = Tunables,
    responses(
        (status = 200, description = "the changes applied and the tunables now in force", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn put_config(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<Tunables>,
) -> ApiResult<Json<Value>> {
    // No await below: the lock is held across plain calls only.
    let _one_at_a_time = state.observe.config_changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = current(&state);
    validate(&state, &req)?;
    let mut changes = Map::new();
    let mut note = |name: &str, from: Value, to: Value| {
        if from != to {
            changes.insert(name.to_string(), json!({ "from": from, "to": to }));
        }
    };
    if let Some(b) = &req.batching {
        note("batching", ser(&before.batching), ser(b));
    }
    if let Some(l1) = &req.cache_l1 {
        note("cache.l1", ser(&before.cache_l1), ser(l1));
    }
    if let Some(rules) = &req.alert_rules {
        note("alerts.rules", ser(&before.alert_rules), ser(rules));
    }
    if let Some(level) = &req.log_level {
        note("log.level", ser(&before.log_level), ser(level));
    }
    if let Some(r) = &req.rate_limit {
        note("security.rate_limit", ser(&before.rate_limit), ser(r));
    }
    if changes.is_empty() {
        return Ok(Json(json!({ "changes": {}, "tunable": before })));
    }
    let actor = caller.and_then(|Extension(c)| c.key_id.map(|k| k.to_string())).unwrap_or_else(|| "anonymous".into());
    let record = AuditRecord { at: chrono::Utc::now(), actor: actor.clone(), changes: changes.clone() };
    state.observe.audit.append(record).map_err(|e| {
        tracing::error!(error = %e, path = %state.observe.audit.path().display(), "audit log not writable");
        ApiError::new(ErrorCode::NotReady, "the change was not made: the audit log cannot be written")
    })?;
    apply(&state, req)?;
    let names: Vec<&String> = changes.keys().collect();
    tracing::info!(actor, changed = ?names, "runtime configuration changed");
    state.observe.log(
        "info",
        format!("configuration changed by {actor}: {}", changes.keys().cloned().collect::<Vec<_>>().join(", ")),
    );
    Ok(Json(json!({ "changes": changes, "tunable": current(&state) })))
}

/// Every part is checked before any is applied.
fn validate(state: &AppState, req: &Tunables) -> ApiResult<()> {
    if let Some(b) = &req.batching {
        let mut batching = state.registry.batching();
        batching.max_batch_tokens = b.max_batch_tokens;
        batching.max_batch_requests = b.max_batch_requests;
        batching.validate().map_err(|e| ApiError::validation(format!("batching: {e}")))?;
    }
    if let Some(l1) = &req.cache_l1 {
        l1.validate().map_err(|e| ApiError::validation(format!("cache_l1: {e}")))?;
    }
    if let Some(rules) = &req.alert_rules {
        let settings = osprey_perf::AlertSettings { rules: rules.clone(), ..state.settings.alerts.clone() };
        settings.validate().map_err(|e| ApiError::validation(format!("alert_rules: {e}")))?;
    }
    if let Some(level) = &req.log_level {
        if state.log_control.is_none() {
            return Err(ApiError::validation("log_level cannot change here: this server did not install the log"));
        }
        tracing_subscriber::EnvFilter::try_new(level)
            .map_err(|e| ApiError::validation(format!("log_level {level:?}: {e}")))?;
    }
    if let Some(r) = &req.rate_limit {
        r.validate().map_err(ApiError::validation)?;
    }
    Ok(())
}

fn apply(state: &AppState, req: Tunables) -> ApiResult<()> {
    if let Some(b) = req.batching {
        state.registry.set_batch_limits(osprey_engine::BatchLimits {
            max_batch_tokens: b.max_batch_tokens,
            max_batch_requests: b.max_batch_requests,
        });
    }
    if let Some(l1) = req.cache_l1 {
        state.cache.reconfigure_l1(l1).map_err(|e| ApiError::validation(format!("cache_l1: {e}")))?;
    }
    if let Some(rules) = req.alert_rules {
        let gone: Vec<osprey_perf::AlertRule> =
            state.observe.alerts.rules().into_iter().filter(|old| !rules.iter().any(|r| r.name == old.name)).collect();
        state.observe.alerts.set_rules(rules).map_err(|e| ApiError::validation(format!("alert_rules: {e}")))?;
        // A removed rule no longer fires: say so to Prometheus too.
        for rule in gone {
            let severity = format!("{:?}", rule.severity).to_lowercase();
            metrics::gauge!(osprey_types::metrics::ALERTS_FIRING, "rule" => rule.name, "severity" => severity).set(0.0);
        }
    }
    if let Some(level) = req.log_level {
        state.set_log_level(&level).map_err(|e| ApiError::validation(format!("log_level: {e}")))?;
    }
    if let Some(r) = req.rate_limit {
        state.security.limiter.set_settings(r);
    }
    Ok(())
}

fn ser<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
