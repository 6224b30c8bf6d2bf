//! `osprey bench suite`: one run over the usual categories, each figure
//! measured several times, printed as a table and written as JSON; with
//! `--baseline` it compares each figure with an earlier report and flags a
//! regression only beyond the noise band the repetitions measured
//! (see [`crate::bench_compare`]).
//!
//! Categories:
//! - `model`: loading the model from its files (the OS page cache is warm
//!   after the first repetition), its first request, and a look-up of the
//!   loaded model in the registry (what every request pays);
//! - `encode`: in-process embedding throughput by batch size;
//! - `analysis`: sentiment, lexicon emotion, summaries, trajectories and the
//!   one-pass analyze, in-process with every result cache off;
//! - `cache`: L1 get and insert through the cache, and L2 (Redis) look-ups;
//! - `store`: batched analysis writes into SQLite and PostgreSQL;
//! - `http`: `osprey serve` started per repetition: start to ready,
//!   `/v1/analyze` posts/s and latency, and single-text `/v1/sentiment`
//!   requests/s over real loopback HTTP.
//!
//! Figures from a debug build or a busy machine mean little: before it starts
//! the suite measures how busy the CPUs already are for a second, records it
//! in the report and warns above 15 %.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use osprey_engine::model::{resolve_model, ResolveOptions};
use osprey_engine::{BatchingSettings, EmbedOptions, Embedder, ModelRegistry, ModelSettings};
use osprey_server::analysis::Analyzer;
use osprey_types::analysis::{AnalyzeRequest, EmotionOptions, Post, SmoothingSpec, SummaryMethod, Task};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::bench::{machine, read_corpus, Server};
use crate::bench_analysis::{topic_request, uncached_settings, unique_texts};
use crate::bench_compare::{self as cmp, Better, Comparison, Metric};

/// Exit status when a figure regressed beyond its noise band.
pub const EXIT_REGRESSION: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Model,
    Encode,
    Analysis,
    Cache,
    Store,
    Http,
}

#[derive(Debug, clap::Args)]
pub struct SuiteArgs {
    /// Categories to run, in this order whatever the order given.
    #[arg(long, value_delimiter = ',', default_value = "model,encode,analysis,cache,store,http")]
    pub categories: Vec<Category>,
    /// Times each figure is measured; the median is reported, and the spread
    /// sets the noise band (at least 3 for a meaningful band).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Small workloads: a smoke run that checks every benchmark works (CI).
    #[arg(long)]
    pub quick: bool,
    /// Smallest noise band, relative (0.03 = ±3 %), for figures whose
    /// repetitions happened to agree closely.
    #[arg(long, default_value_t = 0.03)]
    pub noise_floor: f64,
    /// An earlier report to compare with; any regression beyond the noise
    /// band makes the exit status 3.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Write the report here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Embedding model directory.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    pub model: String,
    /// VADER lexicon directory.
    #[arg(long, default_value = "models/vader")]
    pub vader_dir: PathBuf,
    /// Directory holding short.txt and medium.txt.
    #[arg(long, default_value = "fixtures/bench")]
    pub corpus_dir: PathBuf,
    /// Redis for the L2 figures (loopback only).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Skip the L2 figures.
    #[arg(long)]
    pub no_redis: bool,
    /// PostgreSQL for the store figures (loopback only; a throwaway schema).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_url: String,
    /// Skip the PostgreSQL figures.
    #[arg(long)]
    pub no_postgres: bool,
    /// Concurrent clients for the single-text HTTP figure.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// How much work one repetition does.
#[derive(Debug, Clone, Serialize)]
struct Sizes {
    encode_texts: usize,
    batch_sizes: Vec<usize>,
    analysis_texts: usize,
    analysis_posts: usize,
    posts_per_request: usize,
    cache_run: Duration,
    l2_requests: usize,
    store_records: usize,
    http_posts: usize,
    http_requests: usize,
    cached_lookups: usize,
    /// Measurements that finish sooner are repeated until this much time has passed.
    min_measure: Duration,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                encode_texts: 32,
                batch_sizes: vec![1, 8, 32],
                analysis_texts: 512,
                analysis_posts: 16,
                posts_per_request: 8,
                cache_run: Duration::from_millis(100),
                l2_requests: 5_000,
                store_records: 500,
                http_posts: 16,
                http_requests: 200,
                cached_lookups: 10_000,
                min_measure: Duration::from_millis(50),
            }
        } else {
            Sizes {
                encode_texts: 512,
                batch_sizes: vec![1, 8, 32, 128],
                analysis_texts: 20_000,
                analysis_posts: 128,
                posts_per_request: 16,
                cache_run: Duration::from_millis(500),
                l2_requests: 100_000,
                store_records: 20_000,
                http_posts: 256,
                http_requests: 10_000,
                cached_lookups: 1_000_000,
                min_measure: Duration::from_millis(500),
            }
        }
    }
}

