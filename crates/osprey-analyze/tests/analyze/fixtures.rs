//! Expected results for the recorded fixtures. The figures come from a real
//! server on a shared 2-core machine whose host CPU read 100 % throughout
//! (other work ran beside it), and with no emotion model configured (so
//! every emotion answer fell back to the lexicon): both are real, and both
//! show in the scores. Re-recording changes the figures; update this file
//! from `osprey analyze` and say why.

use osprey_analyze::score::SignalId;
use osprey_analyze::Analysis;

use crate::analyse;

/// Score (to 0.1), grade, top bottleneck id, recommended settings in order.
fn check(a: &Analysis, score: f64, grade: &str, top: Option<&str>, settings: &[&str]) {
    let got = a.score.expect("scored");
    assert!((got - score).abs() < 0.05, "score {got}, expected {score}");
    assert_eq!(a.grade.map(|g| g.as_str()), Some(grade));
    assert_eq!(a.bottlenecks.first().map(|b| b.id), top, "top bottleneck");
    let recs: Vec<&str> = a.recommendations.iter().map(|r| r.setting.as_str()).collect();
    assert_eq!(recs, settings, "recommended settings");
    for b in &a.bottlenecks {
        assert!(!b.evidence.is_empty(), "{} has no evidence", b.id);
    }
    // Every recommendation links to evidence that exists in the analysis.
    for r in &a.recommendations {
        assert!(!r.evidence.is_empty(), "{} has no evidence", r.id);
        for e in &r.evidence {
            let known = a.bottlenecks.iter().any(|b| b.id == e) || a.signals.iter().any(|s| s.id.as_str() == e);
            assert!(known, "{}: evidence `{e}` is neither a bottleneck nor a signal", r.id);
        }
    }
}

fn signal(a: &Analysis, id: SignalId) -> (f64, f64) {
    let s = a.signals.iter().find(|s| s.id == id).expect("signal present");
    (s.value, s.score)
}

#[test]
fn idle_server_snapshot() {
    let a = analyse(None, Some("idle.stats.json"), None);
    check(&a, 85.9, "B", None, &[]);
    assert_eq!(a.signals.len(), 6, "no throughput target, no cache look-ups, no pool waits, no alerts document");
    assert_eq!(signal(&a, SignalId::Cpu), (100.0, 0.0), "the shared host's CPU was busy");
    assert!(a.notes.iter().any(|n| n.contains("other processes compete")), "{:?}", a.notes);
}

#[test]
fn baseline_run_with_server_sample() {
    let a = analyse(Some("baseline.load.json"), Some("baseline.samples.json"), None);
    check(&a, 80.2, "B", None, &["analysis.emotion.model"]);
    assert_eq!(a.signals.len(), 10);
    assert_eq!(signal(&a, SignalId::Throughput).1, 100.0, "10 req/s offered, 10 achieved");
    let (hit, _) = signal(&a, SignalId::CacheHitRate);
    assert!((hit - 22.48).abs() < 0.01, "29 hits of 129 look-ups: {hit}");
}

#[test]
fn baseline_run_alone_is_healthy() {
    let a = analyse(Some("baseline.load.json"), None, None);
    check(&a, 100.0, "A", None, &[]);
    assert_eq!(a.signals.len(), 3, "latency, errors, throughput");
}

#[test]
fn overload_saturates_the_cpu_first() {
    let a = analyse(Some("overload.load.json"), Some("overload.samples.json"), None);
    check(
        &a,
        58.9,
        "F",
        Some("cpu_bound"),
        &["replicas", "load generator: more threads / another machine (--shard)", "analysis.emotion.model"],
    );
    assert_eq!(a.saturates_first, Some("CPU"));
    let kinds: Vec<&str> = a.bottlenecks.iter().map(|b| b.id).collect();
    assert_eq!(kinds, ["cpu_bound", "queue_wait", "client_saturation"]);
    let replicas = &a.recommendations[0];
    assert_eq!(replicas.suggested, serde_json::json!(2));
    assert_eq!(replicas.evidence, ["cpu_bound", "queue_wait", "latency_p95"]);
    // Evidence carries metric, window, value, threshold and source.
    let q = &a.bottlenecks[1].evidence[0];
    assert_eq!((q.window.as_str(), q.threshold, q.source.as_str()), ("1m", 50.0, "server stats"));
    assert!((q.value - 78.4).abs() < 0.05, "queue wait share {}", q.value);
    // Two samples 10.6 s apart: RSS grew, but far below 1 MiB/s.
    assert_eq!(a.inputs.stats.as_ref().and_then(|s| s.span_s), Some(10.6));
    assert!(!a.bottlenecks.iter().any(|b| b.id == "memory_growth"));
}

#[test]
fn overload_report_alone_blames_the_generator_and_latency() {
    let a = analyse(Some("overload.load.json"), None, None);
    check(
        &a,
        61.8,
        "D",
        Some("client_saturation"),
        &["load generator: more threads / another machine (--shard)", "replicas"],
    );
}

#[test]
fn overload_server_samples_alone() {
    let a = analyse(None, Some("overload.samples.json"), None);
    check(&a, 67.3, "D", Some("cpu_bound"), &["replicas", "analysis.emotion.model"]);
    let (rps, _) = signal(&a, SignalId::LatencyP95);
    assert!(rps > 500.0, "server-side p95 over the last minute: {rps}");
}

#[test]
fn constrained_server_misses_its_cache_and_refuses_work() {
    let a = analyse(Some("constrained.load.json"), Some("constrained.samples.json"), None);
    check(
        &a,
        73.7,
        "C",
        Some("cache_misses"),
        &["cache.l1.max_entries", "batching.max_concurrent_requests", "analysis.emotion.model"],
    );
    let [entries, admitted, _] = &a.recommendations[..] else { panic!("three recommendations") };
    assert_eq!((entries.current.clone(), entries.suggested.clone()), (serde_json::json!(16), serde_json::json!(945)));
    assert_eq!((admitted.current.clone(), admitted.suggested.clone()), (serde_json::json!(8), serde_json::json!(16)));
    assert_eq!(a.bottlenecks[1].id, "admission_rejections");
}

#[test]
fn constrained_variants() {
    let a = analyse(Some("constrained.load.json"), None, None);
    check(&a, 88.7, "B", Some("admission_rejections"), &["batching.max_concurrent_requests"]);
    let a = analyse(None, Some("constrained.samples.json"), None);
    check(
        &a,
        76.3,
        "C",
        Some("cache_misses"),
        &["cache.l1.max_entries", "batching.max_concurrent_requests", "analysis.emotion.model"],
    );
}

#[test]
fn the_slo_moves_the_latency_curve() {
    let o = osprey_analyze::Options { slo_p95_ms: 30.0, ..Default::default() };
    let a = crate::analyse_with(Some("baseline.load.json"), None, None, &o);
    // p95 39.1 ms against 30 ms → 90 ms: 100 × (1 − 9.1/60) = 84.8, weight 0.2 of 0.55.
    assert_eq!(a.score, Some(94.5));
    assert_eq!(signal(&a, SignalId::LatencyP95).1, 84.8);
}
