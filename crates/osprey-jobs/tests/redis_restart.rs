//! Redis is SIGKILLed mid-job and restarted from its AOF: the workers ride
//! it out and the job completes, every post processed and counted once.
//!
//! Runs its own redis-server (/usr/bin/redis-server, or
//! OSPREY_TEST_REDIS_SERVER) on a free loopback port in a temp dir; skipped
//! when there is none, unless CI=true.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use osprey_jobs::{Backend, JobSpec, JobState, Jobs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_job_loses_nothing() {
    init_tracing();
    let Some(bin) = redis_server_binary() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("redis-server not found and CI=true");
        }
        eprintln!("SKIPPED redis_restart_mid_job_loses_nothing: no redis-server binary");
        return;
    };
    let mut server = OwnRedis::start(&bin).await;
    let mut settings = settings(Backend::Redis, Some(server.url()), &unique_prefix("restart"));
    settings.ack_wait = Duration::from_secs(1);
    settings.concurrency = 2;
    settings.prefetch = 2;
    let producer = Jobs::connect(&settings).await.expect("connect");
    let a = Jobs::connect(&settings).await.expect("connect");
    let b = Jobs::connect(&settings).await.expect("connect");

    let id = producer.submit(JobSpec::default(), posts(2000, "p")).await.expect("submit");
    let seen = Arc::new(Seen::default());
    let w1 = spawn_worker(&a, Recorder::new(&seen, Duration::from_millis(100)), "w1", Duration::from_secs(5));
    let w2 = spawn_worker(&b, Recorder::new(&seen, Duration::from_millis(100)), "w2", Duration::from_secs(5));

    let before = wait_for(&producer, &id, Duration::from_secs(30), "8 chunks done", |s| s.chunks_done >= 8).await;
    assert!(before.chunks_done < 40, "killed mid-job: {before:#?}");
    server.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart(&bin).await;

    let s = wait_terminal(&producer, &id, Duration::from_secs(90)).await;
    assert_eq!(s.state, JobState::Completed, "{s:#?}");
    assert_eq!((s.total, s.done, s.failed), (2000, 2000, 0), "{s:#?}");
    assert_eq!((s.chunks_total, s.chunks_done, s.chunks_dead), (40, 40, 0), "{s:#?}");
    assert_finished_consistent(&s);
    for i in 0..2000 {
        assert!(seen.count(&format!("p-{i}")) >= 1, "post p-{i} never processed");
    }
    let r1 = w1.stop(Duration::from_secs(5)).await;
    let r2 = w2.stop(Duration::from_secs(5)).await;
    assert!(r1.queue_errors + r2.queue_errors > 0, "the workers saw the outage: {r1:#?} {r2:#?}");
    let q = producer.queue_stats().await.expect("stats");
    assert_eq!((q.messages, q.pending), (0, 0), "{q:?}");
}