/// The JSON report.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub version: String,
    pub started: String,
    pub machine: Value,
    pub settings: Value,
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// Samples by metric, in the order first seen.
struct Recorder {
    floor: f64,
    entries: Vec<(String, &'static str, &'static str, Better, Vec<f64>)>,
}

impl Recorder {
    fn add(&mut self, id: impl Into<String>, description: &'static str, unit: &'static str, better: Better, v: f64) {
        let id = id.into();
        match self.entries.iter_mut().find(|e| e.0 == id) {
            Some(e) => e.4.push(v),
            None => self.entries.push((id, description, unit, better, vec![v])),
        }
    }

    fn finish(self) -> anyhow::Result<Vec<Metric>> {
        self.entries
            .into_iter()
            .map(|(id, description, unit, better, samples)| {
                if let Some(bad) = samples.iter().find(|v| !v.is_finite()) {
                    bail!("{id} measured {bad}: the benchmark is broken");
                }
                Ok(Metric::new(&id, description, unit, better, samples, self.floor))
            })
            .collect()
    }
}

pub fn suite(args: &SuiteArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.repeats >= 1, "--repeats must be at least 1");
    anyhow::ensure!(
        args.noise_floor.is_finite() && (0.0..1.0).contains(&args.noise_floor),
        "--noise-floor must be in [0, 1)"
    );
    if !args.no_redis && args.categories.contains(&Category::Cache) {
        crate::bench_storage::loopback_only(&args.redis_url)?;
    }
    if !args.no_postgres && args.categories.contains(&Category::Store) {
        crate::bench_storage::loopback_only(&args.postgres_url)?;
    }
    // Read the baseline first: a bad path should not cost a whole run.
    let baseline = args.baseline.as_ref().map(|p| read_report(p).map(|r| (p.display().to_string(), r))).transpose()?;
    if args.repeats < 3 {
        eprintln!("note: with fewer than 3 repeats the noise band and the comparisons rest on very little");
    }
    let sizes = Sizes::new(args.quick);
    let settings = json!({
        "repeats": args.repeats, "quick": args.quick, "noise_floor": args.noise_floor,
        "model": args.model, "sizes": sizes, "concurrency": args.concurrency, "build": BUILD,
    });
    if let Some((name, b)) = &baseline {
        comparable(name, &b.settings, &settings)?;
    }
    let started = humantime_serde::re::humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let busy = busy_fraction(Duration::from_secs(1));
    if let Some(b) = busy.filter(|b| *b > BUSY_WARNING) {
        eprintln!(
            "warning: other processes kept {:.0} % of the machine's CPU busy just before the run; \
             figures will be low and noisy, and comparisons with a run on a quiet machine misleading",
            b * 100.0
        );
    }
    let mut rec = Recorder { floor: args.noise_floor, entries: Vec::new() };
    let categories: BTreeSet<Category> = args.categories.iter().copied().collect();
    for category in categories {
        let t = Instant::now();
        eprintln!("== {category:?} ({} repetitions)", args.repeats);
        match category {
            Category::Model => model(args, &sizes, &mut rec),
            Category::Encode => encode(args, &sizes, &mut rec),
            Category::Analysis => analysis(args, &sizes, &mut rec),
            Category::Cache => cache(args, &sizes, &mut rec),
            Category::Store => store(args, &sizes, &mut rec),
            Category::Http => http(args, &sizes, &mut rec),
        }
        .with_context(|| format!("the {category:?} benchmarks failed"))?;
        eprintln!("   {:.1} s", t.elapsed().as_secs_f64());
    }
    let metrics = rec.finish()?;
    let comparison = baseline.map(|(name, b)| cmp::compare(&name, &b.metrics, &metrics));
    print!("{}", cmp::table(&metrics, comparison.as_ref()));
    let regressions = comparison.as_ref().map_or(0, |c| c.regressions);
    let report = Report {
        schema: cmp::SCHEMA.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started,
        machine: json!({ "host": machine(), "busy_before_start": busy }),
        settings,
        metrics,
        comparison,
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("failed to write {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(if regressions > 0 { ExitCode::from(EXIT_REGRESSION) } else { ExitCode::SUCCESS })
}

/// How this binary was built: figures from a debug build are not comparable with a release build's.
const BUILD: &str = if cfg!(debug_assertions) { "debug" } else { "release" };

/// Refuses a baseline measured with other workloads or another build: its
/// figures would differ for reasons that are not the code's.
fn comparable(name: &str, baseline: &Value, now: &Value) -> anyhow::Result<()> {
    let differ: Vec<String> = ["quick", "sizes", "model", "concurrency", "build"]
        .into_iter()
        .filter(|k| baseline.get(k) != now.get(k))
        .map(|k| format!("{k}: {} then, {} now", baseline.get(k).unwrap_or(&Value::Null), now[k]))
        .collect();
    anyhow::ensure!(
        differ.is_empty(),
        "the baseline {name} was measured differently, so its figures are not comparable ({})",
        differ.join("; ")
    );
    Ok(())
}

/// Share of the machine's CPU already busy before the run at which it warns.
const BUSY_WARNING: f64 = 0.15;

/// The share of all cores' time spent busy over `window`, from `/proc/stat`
/// (`None` where there is no such file).
fn busy_fraction(window: Duration) -> Option<f64> {
    fn sample() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
        let v: Vec<u64> = cpu.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal …
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        let total: u64 = v.iter().take(8).sum();
        Some((total - idle, total))
    }
    let (busy0, total0) = sample()?;
    std::thread::sleep(window);
    let (busy1, total1) = sample()?;
    let total = total1.saturating_sub(total0);
    (total > 0).then(|| busy1.saturating_sub(busy0) as f64 / total as f64)
}

