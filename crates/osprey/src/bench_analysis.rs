//! `osprey bench analysis` and `osprey bench emotion-model`: the analysis
//! routes' throughput and latency, measured side by side with named
//! baselines in one run on the same machine.
//!
//! `analysis` measures, in-process through the same `Analyzer` the server
//! uses (result cache off unless stated): VADER texts/s next to the reference
//! Python `vaderSentiment` on the same texts; lexicon emotion texts/s;
//! `/v1/analyze` posts/s with sentiment + emotion + summary + topics on
//! 100–150-word posts; the latency of a cached repeat; then, over HTTP
//! against `osprey serve` on a loopback port, `/v1/sentiment` and
//! `/v1/emotion` with N concurrent clients.
//!
//! `emotion-model` loads a sequence classifier (by default the randomly
//! initialised DistilRoBERTa-size model `scripts/bench/make_emotion_bench_model.py`
//! writes) and measures texts/s per batch size next to `transformers` on
//! PyTorch (`scripts/bench/emotion_baseline.py`), and checks that both
//! produce the same logits.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hdrhistogram::Histogram;
use osprey_engine::model::{resolve_model, ResolveOptions};
use osprey_engine::{BatchingSettings, Classifier, ModelRegistry, ModelSettings, Truncation};
use osprey_server::analysis::{AnalysisSettings, Analyzer};
use osprey_types::analysis::{EmotionOptions, Post, TopicSetRequest, TopicSpec};
use serde_json::{json, Value};

use crate::bench::{machine, python, read_corpus, rss_bytes, Server};

