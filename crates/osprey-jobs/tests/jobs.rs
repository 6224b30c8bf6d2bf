//! Delivery scenarios, each run against both backends: in-process memory,
//! and Redis (OSPREY_TEST_REDIS_URL, default redis://127.0.0.1:6379; skipped
//! when unreachable unless CI=true).

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use osprey_jobs::{JobError, JobSpec, JobState, Processor, WorkerReport};

/// Runs a scenario against the memory backend and against Redis.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$name(super::Env::memory()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                if let Some(env) = super::Env::redis(stringify!($name)).await {
                    super::$name(env).await;
                }
            }
        }
    )*};
}

both_backends!(
    two_workers_process_everything_counted_once,
    poison_chunk_is_dead_lettered,
    crashed_worker_chunks_are_reclaimed,
    crash_looping_chunk_is_dead_lettered,
    cancel_skips_remaining_chunks,
    slow_worker_keeps_its_claim,
    shutdown_hands_back_unstarted_chunks,
    drain_timeout_abandons_chunks_in_process,
    api_contract,
    finished_jobs_expire_after_retention,
);

const DRAIN: Duration = Duration::from_secs(5);

fn sum(reports: &[WorkerReport], f: impl Fn(&WorkerReport) -> u64) -> u64 {
    reports.iter().map(f).sum()
}

/// 1 000 posts in chunks of 50, two workers: every post processed, the job
/// counted exactly once and completed.
async fn two_workers_process_everything_counted_once(env: Env) {
    let producer = env.connect(|_| {}).await;
    let (a, b) = if env.is_memory() {
        (producer.clone(), producer.clone())
    } else {
        (env.connect(|_| {}).await, env.connect(|_| {}).await)
    };
    let seen = Arc::new(Seen::default());
    let proc: Arc<dyn Processor> = Recorder::new(&seen, Duration::from_millis(5));
    let w1 = spawn_worker(&a, proc.clone(), "w1", DRAIN);
    let w2 = spawn_worker(&b, proc, "w2", DRAIN);

    let spec = JobSpec { label: Some("bulk".into()), options: serde_json::json!({"model": "x"}), sealed_total: None };
    let id = producer.submit(spec, posts(1000, "p")).await.expect("submit");
    let s = wait_terminal(&producer, &id, Duration::from_secs(60)).await;

    assert_eq!(s.state, JobState::Completed, "{s:#?}");
    assert_eq!((s.total, s.done, s.failed, s.skipped, s.stored), (1000, 1000, 0, 0, 1000));
    assert_eq!((s.chunks_total, s.chunks_done, s.chunks_dead), (20, 20, 0));
    assert_finished_consistent(&s);
    assert!(s.started_at.is_some() && s.rate_per_sec > 0.0, "{s:#?}");
    assert_eq!(s.options, serde_json::json!({"model": "x"}));
    for i in 0..1000 {
        assert!(seen.count(&format!("p-{i}")) >= 1, "post p-{i} never processed");
    }
    assert_eq!(seen.distinct(), 1000);

    let reports = [w1.stop(DRAIN).await, w2.stop(DRAIN).await];
    assert!(sum(&reports, |r| r.chunks_done) >= 20, "{reports:#?}");
    assert!(reports.iter().all(|r| r.chunks_done > 0), "both workers took chunks: {reports:#?}");
    let q = producer.queue_stats().await.expect("stats");
    assert_eq!((q.messages, q.pending), (0, 0), "acknowledged messages leave the stream");
}

