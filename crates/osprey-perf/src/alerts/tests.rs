//! Engine tests. Time is driven through `observe`'s `at` argument; nothing
//! sleeps.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::AlertError;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(1_700_000_000 + secs)
}

fn signals(pairs: &[(&str, f64)]) -> Signals {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

fn rule(name: &str, signal: &str, comparison: Comparison, raise: f64, clear: f64, hold: u64, window: u64) -> AlertRule {
    AlertRule {
        name: name.into(),
        signal: signal.into(),
        description: format!("{name} test rule"),
        comparison,
        raise,
        clear,
        hold: Duration::from_secs(hold),
        window: Duration::from_secs(window),
        severity: Severity::Warning,
        enabled: true,
    }
}

fn engine(rules: Vec<AlertRule>) -> AlertEngine {
    AlertEngine::new(AlertSettings { rules, ..AlertSettings::default() }).expect("valid settings")
}

/// CPU above 80 (clear 70), hold 10 s, window 1 s (so the average is the sample).
fn cpu_engine() -> AlertEngine {
    engine(vec![rule("cpu_high", "cpu", Comparison::Above, 80.0, 70.0, 10, 1)])
}

fn state_of(engine: &AlertEngine, name: &str) -> RuleStatus {
    engine.rule_states().into_iter().find(|r| r.rule.name == name).map(|r| r.state).expect("rule exists")
}

/// Feeds `value` once a second over `[from, to)`; returns every event.
fn feed(engine: &AlertEngine, signal: &str, value: f64, from: i64, to: i64) -> Vec<AlertEvent> {
    (from..to).flat_map(|s| engine.observe(t(s), &signals(&[(signal, value)]))).collect()
}

#[test]
fn hold_delays_raising() {
    let engine = cpu_engine();
    assert!(feed(&engine, "cpu", 50.0, 0, 5).is_empty());
    assert!(feed(&engine, "cpu", 95.0, 5, 15).is_empty(), "beyond raise for 9 s: still pending");
    assert_eq!(state_of(&engine, "cpu_high"), RuleStatus::Pending);
    let events = feed(&engine, "cpu", 95.0, 15, 16);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.kind, e.rule.as_str(), e.signal.as_str()), (EventKind::Raised, "cpu_high", "cpu"));
    assert_eq!((e.value, e.threshold, e.at, e.reason.clone()), (95.0, 80.0, t(15), None));
    assert_eq!(state_of(&engine, "cpu_high"), RuleStatus::Firing);
    let active = engine.active();
    assert_eq!(active.len(), 1);
    assert_eq!((active[0].id, active[0].since, active[0].threshold), (e.alert_id, t(15), 80.0));
    assert_eq!(active[0].description, "cpu_high test rule");
}

#[test]
fn a_dip_below_raise_before_the_hold_resets_pending() {
    let engine = cpu_engine();
    assert!(feed(&engine, "cpu", 95.0, 0, 8).is_empty());
    assert!(feed(&engine, "cpu", 75.0, 8, 9).is_empty(), "between the levels: back to ok from pending");
    assert_eq!(state_of(&engine, "cpu_high"), RuleStatus::Ok);
    assert!(feed(&engine, "cpu", 95.0, 9, 19).is_empty(), "the hold starts over at 9");
    assert_eq!(feed(&engine, "cpu", 95.0, 19, 20).len(), 1, "raised at 19 = 9 + hold");
}

#[test]
fn hysteresis_keeps_firing_between_the_levels_and_does_not_flap() {
    let engine = cpu_engine();
    assert_eq!(feed(&engine, "cpu", 95.0, 0, 11).len(), 1);
    // Oscillating around the raise level for ten minutes: no further event.
    let mut events = Vec::new();
    for s in 11..611 {
        let v = if s % 2 == 0 { 82.0 } else { 78.0 };
        events.extend(engine.observe(t(s), &signals(&[("cpu", v)])));
    }
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(state_of(&engine, "cpu_high"), RuleStatus::Firing);
    // Dipping to the clear level for less than the hold, then back between: still firing.
    assert!(feed(&engine, "cpu", 70.0, 611, 616).is_empty());
    assert_eq!(state_of(&engine, "cpu_high"), RuleStatus::Resolving);
    assert!(feed(&engine, "cpu", 75.0, 616, 617).is_empty());
    assert_eq!(state_of(&engine, "cpu_high"), RuleStatus::Firing);
    assert_eq!(engine.active().len(), 1);
}