fn read_report(path: &PathBuf) -> anyhow::Result<Report> {
    let text = std::fs::read(path).with_context(|| format!("failed to read the baseline {}", path.display()))?;
    let report: Report = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an osprey bench suite report", path.display()))?;
    anyhow::ensure!(
        report.schema == cmp::SCHEMA,
        "{} has schema {:?}; this osprey reads {:?}",
        path.display(),
        report.schema,
        cmp::SCHEMA
    );
    Ok(report)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn model_settings(args: &SuiteArgs) -> ModelSettings {
    ModelSettings { model: args.model.clone(), ..ModelSettings::default() }
}

fn batching() -> BatchingSettings {
    BatchingSettings { max_client_batch_size: 4096, ..BatchingSettings::default() }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn model(args: &SuiteArgs, sizes: &Sizes, rec: &mut Recorder) -> anyhow::Result<()> {
    let rt = runtime()?;
    let files = resolve_model(&args.model, &ResolveOptions::default())?;
    let settings = model_settings(args);
    for _ in 0..args.repeats {
        let t = Instant::now();
        let embedder = Embedder::load(files.clone(), &settings, &batching())?;
        rec.add("model.load_ms", "model files to a ready embedder", "ms", Better::Lower, ms(t.elapsed()));
        let t = Instant::now();
        rt.block_on(embedder.embed(vec!["the first request after a load".into()], EmbedOptions::default()))?;
        rec.add("model.first_request_ms", "first embedding after a load", "ms", Better::Lower, ms(t.elapsed()));
    }
    let registry = ModelRegistry::new("default", settings, batching(), ResolveOptions::default());
    rt.block_on(registry.preload())?;
    for _ in 0..args.repeats {
        let (n, secs) = rt.block_on(async {
            let (t, mut n) = (Instant::now(), 0);
            while n == 0 || t.elapsed() < sizes.min_measure {
                for _ in 0..sizes.cached_lookups {
                    std::hint::black_box(registry.get("default").await?);
                }
                n += sizes.cached_lookups;
            }
            Ok::<_, anyhow::Error>((n, t.elapsed().as_secs_f64()))
        })?;
        rec.add(
            "model.cached_lookup_ns",
            "a loaded model from the registry",
            "ns",
            Better::Lower,
            secs * 1e9 / n as f64,
        );
    }
    Ok(())
}

fn encode(args: &SuiteArgs, sizes: &Sizes, rec: &mut Recorder) -> anyhow::Result<()> {
    let rt = runtime()?;
    let files = resolve_model(&args.model, &ResolveOptions::default())?;
    let embedder = Embedder::load(files, &model_settings(args), &batching())?;
    let texts = read_corpus(&args.corpus_dir, "short", sizes.encode_texts)?;
    rt.block_on(embedder.embed(texts[..8.min(texts.len())].to_vec(), EmbedOptions::default()))?;
    for _ in 0..args.repeats {
        for &bs in &sizes.batch_sizes {
            // Batch 1 is slow per text; a quarter of the texts measure it as well.
            let n = if bs == 1 { (texts.len() / 4).max(8) } else { texts.len() };
            let t = Instant::now();
            for chunk in texts[..n].chunks(bs) {
                rt.block_on(embedder.embed(chunk.to_vec(), EmbedOptions::default()))?;
            }
            let id = format!("encode.batch_{bs}_texts_per_s");
            rec.add(id, "in-process embedding, short texts", "texts/s", Better::Higher, rate(n, t));
        }
    }
    Ok(())
}

fn rate(n: usize, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64().max(1e-9)
}

fn api(e: osprey_server::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Awaits `calls`, `in_flight` at a time, and fails on the first error.
async fn drain<T>(
    calls: impl futures::Stream<Item = impl std::future::Future<Output = osprey_server::error::ApiResult<T>>>,
    in_flight: usize,
) -> anyhow::Result<()> {
    use futures::TryStreamExt as _;
    calls.buffer_unordered(in_flight).map_err(api).try_for_each(|_| async { Ok(()) }).await
}

/// `n` posts with the given bodies (cycled), ids `<tag>-<i>`.
pub(crate) fn posts(bodies: &[String], n: usize, tag: &str) -> Vec<Post> {
    (0..n)
        .map(|i| Post {
            id: format!("{tag}-{i}"),
            title: format!("Post {i} ({tag})"),
            body: bodies[i % bodies.len()].clone(),
            author: None,
            created: None,
            persona_id: None,
            source: None,
            external_id: None,
        })
        .collect()
}

/// One-pass analyze of `posts`: sentiment, emotion, a 3-sentence centroid summary, topics of the set `bench`.
pub(crate) fn analyze_request(posts: Vec<Post>) -> AnalyzeRequest {
    AnalyzeRequest {
        posts,
        tasks: vec![Task::Sentiment, Task::Emotion, Task::Summary, Task::Topics],
        topic_set: Some("bench".into()),
        threshold: None,
        summary_k: Some(3),
        summary_method: SummaryMethod::Centroid,
        smoothing: SmoothingSpec::default(),
        emotion: EmotionOptions::default(),
        store: None,
        reuse: None,
    }
}

fn analysis(args: &SuiteArgs, sizes: &Sizes, rec: &mut Recorder) -> anyhow::Result<()> {
    let rt = runtime()?;
    let short = read_corpus(&args.corpus_dir, "short", 1024)?;
    let medium = read_corpus(&args.corpus_dir, "medium", 256)?;
    let registry = Arc::new(ModelRegistry::new("default", model_settings(args), batching(), ResolveOptions::default()));
    rt.block_on(registry.preload())?;
    let l1 = osprey_cache::Cache::l1_only(osprey_cache::L1Settings::default())?;
    let analyzer = Arc::new(Analyzer::new(uncached_settings(&args.vader_dir), registry, None, None, l1));
    analyzer.readiness().map_err(anyhow::Error::msg)?;
    rt.block_on(analyzer.put_topics("bench", topic_request())).map_err(api)?;
    let per_call = 256;
    for round in 0..args.repeats {
        // Fresh texts each round, so nothing downstream can remember them.
        let texts: Vec<String> =
            unique_texts(&short, sizes.analysis_texts).into_iter().map(|t| format!("{t} r{round}")).collect();
        let bodies: Vec<String> = medium.iter().map(|b| format!("{b} (r{round})")).collect();
        rt.block_on(async {
            let (t, mut done) = (Instant::now(), 0);
            while done == 0 || t.elapsed() < sizes.min_measure {
                for chunk in texts.chunks(per_call) {
                    analyzer.sentiment(chunk.to_vec()).await.map_err(api)?;
                }
                done += texts.len();
            }
            rec.add(
                "analysis.sentiment_texts_per_s",
                "VADER, 256 texts a call",
                "texts/s",
                Better::Higher,
                rate(done, t),
            );
            let (t, mut done) = (Instant::now(), 0);
            while done == 0 || t.elapsed() < sizes.min_measure {
                for chunk in texts.chunks(per_call) {
                    analyzer.emotion(chunk.to_vec(), &EmotionOptions::default()).await.map_err(api)?;
                }
                done += texts.len();
            }
            rec.add(
                "analysis.emotion_lexicon_texts_per_s",
                "lexicon emotion, 256 texts a call",
                "texts/s",
                Better::Higher,
                rate(done, t),
            );

            let n = sizes.analysis_posts;
            let t = Instant::now();
            let bodies_n = || futures::stream::iter(bodies.iter().cycle().take(n).cloned());
            drain(bodies_n().map(|b| analyzer.summarize(b, Some(3), SummaryMethod::Centroid)), 8).await?;
            rec.add(
                "analysis.summary_posts_per_s",
                "centroid summaries of 100-150-word posts, 8 in flight",
                "posts/s",
                Better::Higher,
                rate(n, t),
            );

            let emotion = EmotionOptions::default();
            let (t, mut done) = (Instant::now(), 0);
            while done == 0 || t.elapsed() < sizes.min_measure {
                drain(bodies_n().map(|b| analyzer.trajectory(b, SmoothingSpec::default(), &emotion)), 8).await?;
                done += n;
            }
            rec.add(
                "analysis.trajectory_posts_per_s",
                "emotion trajectories of 100-150-word posts, 8 in flight",
                "posts/s",
                Better::Higher,
                rate(done, t),
            );

            let batch = posts(&bodies, n, &format!("r{round}"));
            let t = Instant::now();
            let chunks = futures::stream::iter(batch.chunks(sizes.posts_per_request.max(1)).map(<[Post]>::to_vec));
            drain(chunks.map(|chunk| analyzer.analyze(analyze_request(chunk))), 2).await?;
            rec.add(
                "analysis.analyze_posts_per_s",
                "one pass: sentiment, emotion, summary, topics; 2 requests in flight",
                "posts/s",
                Better::Higher,
                rate(n, t),
            );
            Ok::<_, anyhow::Error>(())
        })?;
    }
    Ok(())
}

fn cache(args: &SuiteArgs, sizes: &Sizes, rec: &mut Recorder) -> anyhow::Result<()> {
    // One runtime thread: Redis needs the other core (the L1 runs have their own threads).
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    for _ in 0..args.repeats {
        let opts = osprey_cache::bench::BenchOptions {
            duration: sizes.cache_run,
            redis_url: (!args.no_redis).then(|| args.redis_url.clone()),
            l2_requests: sizes.l2_requests,
            redis_benchmark: false,
            ..osprey_cache::bench::BenchOptions::default()
        };
        let report = rt.block_on(osprey_cache::bench::measure(opts)).map_err(|e| anyhow::anyhow!("{e}"))?;
        rec.add(
            "cache.l1_get_ops_per_s",
            "L1 look-ups, one thread per core",
            "ops/s",
            Better::Higher,
            report.l1.get.ops_per_s,
        );
        rec.add(
            "cache.l1_insert_ops_per_s",
            "L1 inserts, one thread per core",
            "ops/s",
            Better::Higher,
            report.l1.insert.ops_per_s,
        );
        if args.no_redis {
            continue;
        }
        let Some(l2) = report.l2 else {
            bail!("the L2 figures could not be measured ({}); pass --no-redis to skip them", report.notes.join("; "));
        };
        if l2.misses > 0 {
            eprintln!("   warning: {} Redis look-ups missed (timeouts?): the L2 figures count them as done", l2.misses);
        }
        rec.add("cache.l2_get_ops_per_s", "Redis look-ups, 800 in flight", "ops/s", Better::Higher, l2.get_ops_per_s);
        rec.add(
            "cache.l2_get_many_keys_per_s",
            "Redis look-ups of 16 keys at once",
            "keys/s",
            Better::Higher,
            l2.get_many_ops_per_s,
        );
    }
    Ok(())
}

fn store(args: &SuiteArgs, sizes: &Sizes, rec: &mut Recorder) -> anyhow::Result<()> {
    let rt = runtime()?;
    for _ in 0..args.repeats {
        let opts = osprey_store::bench::BenchOptions {
            records: sizes.store_records,
            // The row-at-a-time baseline is `osprey bench store`'s business; keep a token amount.
            naive_records: 1,
            postgres_url: (!args.no_postgres).then(|| args.postgres_url.clone()),
            print: false,
            ..osprey_store::bench::BenchOptions::default()
        };
        let report = rt.block_on(osprey_store::bench::run(opts))?;
        for run in report.runs.iter().filter(|r| r.mode == "batched") {
            let id = match run.backend {
                osprey_store::Backend::Sqlite => "store.sqlite_rows_per_s",
                osprey_store::Backend::Postgres => "store.postgres_rows_per_s",
            };
            rec.add(id, "batched writes of posts and analyses", "rows/s", Better::Higher, run.rows_per_s);
        }
    }
    Ok(())
}

fn http(args: &SuiteArgs, sizes: &Sizes, rec: &mut Recorder) -> anyhow::Result<()> {
    let medium = read_corpus(&args.corpus_dir, "medium", 256)?;
    let short = read_corpus(&args.corpus_dir, "short", 1024)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let token = throwaway_token()?;
    let off = std::ffi::OsStr::new("off");
    for round in 0..args.repeats {
        let t = Instant::now();
        let server = Server::start(
            &["--model", &args.model, "--log-level", "warn", "--max-concurrent-requests", "4096"],
            &[
                ("OSPREY_ANALYSIS__VADER_DIR", args.vader_dir.as_os_str()),
                ("OSPREY_SECURITY__ADMIN_TOKEN", std::ffi::OsStr::new(&token)),
                ("OSPREY_ANALYSIS__CACHE__SENTIMENT", off),
                ("OSPREY_ANALYSIS__CACHE__EMOTION", off),
                ("OSPREY_ANALYSIS__CACHE__SUMMARY", off),
                ("OSPREY_ANALYSIS__CACHE__ANALYZE", off),
            ],
        )?;
        rt.block_on(server.wait_ready(&client))?;
        rec.add(
            "http.start_to_ready_s",
            "osprey serve to /ready answering 200",
            "s",
            Better::Lower,
            t.elapsed().as_secs_f64(),
        );
        let base = server.base();
        rt.block_on(async {
            let put =
                client.put(format!("{base}/v1/topics/bench")).bearer_auth(&token).json(&topic_request()).send().await?;
            anyhow::ensure!(put.status().is_success(), "PUT /v1/topics/bench answered {}", put.status());

            // /v1/analyze: requests of several posts, 2 in flight, stored in the server's SQLite store.
            let bodies: Vec<String> = medium.iter().map(|b| format!("{b} (r{round})")).collect();
            let all = posts(&bodies, sizes.http_posts, &format!("r{round}"));
            let warm = analyze_request(posts(&bodies, 2, &format!("warm{round}")));
            post_json(&client, &format!("{base}/v1/analyze"), &warm).await?;
            let url = format!("{base}/v1/analyze");
            let t = Instant::now();
            let mut hist = Histogram::<u64>::new(3)?;
            let requests = futures::stream::iter(all.chunks(sizes.posts_per_request.max(1)).map(<[Post]>::to_vec))
                .map(|chunk| {
                    let (client, url) = (client.clone(), url.clone());
                    async move { post_json(&client, &url, &analyze_request(chunk)).await }
                })
                .buffer_unordered(2);
            for took in requests.collect::<Vec<_>>().await {
                hist.record(took?.as_micros().max(1) as u64)?;
            }
            rec.add(
                "http.analyze_posts_per_s",
                "POST /v1/analyze, stored, 2 requests in flight",
                "posts/s",
                Better::Higher,
                rate(all.len(), t),
            );
            rec.add(
                "http.analyze_request_p50_ms",
                "POST /v1/analyze latency",
                "ms",
                Better::Lower,
                hist.value_at_quantile(0.5) as f64 / 1e3,
            );

            // /v1/sentiment: one text a request from many clients: the server's per-request overhead.
            let url = format!("{base}/v1/sentiment");
            // Warm-up: as many requests as clients, so the timed ones find their connections open.
            let warm =
                futures::stream::iter(0..args.concurrency.max(1))
                    .map(|i| {
                        let (client, url) = (client.clone(), url.clone());
                        async move {
                            post_json(&client, &url, &json!({ "inputs": [format!("warm-up {i} r{round}")] })).await
                        }
                    })
                    .buffer_unordered(args.concurrency.max(1));
            warm.collect::<Vec<_>>().await.into_iter().collect::<Result<Vec<_>, _>>()?;
            let texts = unique_texts(&short, sizes.http_requests);
            let t = Instant::now();
            let mut hist = Histogram::<u64>::new(3)?;
            let requests = futures::stream::iter(texts.into_iter().map(|s| format!("{s} r{round}")))
                .map(|text| {
                    let (client, url) = (client.clone(), url.clone());
                    async move { post_json(&client, &url, &json!({ "inputs": [text] })).await }
                })
                .buffer_unordered(args.concurrency.max(1));
            for took in requests.collect::<Vec<_>>().await {
                hist.record(took?.as_micros().max(1) as u64)?;
            }
            rec.add(
                "http.sentiment_requests_per_s",
                "POST /v1/sentiment, one text, concurrent clients",
                "req/s",
                Better::Higher,
                rate(sizes.http_requests, t),
            );
            rec.add(
                "http.sentiment_request_p99_ms",
                "POST /v1/sentiment latency",
                "ms",
                Better::Lower,
                hist.value_at_quantile(0.99) as f64 / 1e3,
            );
            Ok::<_, anyhow::Error>(())
        })?;
        drop(server);
    }
    Ok(())
}

/// Posts `body` and reads the whole answer; a non-2xx status is an error.
async fn post_json<T: Serialize>(client: &reqwest::Client, url: &str, body: &T) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let resp = client.post(url).json(body).send().await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]));
    }
    Ok(t.elapsed())
}

/// A random admin token for the benchmark's own servers.
fn throwaway_token() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("bench-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}