/// One chunk always fails: after max_deliveries it is dead-lettered, its
/// posts counted failed, and the job ends failed.
async fn poison_chunk_is_dead_lettered(env: Env) {
    let tweak = |s: &mut osprey_jobs::JobSettings| {
        s.ack_wait = Duration::from_millis(300);
        s.max_deliveries = 3;
    };
    let jobs = env.connect(tweak).await;
    let seen = Arc::new(Seen::default());
    let proc = Arc::new(Recorder {
        seen: seen.clone(),
        delay: Duration::from_millis(1),
        fail_first: Some("p-100".into()),
        hang: false,
    });
    let w1 = spawn_worker(&jobs, proc.clone(), "w1", DRAIN);
    let w2 = spawn_worker(&jobs, proc, "w2", DRAIN);

    let id = jobs.submit(JobSpec::default(), posts(500, "p")).await.expect("submit");
    let s = wait_terminal(&jobs, &id, Duration::from_secs(30)).await;

    assert_eq!(s.state, JobState::Failed, "{s:#?}");
    assert_eq!((s.done, s.failed, s.chunks_done, s.chunks_dead), (450, 50, 9, 1), "{s:#?}");
    assert_finished_consistent(&s);
    assert!(s.last_error.as_deref().unwrap_or("").contains("always fails"), "{s:#?}");
    assert_eq!(seen.calls("p-100"), 3, "delivered exactly max_deliveries times");
    assert_eq!(seen.count("p-100"), 0);
    assert_eq!(seen.distinct(), 450);

    let dead = jobs.dead_letters(10).await.expect("dead letters");
    let ours: Vec<_> = dead.iter().filter(|d| d.job.as_ref() == Some(&id)).collect();
    assert_eq!(ours.len(), 1, "{dead:#?}");
    let d = ours[0];
    assert_eq!(d.chunk, Some(2));
    assert_eq!(d.deliveries, 3);
    assert_eq!(d.posts.len(), 50);
    assert_eq!(d.posts[0].id, "p-100");
    assert!(d.reason.contains("always fails"), "{d:#?}");
    assert!(d.consumer == "w1" || d.consumer == "w2");

    let reports = [w1.stop(DRAIN).await, w2.stop(DRAIN).await];
    assert_eq!(sum(&reports, |r| r.chunks_dead), 1, "{reports:#?}");
    assert_eq!(sum(&reports, |r| r.chunks_failed), 3, "{reports:#?}");
}

/// A worker dies mid-chunk (its task is aborted): another worker reclaims
/// what it held after ack_wait; every post processed, counted once.
async fn crashed_worker_chunks_are_reclaimed(env: Env) {
    let tweak = |s: &mut osprey_jobs::JobSettings| {
        s.ack_wait = Duration::from_millis(500);
        s.concurrency = 1;
        s.prefetch = 1;
    };
    let producer = env.connect(tweak).await;
    let doomed_jobs = if env.is_memory() { producer.clone() } else { env.connect(tweak).await };
    let survivor_jobs = if env.is_memory() { producer.clone() } else { env.connect(tweak).await };

    let id = producer.submit(JobSpec::default(), posts(200, "p")).await.expect("submit");
    let doomed_seen = Arc::new(Seen::default());
    let hang = Arc::new(Recorder { seen: doomed_seen.clone(), delay: Duration::ZERO, fail_first: None, hang: true });
    let doomed = spawn_worker(&doomed_jobs, hang, "doomed", DRAIN);
    // Wait until it is inside a chunk (with one more buffered), then crash it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while doomed_seen.started.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "doomed worker never started a chunk");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    doomed.handle.abort();
    let _ = doomed.handle.await;

    let seen = Arc::new(Seen::default());
    let survivor = spawn_worker(&survivor_jobs, Recorder::new(&seen, Duration::from_millis(1)), "survivor", DRAIN);
    let s = wait_terminal(&producer, &id, Duration::from_secs(30)).await;
    assert_eq!(s.state, JobState::Completed, "{s:#?}");
    assert_eq!((s.total, s.done, s.chunks_done), (200, 200, 4), "{s:#?}");
    assert_finished_consistent(&s);
    for i in 0..200 {
        assert_eq!(seen.count(&format!("p-{i}")), 1, "post p-{i}");
    }
    let report = survivor.stop(DRAIN).await;
    assert!(report.chunks_reclaimed >= 1, "{report:#?}");
    assert_eq!(report.chunks_done, 4, "{report:#?}");
}