#[test]
fn clears_after_the_hold_and_records_history() {
    let engine = cpu_engine();
    let raised = feed(&engine, "cpu", 95.0, 0, 11);
    assert!(feed(&engine, "cpu", 99.0, 11, 12).is_empty());
    assert!(feed(&engine, "cpu", 60.0, 12, 22).is_empty(), "cleared for 9 s: resolving");
    let history = engine.history();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].ended_at, history[0].peak), (None, 99.0), "active, with its peak so far");
    let cleared = feed(&engine, "cpu", 60.0, 22, 23);
    assert_eq!(cleared.len(), 1);
    let c = &cleared[0];
    assert_eq!((c.kind, c.value, c.threshold, c.at), (EventKind::Cleared, 60.0, 70.0, t(22)));
    assert_eq!(c.alert_id, raised[0].alert_id);
    assert!(engine.active().is_empty());
    assert_eq!(state_of(&engine, "cpu_high"), RuleStatus::Ok);
    // A second alert: history is newest first with start and end.
    let second = feed(&engine, "cpu", 90.0, 23, 34);
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].alert_id, c.alert_id);
    let history = engine.history();
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].id, history[0].ended_at), (second[0].alert_id, None));
    assert_eq!(history[1].id, c.alert_id);
    assert_eq!((history[1].started_at, history[1].ended_at, history[1].peak), (t(10), Some(t(22)), 99.0));
    assert_eq!(history[1].threshold, 80.0);
}

#[test]
fn zero_hold_acts_on_the_first_evaluation() {
    let engine = engine(vec![rule("q", "queue", Comparison::Above, 90.0, 70.0, 0, 1)]);
    assert_eq!(feed(&engine, "queue", 95.0, 0, 1).len(), 1);
    assert!(feed(&engine, "queue", 80.0, 1, 2).is_empty());
    let cleared = feed(&engine, "queue", 70.0, 2, 3);
    assert_eq!(cleared.first().map(|e| e.kind), Some(EventKind::Cleared));
}

#[test]
fn evaluates_the_average_over_the_window() {
    let engine = engine(vec![rule("lat", "p95", Comparison::Above, 500.0, 400.0, 0, 60)]);
    // One spike in a minute of low values does not raise...
    assert!(feed(&engine, "p95", 100.0, 0, 59).is_empty());
    assert!(feed(&engine, "p95", 5_000.0, 59, 60).is_empty(), "avg (59*100 + 5000)/60 < 500");
    // ...a sustained rise does, once the average passes 500.
    let events = feed(&engine, "p95", 1_000.0, 60, 120);
    assert_eq!(events.len(), 1);
    assert!(events[0].value > 500.0 && events[0].value < 1_000.0, "{}", events[0].value);
}

#[test]
fn below_rules_raise_under_the_level_and_clear_above_the_clear_level() {
    let engine = engine(vec![rule("hits", "hit_rate", Comparison::Below, 70.0, 75.0, 5, 1)]);
    assert!(feed(&engine, "hit_rate", 90.0, 0, 5).is_empty());
    assert!(feed(&engine, "hit_rate", 60.0, 5, 10).is_empty());
    let raised = feed(&engine, "hit_rate", 50.0, 10, 11);
    assert_eq!(raised.len(), 1);
    assert_eq!((raised[0].value, raised[0].threshold), (50.0, 70.0));
    assert!(feed(&engine, "hit_rate", 72.0, 11, 30).is_empty(), "between 70 and 75 keeps firing");
    assert!(feed(&engine, "hit_rate", 80.0, 30, 35).is_empty());
    let cleared = feed(&engine, "hit_rate", 80.0, 35, 36);
    assert_eq!((cleared.len(), cleared[0].threshold), (1, 75.0));
    assert_eq!(engine.history()[0].peak, 50.0, "the peak of a below rule is its minimum");
}

#[test]
fn a_missing_signal_keeps_the_state() {
    let engine = cpu_engine();
    assert_eq!(feed(&engine, "cpu", 95.0, 0, 11).len(), 1);
    // No samples (missing, NaN, or other signals only) for ten minutes.
    for s in 11..611 {
        let sample = match s % 3 {
            0 => signals(&[]),
            1 => signals(&[("cpu", f64::NAN)]),
            _ => signals(&[("memory", 10.0)]),
        };
        assert!(engine.observe(t(s), &sample).is_empty());
    }
    assert_eq!(state_of(&engine, "cpu_high"), RuleStatus::Firing);
    assert_eq!(engine.rule_states()[0].value, None, "no data in the window now");
    assert_eq!(engine.active()[0].value, 95.0, "the active alert keeps the last known value");
    // A pending rule is not promoted by time passing without data either.
    let pending = cpu_engine();
    assert!(feed(&pending, "cpu", 95.0, 0, 3).is_empty());
    assert!(pending.observe(t(30), &signals(&[])).is_empty());
    assert_eq!(state_of(&pending, "cpu_high"), RuleStatus::Pending);
}

