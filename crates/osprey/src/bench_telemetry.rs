//! `osprey bench telemetry`: what observing the server costs.
//!
//! 1. One record on the hot path: the performance monitor's `Op::record`
//!    (osprey-perf's own loop), and a duration histogram through the
//!    installed recorder — a series the performance monitor also receives
//!    against one that only Prometheus keeps, both through a registered
//!    handle and through the `histogram!` macro (a look-up per call).
//! 2. Throughput of `/embed` and `/v1/sentiment` over HTTP with
//!    `telemetry.instrument` on and off: two servers, the same closed-loop
//!    clients, runs interleaved, medians compared.
//! 3. The resource monitor's own cost, as the running server reports it.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::bench::{machine, read_corpus, Server};

#[derive(Debug, clap::Args)]
pub struct TelemetryBenchArgs {
    /// Model directory.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    pub model: String,
    /// Directory holding short.txt.
    #[arg(long, default_value = "fixtures/bench")]
    pub corpus_dir: PathBuf,
    /// Records per hot-path measurement.
    #[arg(long, default_value_t = 10_000_000)]
    pub iterations: u64,
    /// Seconds per HTTP run.
    #[arg(long, default_value_t = 8)]
    pub seconds: u64,
    /// HTTP runs per setting, interleaved on/off.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results/telemetry.json")]
    pub out: PathBuf,
}

pub fn telemetry(args: &TelemetryBenchArgs) -> anyhow::Result<()> {
    eprintln!("== hot path ({} records each)", args.iterations);
    let hot = hot_path(args.iterations);
    eprintln!("== HTTP with telemetry.instrument on and off ({} runs × {} s each)", args.runs, args.seconds);
    let http = http(args)?;
    let results = json!({ "machine": machine(), "hot_path": hot, "http": http });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&results)?)
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    eprintln!("results: {}", args.out.display());
    Ok(())
}

fn ns_per(iterations: u64, f: impl Fn(u64)) -> f64 {
    let started = Instant::now();
    for i in 0..iterations {
        f(i);
    }
    started.elapsed().as_nanos() as f64 / iterations as f64
}

fn hot_path(iterations: u64) -> Value {
    use osprey_types::metrics as m;
    let perf = osprey_perf::bench_record(iterations);
    // The server's recorder: Prometheus, with duration series tee'd into the performance monitor.
    let _handle = osprey_server::telemetry::prometheus();
    let labels = [("route", "/embed".to_string()), ("method", "POST".to_string()), ("status", "2xx".to_string())];
    let teed = metrics::histogram!(m::HTTP_REQUEST_DURATION_SECONDS, &labels);
    let plain = metrics::histogram!(m::BATCH_PADDING_RATIO);
    let v = |i: u64| 0.001 + (i % 1000) as f64 * 1e-6;
    let teed_handle = ns_per(iterations, |i| teed.record(black_box(v(i))));
    let plain_handle = ns_per(iterations, |i| plain.record(black_box(v(i))));
    let teed_macro = ns_per(iterations / 4, |i| {
        metrics::histogram!(m::HTTP_REQUEST_DURATION_SECONDS, &labels).record(black_box(v(i)))
    });
    let plain_macro = ns_per(iterations / 4, |i| metrics::histogram!(m::BATCH_PADDING_RATIO).record(black_box(v(i))));
    println!();
    println!("| one record | ns |");
    println!("|---|---:|");
    println!("| performance monitor `Op::record`, 1 thread | {:.1} |", perf.ns_per_record_single_thread);
    println!("| performance monitor `Op::record`, 2 threads on one op | {:.1} |", perf.ns_per_record_two_threads);
    println!("| Prometheus + performance monitor, registered handle | {teed_handle:.1} |");
    println!("| Prometheus only, registered handle (baseline) | {plain_handle:.1} |");
    println!("| Prometheus + performance monitor, `histogram!` with 3 labels | {teed_macro:.1} |");
    println!("| Prometheus only, `histogram!` without labels (baseline) | {plain_macro:.1} |");
    println!();
    json!({
        "perf_op_record_ns": perf.ns_per_record_single_thread,
        "perf_op_record_two_threads_ns": perf.ns_per_record_two_threads,
        "teed_handle_ns": teed_handle,
        "prometheus_handle_ns": plain_handle,
        "teed_macro_ns": teed_macro,
        "prometheus_macro_ns": plain_macro,
    })
}