/// A chunk whose workers keep dying on it is dead-lettered when it is
/// reclaimed past max_deliveries, without being processed again.
async fn crash_looping_chunk_is_dead_lettered(env: Env) {
    let tweak = |s: &mut osprey_jobs::JobSettings| {
        s.ack_wait = Duration::from_millis(300);
        s.max_deliveries = 1;
        s.concurrency = 1;
        s.prefetch = 1;
    };
    let jobs = env.connect(tweak).await;
    let next_jobs = if env.is_memory() { jobs.clone() } else { env.connect(tweak).await };
    let id = jobs.submit(JobSpec::default(), posts(50, "p")).await.expect("submit");
    let seen = Arc::new(Seen::default());
    let hang = Arc::new(Recorder { seen: seen.clone(), delay: Duration::ZERO, fail_first: None, hang: true });
    let doomed = spawn_worker(&jobs, hang, "doomed", DRAIN);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.started.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    doomed.handle.abort();
    let _ = doomed.handle.await;

    let next = spawn_worker(&next_jobs, Recorder::new(&seen, Duration::ZERO), "next", DRAIN);
    let s = wait_terminal(&jobs, &id, Duration::from_secs(10)).await;
    assert_eq!((s.state, s.done, s.failed, s.chunks_dead), (JobState::Failed, 0, 50, 1), "{s:#?}");
    assert_finished_consistent(&s);
    assert_eq!(seen.calls("p-0"), 1, "not processed again");
    let dead = jobs.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!((dead[0].deliveries, dead[0].consumer.as_str(), dead[0].posts.len()), (2, "next", 50));
    assert!(dead[0].reason.contains("delivered 2 times"), "{:?}", dead[0].reason);
    let report = next.stop(DRAIN).await;
    assert_eq!((report.chunks_reclaimed, report.chunks_dead, report.chunks_done), (1, 1, 0), "{report:#?}");
}

/// Cancelling mid-job: the chunks not started are skipped, the job ends
/// cancelled, and it takes no more posts.
async fn cancel_skips_remaining_chunks(env: Env) {
    let tweak = |s: &mut osprey_jobs::JobSettings| {
        s.concurrency = 1;
        s.prefetch = 1;
    };
    let jobs = env.connect(tweak).await;
    let seen = Arc::new(Seen::default());
    let w = spawn_worker(&jobs, Recorder::new(&seen, Duration::from_millis(100)), "w", DRAIN);
    let id = jobs.submit(JobSpec::default(), posts(1000, "p")).await.expect("submit");
    wait_for(&jobs, &id, Duration::from_secs(20), "3 chunks done", |s| s.chunks_done >= 3).await;

    assert!(jobs.cancel(&id).await.expect("cancel"), "first cancel cancels");
    assert!(!jobs.cancel(&id).await.expect("cancel again"), "second cancel is a no-op");
    let s = wait_for(&jobs, &id, Duration::from_secs(20), "every chunk accounted for", |s| {
        s.chunks_done + s.chunks_skipped == s.chunks_total
    })
    .await;
    assert_eq!(s.state, JobState::Cancelled, "{s:#?}");
    assert!(s.chunks_done < 10, "most chunks skipped: {s:#?}");
    assert!(s.chunks_skipped >= 10, "{s:#?}");
    assert_eq!(s.done + s.skipped, 1000, "{s:#?}");
    assert_finished_consistent(&s);
    assert_eq!(seen.distinct() as u64, s.done, "only the processed chunks were seen");

    assert!(matches!(jobs.append(&id, posts(1, "late")).await, Err(JobError::Cancelled(_))));
    assert!(matches!(jobs.seal(&id).await, Err(JobError::Cancelled(_))));
    let report = w.stop(DRAIN).await;
    assert!(report.chunks_skipped + report.chunks_done <= 20, "{report:#?}");
    let q = jobs.queue_stats().await.expect("stats");
    assert_eq!(q.messages, 0, "skipped chunks are acknowledged");
}