#[test]
fn set_rules_validates_and_applies() -> Result<(), AlertError> {
    let engine = engine(vec![
        rule("cpu_high", "cpu", Comparison::Above, 80.0, 70.0, 0, 1),
        rule("mem_high", "mem", Comparison::Above, 80.0, 70.0, 0, 1),
        rule("disk_full", "disk", Comparison::Above, 90.0, 85.0, 0, 1),
    ]);
    let mut rx = engine.subscribe();
    let all = signals(&[("cpu", 95.0), ("mem", 95.0), ("disk", 95.0)]);
    assert_eq!(engine.observe(t(0), &all).len(), 3);
    let ids: Vec<u64> = engine.active().iter().map(|a| a.id).collect();

    // Invalid replacements change nothing.
    let mut bad = engine.rules();
    bad[0].clear = 99.0;
    assert!(matches!(engine.set_rules(bad), Err(AlertError::InvalidRule { rule, .. }) if rule == "cpu_high"));
    let dup = vec![engine.rules()[0].clone(), engine.rules()[0].clone()];
    assert!(matches!(engine.set_rules(dup), Err(AlertError::DuplicateRule(_))));
    assert_eq!(engine.rules().len(), 3);
    assert_eq!(engine.active().len(), 3);

    // cpu: new levels (state kept), mem: removed, disk: disabled, net: added.
    let mut cpu = engine.rules()[0].clone();
    cpu.raise = 98.0;
    cpu.clear = 96.0;
    let mut disk = engine.rules()[2].clone();
    disk.enabled = false;
    let net = rule("net_errors", "net", Comparison::Above, 1.0, 0.0, 0, 1);
    engine.set_rules(vec![cpu, disk, net])?;
    let names: Vec<String> = engine.rules().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["cpu_high", "disk_full", "net_errors"]);
    let active = engine.active();
    assert_eq!(active.len(), 1);
    assert_eq!((active[0].rule.as_str(), active[0].id), ("cpu_high", ids[0]), "unchanged name keeps its alert");

    let mut ended = Vec::new();
    while let Ok(event) = rx.try_recv() {
        ended.push(event);
    }
    let ended: Vec<(&str, EventKind, Option<&str>)> =
        ended[3..].iter().map(|e| (e.rule.as_str(), e.kind, e.reason.as_deref())).collect();
    assert!(ended.contains(&("mem_high", EventKind::Cleared, Some("rule removed"))), "{ended:?}");
    assert!(ended.contains(&("disk_full", EventKind::Cleared, Some("rule disabled"))), "{ended:?}");
    assert_eq!(ended.len(), 2);
    assert!(engine.history().iter().filter(|r| r.ended_at.is_some()).count() == 2);

    // The new cpu levels apply at the next observe: 95 is now at or below clear (96).
    let events = engine.observe(t(1), &signals(&[("cpu", 95.0), ("disk", 99.0), ("net", 5.0)]));
    let kinds: Vec<(&str, EventKind)> = events.iter().map(|e| (e.rule.as_str(), e.kind)).collect();
    assert_eq!(kinds, [("cpu_high", EventKind::Cleared), ("net_errors", EventKind::Raised)]);
    assert_eq!(state_of(&engine, "disk_full"), RuleStatus::Ok, "disabled rules are not evaluated");
    Ok(())
}

#[tokio::test]
async fn subscribers_receive_events() -> Result<(), Box<dyn std::error::Error>> {
    let engine = cpu_engine();
    let mut rx = engine.subscribe();
    let raised = feed(&engine, "cpu", 95.0, 0, 11);
    let cleared = feed(&engine, "cpu", 10.0, 11, 22);
    let first = rx.recv().await?;
    let second = rx.recv().await?;
    assert_eq!(first, raised[0]);
    assert_eq!(second, cleared[0]);
    let json = serde_json::to_value(&first)?;
    assert_eq!(json["kind"], "raised");
    assert_eq!(json["severity"], "warning");
    assert!(json.get("reason").is_none(), "absent unless a rule change ended the alert");
    Ok(())
}

#[test]
fn disabled_engine_evaluates_nothing() {
    let engine = AlertEngine::new(AlertSettings {
        enabled: false,
        rules: vec![rule("cpu_high", "cpu", Comparison::Above, 80.0, 70.0, 0, 1)],
        ..AlertSettings::default()
    })
    .expect("valid settings");
    assert!(feed(&engine, "cpu", 99.0, 0, 5).is_empty());
    assert!(engine.active().is_empty());
    assert!(engine.spawn_webhook().is_none(), "no webhook configured");
    assert_eq!(engine.webhook_stats(), WebhookStats::default());
}

#[test]
fn history_is_bounded() {
    let engine = AlertEngine::new(AlertSettings {
        history_capacity: 3,
        rules: vec![rule("q", "queue", Comparison::Above, 90.0, 70.0, 0, 1)],
        ..AlertSettings::default()
    })
    .expect("valid settings");
    for i in 0..10 {
        feed(&engine, "queue", 95.0, 2 * i, 2 * i + 1);
        feed(&engine, "queue", 50.0, 2 * i + 1, 2 * i + 2);
    }
    let history = engine.history();
    assert_eq!(history.len(), 3);
    assert!(history.windows(2).all(|w| w[0].started_at > w[1].started_at), "newest first");
}

#[test]
fn default_settings_build_an_engine_and_rule_states_serialise() -> Result<(), Box<dyn std::error::Error>> {
    let engine = AlertEngine::new(AlertSettings::default())?;
    let states = engine.rule_states();
    assert_eq!(states.len(), 9);
    let json = serde_json::to_value(&states[0])?;
    assert_eq!(json["state"], "ok");
    assert_eq!(json["rule"]["hold"], "1m");
    assert_eq!(json["rule"]["comparison"], "above");
    assert!(json["value"].is_null());
    Ok(())
}