#[derive(Debug, clap::Args)]
pub struct AnalysisBenchArgs {
    /// Embedding model directory.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    pub model: String,
    /// VADER lexicon directory.
    #[arg(long, default_value = "models/vader")]
    pub vader_dir: PathBuf,
    /// Directory holding short.txt and medium.txt.
    #[arg(long, default_value = "fixtures/bench")]
    pub corpus_dir: PathBuf,
    /// Short texts for the sentiment and emotion measurements.
    #[arg(long, default_value_t = 20_000)]
    pub texts: usize,
    /// Posts for the `/v1/analyze` measurement.
    #[arg(long, default_value_t = 256)]
    pub posts: usize,
    /// Posts per `/v1/analyze` request.
    #[arg(long, default_value_t = 32)]
    pub posts_per_request: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Requests per HTTP route and mode.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Requests per second of the paced HTTP run (0: saturated run only).
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Python with vaderSentiment for the baseline (default: .venv/bin/python, else python3).
    #[arg(long, env = "OSPREY_BENCH_PYTHON")]
    pub python: Option<PathBuf>,
    #[arg(long)]
    pub no_baseline: bool,
    #[arg(long)]
    pub no_http: bool,
    /// Write the full report as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct EmotionModelBenchArgs {
    /// A sequence-classification model directory.
    #[arg(long, default_value = "models/bench-emotion-distilroberta")]
    pub model: String,
    #[arg(long, default_value = "fixtures/bench/short.txt")]
    pub corpus: PathBuf,
    #[arg(long, default_value_t = 256)]
    pub texts: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub batch_sizes: Vec<usize>,
    /// Timed passes per batch size; the median is reported (the baseline does the same).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Inference backend (auto, onnxruntime, candle).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Inference threads (0 = one per core); the baseline gets the same count.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Python with transformers for the baseline (default: .venv/bin/python, else python3).
    #[arg(long, env = "OSPREY_BENCH_PYTHON")]
    pub python: Option<PathBuf>,
    #[arg(long)]
    pub no_baseline: bool,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn write_report(out: Option<&PathBuf>, report: &Value) -> anyhow::Result<()> {
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_string_pretty(report)?)?;
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn latency(h: &Histogram<u64>) -> Value {
    json!({ "p50": ms(h, 0.5), "p95": ms(h, 0.95), "p99": ms(h, 0.99), "max": h.max() as f64 / 1000.0 })
}

/// Analysis settings with every result cache off, so each call does the
/// work: what a benchmark of the work itself needs.
pub(crate) fn uncached_settings(vader_dir: &std::path::Path) -> AnalysisSettings {
    let mut s = AnalysisSettings { vader_dir: vader_dir.to_path_buf(), max_texts: 4096, ..AnalysisSettings::default() };
    use osprey_server::analysis::settings::CachePolicy::Off;
    let c = &mut s.cache;
    (c.sentiment, c.emotion, c.trajectory, c.summary, c.analyze) = (Off, Off, Off, Off, Off);
    s
}

/// Corpus lines made unique (so no cache or dedup can help), `n` of them.
pub(crate) fn unique_texts(lines: &[String], n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{} #{i}", lines[i % lines.len()])).collect()
}

pub(crate) fn topic_request() -> TopicSetRequest {
    let t = |label: &str, examples: &[&str]| TopicSpec {
        label: label.into(),
        examples: examples.iter().map(|s| s.to_string()).collect(),
    };
    TopicSetRequest {
        topics: vec![
            t("programming languages", &["Rust borrow checker", "Python packaging", "compile errors"]),
            t("machine learning", &["training a model on GPUs", "embeddings and transformers"]),
            t("databases", &["slow SQL queries", "PostgreSQL indexes"]),
            t("hardware", &["new laptop", "CPU benchmarks"]),
            t("gaming", &["new game release", "frame rate drops"]),
        ],
        threshold: Some(0.3),
        description: None,
    }
}

pub fn analysis(args: &AnalysisBenchArgs) -> anyhow::Result<()> {
    let short = read_corpus(&args.corpus_dir, "short", 1024)?;
    let medium = read_corpus(&args.corpus_dir, "medium", 256)?;
    let texts = unique_texts(&short, args.texts);
    let mut report = json!({ "machine": machine(), "model": args.model, "texts": texts.len() });

    if !args.no_baseline {
        report["baseline_vader"] = vader_baseline(args, &texts)?;
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let uncached = uncached_settings(&args.vader_dir);
    let model = ModelSettings { model: args.model.clone(), ..ModelSettings::default() };
    let batching = BatchingSettings { max_client_batch_size: 4096, ..BatchingSettings::default() };
    let registry = Arc::new(ModelRegistry::new("default", model, batching, ResolveOptions::default()));
    rt.block_on(registry.preload())?;
    let l1 = || osprey_cache::Cache::l1_only(osprey_cache::L1Settings::default());
    let analyzer = Analyzer::new(uncached, Arc::clone(&registry), None, None, l1()?);
    analyzer.readiness().map_err(anyhow::Error::msg)?;

    // Sentiment and lexicon emotion, requests of 256 texts.
    let per_call = 256;
    let (sent, emo) = rt.block_on(async {
        let t = Instant::now();
        for chunk in texts.chunks(per_call) {
            analyzer.sentiment(chunk.to_vec()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let sent = texts.len() as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for chunk in texts.chunks(per_call) {
            analyzer.emotion(chunk.to_vec(), &EmotionOptions::default()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let emo = texts.len() as f64 / t.elapsed().as_secs_f64();
        Ok::<_, anyhow::Error>((sent, emo))
    })?;
    eprintln!("   in-process sentiment: {sent:.0} texts/s; lexicon emotion: {emo:.0} texts/s");
    report["in_process"] =
        json!({ "sentiment_texts_per_s": sent, "lexicon_emotion_texts_per_s": emo, "texts_per_call": per_call });

    // One-pass analyze on 100–150-word posts.
    rt.block_on(analyzer.put_topics("bench", topic_request())).map_err(|e| anyhow::anyhow!("{e}"))?;
    let posts: Vec<Post> = crate::bench_suite::posts(&medium, args.posts, "p");
    let request = |posts: &[Post]| crate::bench_suite::analyze_request(posts.to_vec());
    let analyzer = Arc::new(analyzer);
    // The same work with every post and result stored in a fresh SQLite
    // store (posts are unique, so nothing is reused), alternated with runs
    // without one, so the difference is the cost of storing.
    let store_dir = std::env::temp_dir().join(format!("osprey-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store_dir);
    let store = rt.block_on(osprey_store::Store::open(&osprey_store::StoreSettings::default(), &store_dir))?;
    let storing = Arc::new(Analyzer::new(
        uncached_settings(&args.vader_dir),
        Arc::clone(&registry),
        None,
        Some(store.clone()),
        l1()?,
    ));
    rt.block_on(storing.put_topics("bench", topic_request())).map_err(|e| anyhow::anyhow!("{e}"))?;
    let run = |analyzer: &Arc<Analyzer>, round: usize| {
        rt.block_on(async {
            // Warm-up, then two requests in flight at a time so the model never idles.
            let renamed = |chunk: &[Post]| {
                let mut req = request(chunk);
                for p in &mut req.posts {
                    p.id = format!("{}-r{round}", p.id);
                    p.title = format!("{} (round {round})", p.title);
                }
                req
            };
            analyzer.analyze(renamed(&posts[..4.min(posts.len())])).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let t = Instant::now();
            let mut sentences = 0;
            let mut inflight = Vec::new();
            for chunk in posts.chunks(args.posts_per_request.max(1)) {
                let (a, req) = (Arc::clone(analyzer), renamed(chunk));
                inflight.push(tokio::spawn(async move { a.analyze(req).await }));
                if inflight.len() == 2 {
                    sentences += inflight.remove(0).await?.map_err(|e| anyhow::anyhow!("{e}"))?.embedded_sentences;
                }
            }
            for h in inflight {
                sentences += h.await?.map_err(|e| anyhow::anyhow!("{e}"))?.embedded_sentences;
            }
            Ok::<_, anyhow::Error>((posts.len() as f64 / t.elapsed().as_secs_f64(), sentences))
        })
    };
    let (mut plain, mut stored) = (Vec::new(), Vec::new());
    let mut sentences = 0;
    for round in 0..2 {
        let (rate, n) = run(&analyzer, 2 * round)?;
        plain.push(rate);
        sentences = n;
        stored.push(run(&storing, 2 * round + 1)?.0);
    }
    rt.block_on(store.close())?;
    let stored_rows = rt.block_on(async {
        let reopened = osprey_store::Store::open(&osprey_store::StoreSettings::default(), &store_dir).await?;
        let page = reopened.list_posts(&osprey_store::PostQuery { limit: 500, ..Default::default() }).await?;
        reopened.close().await?;
        Ok::<_, anyhow::Error>(page.posts.len())
    })?;
    let _ = std::fs::remove_dir_all(&store_dir);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let posts_per_s = mean(&plain);
    eprintln!(
        "   in-process analyze with a SQLite store: {:.1} posts/s vs {posts_per_s:.1} without ({:.2}x; {stored_rows} posts stored, first page)",
        mean(&stored),
        mean(&stored) / posts_per_s
    );
    report["analyze_stored"] = json!({
        "posts_per_s": mean(&stored), "rounds": stored, "without_store_rounds": plain,
        "ratio_to_without": mean(&stored) / posts_per_s, "backend": "sqlite",
    });
    eprintln!("   in-process analyze: {posts_per_s:.1} posts/s ({sentences} sentences embedded)");
    report["analyze"] = json!({
        "posts": posts.len(), "posts_per_request": args.posts_per_request, "posts_per_s": posts_per_s,
        "sentences_embedded": sentences, "sentences_per_s": sentences as f64 / (posts.len() as f64 / posts_per_s),
        "tasks": ["sentiment", "emotion (lexicon)", "summary (centroid)", "topics"],
    });

    // A cached repeat: the same post and the same emotion text, answered from the cache.
    let cached_settings = AnalysisSettings { vader_dir: args.vader_dir.clone(), ..AnalysisSettings::default() };
    let cached = Analyzer::new(cached_settings, Arc::clone(&registry), None, None, l1()?);
    let repeat = rt.block_on(async {
        cached.put_topics("bench", topic_request()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let one = request(&posts[..1]);
        let text = vec![texts[0].clone()];
        cached.analyze(one.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        cached.emotion(text.clone(), &EmotionOptions::default()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let (mut ha, mut he) = (Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?);
        for _ in 0..5_000 {
            let t = Instant::now();
            let r = cached.analyze(one.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            ha.record(t.elapsed().as_nanos().max(1) as u64)?;
            anyhow::ensure!(r.results[0].cached, "repeat was not cached");
            let t = Instant::now();
            cached.emotion(text.clone(), &EmotionOptions::default()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            he.record(t.elapsed().as_nanos().max(1) as u64)?;
        }
        Ok::<_, anyhow::Error>((ha, he))
    })?;
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    eprintln!(
        "   cached repeat: analyze p50 {:.1} µs p99 {:.1} µs; emotion p50 {:.1} µs p99 {:.1} µs",
        us(&repeat.0, 0.5),
        us(&repeat.0, 0.99),
        us(&repeat.1, 0.5),
        us(&repeat.1, 0.99)
    );
    report["cached_repeat_us"] = json!({
        "analyze": { "p50": us(&repeat.0, 0.5), "p99": us(&repeat.0, 0.99), "max": repeat.0.max() as f64 / 1000.0 },
        "emotion": { "p50": us(&repeat.1, 0.5), "p99": us(&repeat.1, 0.99), "max": repeat.1.max() as f64 / 1000.0 },
    });
    drop(rt);

    if !args.no_http {
        report["http"] = http(args, &texts)?;
    }
    print_analysis(&report);
    write_report(args.out.as_ref(), &report)
}

fn vader_baseline(args: &AnalysisBenchArgs, texts: &[String]) -> anyhow::Result<Value> {
    let py = python(args.python.as_ref());
    eprintln!("   baseline: vaderSentiment via {}", py.display());
    let dir = std::env::temp_dir().join(format!("osprey-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let input = dir.join("texts.json");
    std::fs::write(&input, serde_json::to_vec(texts)?)?;
    let script = r#"
import json, sys, time
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
texts = json.load(open(sys.argv[1]))
a = SentimentIntensityAnalyzer()
for t in texts[:200]:
    a.polarity_scores(t)
t0 = time.perf_counter()
for t in texts:
    a.polarity_scores(t)
dt = time.perf_counter() - t0
print(json.dumps({"engine": "vaderSentiment", "texts": len(texts), "seconds": dt, "texts_per_s": len(texts) / dt}))
"#;
    let out = Command::new(&py)
        .args(["-c", script, &input.display().to_string()])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("failed to run {} (pass --python or --no-baseline)", py.display()))?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!("vaderSentiment baseline failed ({}); install scripts/reference/requirements.txt", out.status);
    }
    serde_json::from_slice(&out.stdout).context("baseline printed no JSON")
}

/// `/v1/sentiment` and `/v1/emotion` under N concurrent single-text clients.
fn http(args: &AnalysisBenchArgs, texts: &[String]) -> anyhow::Result<Value> {
    let off = std::ffi::OsStr::new("off");
    let server = Server::start(
        &["--model", &args.model, "--log-level", "warn", "--max-concurrent-requests", "4096"],
        &[
            ("OSPREY_ANALYSIS__VADER_DIR", args.vader_dir.as_os_str()),
            // Measure the work, not the cache: every request is a miss.
            ("OSPREY_ANALYSIS__CACHE__SENTIMENT", off),
            ("OSPREY_ANALYSIS__CACHE__EMOTION", off),
        ],
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let base = server.base();
    rt.block_on(server.wait_ready(&client))?;
    // Bodies are serialised and the URL parsed once, so the client spends its
    // share of the two cores on requests, not on preparing them.
    let bodies: Arc<Vec<Vec<u8>>> =
        Arc::new(texts.iter().map(|t| serde_json::to_vec(&json!({ "inputs": t }))).collect::<Result<_, _>>()?);
    let mut out = json!({ "concurrency": args.concurrency, "rate": args.rate });
    for route in ["/v1/sentiment", "/v1/emotion"] {
        let url: reqwest::Url = format!("{base}{route}").parse()?;
        let mut entry = json!({});
        for (mode, rate) in [("saturated", None), ("paced", (args.rate > 0.0).then_some(args.rate))] {
            if mode == "paced" && rate.is_none() {
                continue;
            }
            let load = Load {
                client: &client,
                url: &url,
                bodies: &bodies,
                concurrency: args.concurrency,
                requests: args.requests,
                rate,
            };
            let (hist, secs, errors) = rt.block_on(load.run())?;
            let n = args.requests;
            eprintln!(
                "   http {route} {mode}, {} clients: {:.0} req/s, p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms, {errors} errors",
                args.concurrency,
                n as f64 / secs,
                ms(&hist, 0.5),
                ms(&hist, 0.95),
                ms(&hist, 0.99)
            );
            entry[mode] = json!({ "requests": n, "seconds": secs, "requests_per_s": n as f64 / secs, "errors": errors, "latency_ms": latency(&hist) });
        }
        out[route] = entry;
    }
    out["server_rss_peak_bytes"] = json!(rss_bytes(server.child.id(), "VmHWM:"));
    Ok(out)
}

/// N concurrent single-text clients on one route. Saturated (`rate: None`):
/// each client sends its next request as soon as the last one answers.
/// Paced: the clients together send `rate` requests per second on a fixed
/// schedule, and latency counts from each request's scheduled time, so a
/// stall is charged to every request it delays (no coordinated omission).
struct Load<'a> {
    client: &'a reqwest::Client,
    url: &'a reqwest::Url,
    bodies: &'a Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    requests: usize,
    rate: Option<f64>,
}

impl Load<'_> {
    async fn run(&self) -> anyhow::Result<(Histogram<u64>, f64, u64)> {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for k in 0..self.concurrency {
            let (client, bodies, next, url) =
                (self.client.clone(), Arc::clone(self.bodies), Arc::clone(&next), self.url.clone());
            let (n, c, rate) = (self.requests, self.concurrency, self.rate);
            tasks.push(tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3)?;
                let mut errors = 0u64;
                let mut j = 0usize;
                loop {
                    // Saturated clients share a counter; paced client k sends requests k, k + c, k + 2c, …
                    let (i, scheduled) = match rate {
                        None => (next.fetch_add(1, std::sync::atomic::Ordering::Relaxed), None),
                        Some(r) => {
                            let i = k + j * c;
                            j += 1;
                            (i, Some(started + Duration::from_secs_f64(i as f64 / r)))
                        }
                    };
                    if i >= n {
                        return Ok::<_, anyhow::Error>((h, errors));
                    }
                    if let Some(at) = scheduled {
                        tokio::time::sleep_until(at).await;
                    }
                    let t = scheduled.unwrap_or_else(tokio::time::Instant::now);
                    let r = client
                        .post(url.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(bodies[i % bodies.len()].clone())
                        .send()
                        .await?;
                    let ok = r.status().is_success();
                    r.bytes().await?;
                    h.record(t.elapsed().as_micros().max(1) as u64)?;
                    errors += u64::from(!ok);
                }
            }));
        }
        let (mut all, mut errors) = (Histogram::<u64>::new(3)?, 0);
        for t in tasks {
            let (h, e) = t.await??;
            all.add(h)?;
            errors += e;
        }
        Ok((all, started.elapsed().as_secs_f64(), errors))
    }
}

fn print_analysis(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    println!("\n## Analysis ({} texts)", r["texts"]);
    println!("| measurement | osprey | baseline | ratio |");
    println!("|---|---:|---:|---:|");
    let sent = f(&r["in_process"]["sentiment_texts_per_s"]);
    let base = f(&r["baseline_vader"]["texts_per_s"]);
    let ratio = if base > 0.0 { format!("{:.1}×", sent / base) } else { "–".into() };
    let base_s = if base > 0.0 { format!("{base:.0} (vaderSentiment)") } else { "–".into() };
    println!("| sentiment, in-process, texts/s | {sent:.0} | {base_s} | {ratio} |");
    println!(
        "| lexicon emotion, in-process, texts/s | {:.0} | – | – |",
        f(&r["in_process"]["lexicon_emotion_texts_per_s"])
    );
    println!(
        "| /v1/analyze (sentiment+emotion+summary+topics), posts/s | {:.1} | – | – |",
        f(&r["analyze"]["posts_per_s"])
    );
    println!(
        "| cached repeat p99, µs (analyze / emotion) | {:.1} / {:.1} | – | – |",
        f(&r["cached_repeat_us"]["analyze"]["p99"]),
        f(&r["cached_repeat_us"]["emotion"]["p99"])
    );
    for (route, mode) in [
        ("/v1/sentiment", "saturated"),
        ("/v1/sentiment", "paced"),
        ("/v1/emotion", "saturated"),
        ("/v1/emotion", "paced"),
    ] {
        let h = &r["http"][route][mode];
        if h.is_object() {
            println!(
                "| HTTP {route}, {} clients, {mode}: req/s; p50 / p95 / p99 ms | {:.0}; {:.2} / {:.2} / {:.2} | – | – |",
                r["http"]["concurrency"],
                f(&h["requests_per_s"]),
                f(&h["latency_ms"]["p50"]),
                f(&h["latency_ms"]["p95"]),
                f(&h["latency_ms"]["p99"])
            );
        }
    }
}

pub fn emotion_model(args: &EmotionModelBenchArgs) -> anyhow::Result<()> {
    let threads =
        if args.threads == 0 { std::thread::available_parallelism().map_or(1, usize::from) } else { args.threads };
    let lines: Vec<String> = std::fs::read_to_string(&args.corpus)
        .with_context(|| format!("failed to read {}", args.corpus.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    anyhow::ensure!(!lines.is_empty(), "{} is empty", args.corpus.display());
    let texts: Vec<String> = lines.iter().cycle().take(args.texts).cloned().collect();
    let mut report = json!({ "machine": machine(), "model": args.model, "threads": threads, "texts": texts.len() });

    let check_n = 32.min(texts.len());
    if !args.no_baseline {
        report["baseline"] = emotion_baseline(args, threads, check_n)?;
    }
    let settings = ModelSettings {
        model: args.model.clone(),
        backend: args.backend.parse().map_err(anyhow::Error::msg)?,
        threads,
        ..ModelSettings::default()
    };
    let files = resolve_model(&args.model, &ResolveOptions::default())
        .context("bench model missing: run .venv/bin/python scripts/bench/make_emotion_bench_model.py")?;
    let batching = BatchingSettings { max_client_batch_size: 4096, ..BatchingSettings::default() };
    let classifier = Classifier::load(files, &settings, &batching)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut results = Vec::new();
    for &bs in &args.batch_sizes {
        let work: Vec<Vec<String>> = texts.chunks(bs.max(1)).map(<[String]>::to_vec).collect();
        rt.block_on(classifier.classify(work[0].clone(), Truncation::Truncate))?;
        let mut runs = Vec::new();
        for _ in 0..args.repeats.max(1) {
            let t = Instant::now();
            for chunk in &work {
                rt.block_on(classifier.classify(chunk.clone(), Truncation::Truncate))?;
            }
            runs.push(texts.len() as f64 / t.elapsed().as_secs_f64());
        }
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let tps = sorted[sorted.len() / 2];
        eprintln!("   osprey batch {bs:>3}: {tps:8.1} texts/s (median of {})", runs.len());
        results.push(json!({ "batch_size": bs, "texts_per_sec": tps, "runs": runs }));
    }
    report["osprey"] = json!({ "backend": classifier.info().backend, "results": results });

    // Same logits as transformers on the first texts?
    if let Some(path) = report["baseline"]["logits_file"].as_str().map(str::to_string) {
        let dump: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let want: Vec<Vec<f32>> = serde_json::from_value(dump["logits"].clone())?;
        let got = rt.block_on(classifier.classify(texts[..check_n].to_vec(), Truncation::Truncate))?;
        let max_diff = got
            .iter()
            .zip(&want)
            .flat_map(|(g, w)| g.logits.iter().zip(w).map(|(a, b)| (a - b).abs()))
            .fold(0f32, f32::max);
        eprintln!("   logits vs transformers on {check_n} texts: max |diff| {max_diff:.2e}");
        report["logits_max_abs_diff"] = json!(max_diff);
        let _ = std::fs::remove_file(&path);
    }

    let at = |v: &Value, key: &str, bs: u64| {
        v["results"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["batch_size"].as_u64() == Some(bs)))
            .and_then(|x| x[key].as_f64())
    };
    println!("\n## Emotion classifier: osprey vs transformers ({} texts, {threads} threads)", texts.len());
    println!("| batch | osprey texts/s | transformers texts/s | ratio |");
    println!("|---:|---:|---:|---:|");
    for &bs in &args.batch_sizes {
        let ours = at(&report["osprey"], "texts_per_sec", bs as u64).unwrap_or(0.0);
        let base = at(&report["baseline"], "texts_per_sec", bs as u64);
        let ratio = base.map_or("–".into(), |b| format!("{:.2}×", ours / b));
        println!("| {bs} | {ours:.1} | {} | {ratio} |", base.map_or("–".into(), |b| format!("{b:.1}")));
    }
    if let Some(d) = report["logits_max_abs_diff"].as_f64() {
        println!("logits vs transformers, max |diff| over {check_n} texts: {d:.2e}");
    }
    write_report(args.out.as_ref(), &report)
}

fn emotion_baseline(args: &EmotionModelBenchArgs, threads: usize, check_n: usize) -> anyhow::Result<Value> {
    let py = python(args.python.as_ref());
    eprintln!("   baseline: transformers via {}", py.display());
    let logits = std::env::temp_dir().join(format!("osprey-emotion-logits-{}.json", std::process::id()));
    let out = Command::new(&py)
        .args(["scripts/bench/emotion_baseline.py", "--model", &args.model])
        .args(["--corpus", &args.corpus.display().to_string(), "--texts", &args.texts.to_string()])
        .args(["--threads", &threads.to_string(), "--repeats", &args.repeats.max(1).to_string()])
        .args(["--batch-sizes", &args.batch_sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")])
        .args(["--dump-logits", &check_n.to_string(), "--dump-path", &logits.display().to_string()])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("failed to run {} (pass --python or --no-baseline)", py.display()))?;
    if !out.status.success() {
        bail!("transformers baseline failed ({}); install scripts/reference/requirements.txt", out.status);
    }
    let mut v: Value = serde_json::from_slice(&out.stdout).context("baseline printed no JSON")?;
    v["logits_file"] = json!(logits.display().to_string());
    Ok(v)
}