/// A worker that takes 3 × ack_wait per chunk keeps renewing its claims:
/// another worker polling all along never gets them.
async fn slow_worker_keeps_its_claim(env: Env) {
    let tweak = |s: &mut osprey_jobs::JobSettings| {
        s.ack_wait = Duration::from_millis(300);
        s.concurrency = 2;
        s.prefetch = 2;
        s.max_deliveries = 1;
    };
    let slow_jobs = env.connect(tweak).await;
    let other_jobs = if env.is_memory() { slow_jobs.clone() } else { env.connect(tweak).await };
    let seen = Arc::new(Seen::default());
    let id = slow_jobs.submit(JobSpec::default(), posts(100, "p")).await.expect("submit");
    let slow = spawn_worker(&slow_jobs, Recorder::new(&seen, Duration::from_millis(900)), "slow", DRAIN);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.started.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "slow worker never started both chunks");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let other = spawn_worker(&other_jobs, Recorder::new(&seen, Duration::ZERO), "other", DRAIN);

    let s = wait_terminal(&slow_jobs, &id, Duration::from_secs(20)).await;
    assert_eq!(s.state, JobState::Completed, "{s:#?}");
    assert_eq!((s.done, s.chunks_done, s.chunks_dead), (100, 2, 0));
    assert_eq!(seen.max_per_post(), 1, "no chunk was delivered twice");
    assert_eq!(seen.started.load(Ordering::SeqCst), 2);
    let other = other.stop(DRAIN).await;
    let slow = slow.stop(DRAIN).await;
    assert_eq!((other.chunks_reclaimed, other.chunks_done), (0, 0), "{other:#?}");
    assert_eq!((slow.chunks_done, slow.claims_lost), (2, 0), "{slow:#?}");
}

/// Shutdown hands fetched-but-unstarted chunks back at once, without using
/// up a delivery (max_deliveries = 1 would dead-letter them otherwise), and
/// the chunk in process finishes and is acknowledged.
async fn shutdown_hands_back_unstarted_chunks(env: Env) {
    let tweak = |s: &mut osprey_jobs::JobSettings| {
        s.ack_wait = Duration::from_secs(60);
        s.concurrency = 1;
        s.prefetch = 3;
        s.max_deliveries = 1;
    };
    let first_jobs = env.connect(tweak).await;
    let second_jobs = if env.is_memory() { first_jobs.clone() } else { env.connect(tweak).await };
    let seen = Arc::new(Seen::default());
    let id = first_jobs.submit(JobSpec::default(), posts(250, "p")).await.expect("submit");
    let first = spawn_worker(&first_jobs, Recorder::new(&seen, Duration::from_millis(300)), "first", DRAIN);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.started.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "first worker never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = first.stop(DRAIN).await;
    assert_eq!(report.chunks_done, 1, "the chunk in process finished: {report:#?}");
    assert!(report.chunks_released >= 1, "{report:#?}");
    assert_eq!(report.chunks_abandoned, 0, "{report:#?}");

    // ack_wait is a minute: only a hand-back lets this finish quickly.
    let second = spawn_worker(&second_jobs, Recorder::new(&seen, Duration::ZERO), "second", DRAIN);
    let s = wait_terminal(&first_jobs, &id, Duration::from_secs(10)).await;
    assert_eq!(s.state, JobState::Completed, "{s:#?}");
    assert_eq!((s.done, s.chunks_dead), (250, 0), "{s:#?}");
    assert_eq!(seen.max_per_post(), 1);
    let second = second.stop(DRAIN).await;
    assert_eq!(second.chunks_done, 4, "{second:#?}");
}