/// Successful requests per second of `concurrency` closed-loop clients for
/// `secs`, and the failures (status, or `error` for a transport error).
async fn drive(
    client: &reqwest::Client,
    url: &str,
    bodies: &Arc<Vec<Value>>,
    concurrency: usize,
    secs: u64,
) -> (f64, std::collections::BTreeMap<String, u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let (client, url, bodies, stop, done, failures) = (
            client.clone(),
            url.to_string(),
            Arc::clone(bodies),
            Arc::clone(&stop),
            Arc::clone(&done),
            Arc::clone(&failures),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let body = &bodies[i % bodies.len()];
                i += concurrency;
                let failure = match client.post(&url).json(body).send().await {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(_) => None,
                        Err(_) => Some("body error".to_string()),
                    },
                    Ok(r) => Some(format!("{} {}", r.status().as_u16(), r.text().await.unwrap_or_default())),
                    Err(e) => Some(format!("error: {e}")),
                };
                match failure {
                    None => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(f) => {
                        *failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(f).or_default() += 1
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let n = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    let failures = failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    (n as f64 / elapsed, failures)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn http(args: &TelemetryBenchArgs) -> anyhow::Result<Value> {
    let texts = read_corpus(&args.corpus_dir, "short", 512)?;
    let common =
        ["--model", args.model.as_str(), "--log-level", "warn", "--max-concurrent-requests", "4096", "--no-store"];
    let on = Server::start(&common, &[])?;
    let off = Server::start(&common, &[("OSPREY_TELEMETRY__INSTRUMENT", std::ffi::OsStr::new("false"))])?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    rt.block_on(async {
        on.wait_ready(&client).await?;
        off.wait_ready(&client).await
    })?;
    let routes: [(&str, Vec<Value>); 2] = [
        ("/embed", texts.iter().map(|t| json!({ "inputs": t })).collect()),
        // After the first pass these are L1 cache hits: the cheapest route
        // there is, where instrumentation weighs most.
        ("/v1/sentiment", texts.iter().map(|t| json!({ "inputs": [t] })).collect()),
    ];
    let mut out = serde_json::Map::new();
    println!("| route | instrumented req/s (median) | uninstrumented req/s (median) | ratio | runs |");
    println!("|---|---:|---:|---:|---:|");
    for (route, bodies) in routes {
        let bodies = Arc::new(bodies);
        let (mut with, mut without) = (Vec::new(), Vec::new());
        let mut failed = std::collections::BTreeMap::<String, u64>::new();
        rt.block_on(async {
            // Warm both servers' connection pools and caches of the tokenizer.
            drive(&client, &format!("{}{route}", on.base()), &bodies, args.concurrency, 1).await;
            drive(&client, &format!("{}{route}", off.base()), &bodies, args.concurrency, 1).await;
            for run in 0..args.runs {
                // Alternate which goes first so drift hits both alike.
                let order = if run % 2 == 0 { [&on, &off] } else { [&off, &on] };
                for server in order {
                    let url = format!("{}{route}", server.base());
                    let (rps, failures) = drive(&client, &url, &bodies, args.concurrency, args.seconds).await;
                    for (k, v) in failures {
                        *failed.entry(k).or_default() += v;
                    }
                    if std::ptr::eq(server, &on) {
                        with.push(rps);
                    } else {
                        without.push(rps);
                    }
                }
            }
        });
        let (w, wo) = (median(with.clone()), median(without.clone()));
        let ratio = if wo > 0.0 { w / wo } else { 0.0 };
        println!("| `{route}` | {w:.1} | {wo:.1} | {ratio:.3} | {} |", args.runs);
        if !failed.is_empty() {
            eprintln!("   failed requests on {route} (not counted): {failed:?}");
        }
        out.insert(
            route.to_string(),
            json!({ "instrumented": with, "uninstrumented": without, "median_ratio": ratio, "failures": failed }),
        );
    }
    let resources: Value = rt.block_on(async {
        let r = client.get(format!("{}/performance/system/resources?since_ms=0", on.base())).send().await?;
        r.json::<Value>().await
    })?;
    let cost = resources["cost"].clone();
    println!();
    println!(
        "resource monitor (instrumented server): {} samples, mean {:.0} µs, max {:.0} µs per sample, {:.3}% of one core",
        cost["samples"],
        cost["mean_sample_us"].as_f64().unwrap_or(0.0),
        cost["max_sample_us"].as_f64().unwrap_or(0.0),
        cost["cpu_share_percent"].as_f64().unwrap_or(0.0)
    );
    out.insert("monitor_cost".into(), cost);
    Ok(Value::Object(out))
}