/// A chunk still in process when the drain time runs out is abandoned (left
/// pending), and the worker returns promptly.
async fn drain_timeout_abandons_chunks_in_process(env: Env) {
    let jobs = env.connect(|s| s.ack_wait = Duration::from_millis(300)).await;
    let seen = Arc::new(Seen::default());
    let hang = Arc::new(Recorder { seen: seen.clone(), delay: Duration::ZERO, fail_first: None, hang: true });
    let id = jobs.submit(JobSpec::default(), posts(50, "p")).await.expect("submit");
    let w = spawn_worker(&jobs, hang, "stuck", Duration::from_millis(200));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.started.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = tokio::time::Instant::now();
    let report = w.stop(Duration::from_millis(200)).await;
    assert!(t.elapsed() < Duration::from_secs(3), "drain bounded: {:?}", t.elapsed());
    assert_eq!(report.chunks_abandoned, 1, "{report:#?}");
    // The abandoned chunk is redelivered to the next worker.
    let w2 = spawn_worker(&jobs, Recorder::new(&seen, Duration::ZERO), "next", DRAIN);
    let s = wait_terminal(&jobs, &id, Duration::from_secs(10)).await;
    assert_eq!((s.state, s.done), (JobState::Completed, 50));
    let r2 = w2.stop(DRAIN).await;
    assert_eq!(r2.chunks_reclaimed, 1, "{r2:#?}");
}

/// The API's errors and edge cases.
async fn api_contract(env: Env) {
    let jobs = env.connect(|s| s.max_posts_per_job = 120).await;
    let unknown = osprey_jobs::JobId::new();
    assert!(jobs.status(&unknown).await.expect("status").is_none());
    assert!(matches!(jobs.append(&unknown, posts(1, "x")).await, Err(JobError::NotFound(_))));
    assert!(matches!(jobs.seal(&unknown).await, Err(JobError::NotFound(_))));
    assert!(matches!(jobs.cancel(&unknown).await, Err(JobError::NotFound(_))));

    // Incremental: append in pieces, then seal.
    let id = jobs.create(JobSpec { label: Some("backfill".into()), ..Default::default() }).await.expect("create");
    let s = jobs.status(&id).await.expect("status").expect("exists");
    assert_eq!((s.state, s.sealed, s.total), (JobState::Queued, false, 0));
    jobs.append(&id, posts(70, "a")).await.expect("append");
    jobs.append(&id, posts(30, "b")).await.expect("append");
    let s = jobs.status(&id).await.expect("status").expect("exists");
    assert_eq!((s.total, s.chunks_total), (100, 3), "70 → 50 + 20, 30 → 30");
    let err = jobs.append(&id, posts(21, "c")).await.expect_err("over max_posts_per_job");
    assert!(matches!(err, JobError::TooLarge { requested: 121, limit: 120 }), "{err:?}");
    assert!(err.is_client_error());
    assert_eq!(jobs.status(&id).await.expect("status").expect("exists").total, 100, "refused whole");
    jobs.seal(&id).await.expect("seal");
    jobs.seal(&id).await.expect("sealing twice is harmless");
    assert!(matches!(jobs.append(&id, posts(1, "d")).await, Err(JobError::Sealed(_))));

    // An announced total seals the job when reached, and caps it.
    let announced = jobs.create(JobSpec { sealed_total: Some(60), ..Default::default() }).await.expect("create");
    jobs.append(&announced, posts(40, "e")).await.expect("append");
    assert!(matches!(jobs.append(&announced, posts(21, "f")).await, Err(JobError::TooLarge { limit: 60, .. })));
    jobs.append(&announced, posts(20, "g")).await.expect("append to the total");
    let s = jobs.status(&announced).await.expect("status").expect("exists");
    assert!(s.sealed, "{s:#?}");
    assert_eq!(s.expected_total, Some(60));
    assert!(matches!(
        jobs.create(JobSpec { sealed_total: Some(121), ..Default::default() }).await,
        Err(JobError::TooLarge { .. })
    ));

    // An empty job completes when sealed.
    let empty = jobs.submit(JobSpec::default(), Vec::new()).await.expect("submit");
    let s = jobs.status(&empty).await.expect("status").expect("exists");
    assert_eq!(s.state, JobState::Completed, "{s:#?}");
    assert!(!jobs.cancel(&empty).await.expect("cancel"), "a finished job is not cancelled");
    assert!(matches!(jobs.submit(JobSpec::default(), posts(121, "h")).await, Err(JobError::TooLarge { .. })));

    // Listing: newest first, limited.
    let listed = jobs.list(10).await.expect("list");
    let ids: Vec<_> = listed.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, vec![empty.clone(), announced.clone(), id.clone()], "newest first");
    assert_eq!(jobs.list(1).await.expect("list")[0].id, empty);
    assert!(jobs.list(0).await.expect("list").is_empty());

    // A worker drains them.
    let seen = Arc::new(Seen::default());
    let w = spawn_worker(&jobs, Recorder::new(&seen, Duration::ZERO), "w", DRAIN);
    let s = wait_terminal(&jobs, &id, Duration::from_secs(10)).await;
    assert_eq!((s.state, s.done, s.label.as_deref()), (JobState::Completed, 100, Some("backfill")));
    let s = wait_terminal(&jobs, &announced, Duration::from_secs(10)).await;
    assert_eq!((s.state, s.done), (JobState::Completed, 60));
    w.stop(DRAIN).await;
}

/// Redis lost the stream and its group (a restart without persistence, or
/// someone deleted it): workers recreate the group and carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_group_is_recreated_after_data_loss() {
    let Some(env) = Env::redis("group_recreated").await else { return };
    let jobs = env.connect(|_| {}).await;
    let seen = Arc::new(Seen::default());
    let w = spawn_worker(&jobs, Recorder::new(&seen, Duration::ZERO), "w", DRAIN);
    let first = jobs.submit(JobSpec::default(), posts(100, "a")).await.expect("submit");
    wait_terminal(&jobs, &first, Duration::from_secs(10)).await;

    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect");
    let stream = format!("{}:stream", env.settings.prefix);
    let _: u64 = redis::cmd("DEL").arg(&stream).query_async(&mut con).await.expect("del");

    let second = jobs.submit(JobSpec::default(), posts(100, "b")).await.expect("submit");
    let s = wait_terminal(&jobs, &second, Duration::from_secs(15)).await;
    assert_eq!((s.state, s.done), (JobState::Completed, 100), "{s:#?}");
    let report = w.stop(DRAIN).await;
    assert!(report.queue_errors >= 1, "the worker saw NOGROUP: {report:#?}");
    let groups: redis::Value =
        redis::cmd("XINFO").arg("GROUPS").arg(&stream).query_async(&mut con).await.expect("xinfo");
    assert!(format!("{groups:?}").contains("workers"), "{groups:?}");
}

/// Finished jobs disappear `retention` after they finished; unfinished ones
/// stay.
async fn finished_jobs_expire_after_retention(env: Env) {
    let jobs = env.connect(|s| s.retention = Duration::from_secs(1)).await;
    let done = jobs.submit(JobSpec::default(), Vec::new()).await.expect("submit");
    let open = jobs.create(JobSpec::default()).await.expect("create");
    assert_eq!(jobs.status(&done).await.expect("status").expect("exists").state, JobState::Completed);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(jobs.status(&done).await.expect("status").is_none(), "expired");
    assert!(jobs.status(&open).await.expect("status").is_some(), "an unfinished job does not expire");
    let listed: Vec<_> = jobs.list(usize::MAX).await.expect("list").into_iter().map(|s| s.id).collect();
    assert_eq!(listed, vec![open]);
}
