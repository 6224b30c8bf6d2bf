//! `osprey bench watch`: end-to-end throughput of a watch from a local
//! JSONL file (dedup, near-duplicates, topic filter, TF-IDF summary, VADER,
//! lexicon emotion and trajectory, stored in SQLite or PostgreSQL), in
//! process, against the same pipeline in Python
//! (`scripts/bench/watch_baseline.py`) on the same posts and topics.
//!
//! Posts are made from `fixtures/bench/short.txt` (forum-style sentences
//! on ten topics): a title and two to six body sentences each, drawn with
//! a fixed seed, so every run reads the same file. The watch keeps posts
//! about four of the ten topics.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct WatchBenchArgs {
    /// Posts in the JSONL file.
    #[arg(long, default_value_t = 20_000)]
    pub posts: usize,
    /// Runs of the osprey pipeline (each on a fresh store); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Posts per pipeline batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    pub model: String,
    #[arg(long, default_value = "models/vader")]
    pub vader_dir: PathBuf,
    /// Sentences to draw posts from.
    #[arg(long, default_value = "fixtures/bench/short.txt")]
    pub corpus: PathBuf,
    /// PostgreSQL URL to store into instead of SQLite (tables are shared:
    /// use a scratch database).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Characters of title and body embedded per post (the watch's `head_chars`).
    #[arg(long, default_value_t = 512)]
    pub head_chars: usize,
    /// f32, or int8 projections on ONNX Runtime (model.precision).
    #[arg(long, default_value = "f32")]
    pub precision: osprey_engine::Precision,
    /// Keep every post (topic threshold -1): the analysis runs on all of them.
    #[arg(long)]
    pub keep_all: bool,
    /// A Python with sentence-transformers, vaderSentiment and scikit-learn
    /// (scripts/reference/requirements.txt): runs the baseline on the first
    /// `--python-posts` posts.
    #[arg(long)]
    pub python: Option<PathBuf>,
    #[arg(long, default_value_t = 2_000)]
    pub python_posts: usize,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The watch's topics: four of the corpus's ten.
fn topics() -> Value {
    json!([
        {"label": "programming", "examples": ["Rust borrow checker errors", "refactoring a Python codebase", "compiler and build times", "code review of a pull request"]},
        {"label": "databases", "examples": ["slow SQL query needs an index", "PostgreSQL vacuum and replication", "Redis cache eviction", "database migration went wrong"]},
        {"label": "machine learning and GPUs", "examples": ["training a model on a GPU", "CUDA out of memory", "quantizing an LLM", "fine-tuning transformers"]},
        {"label": "devops", "examples": ["Kubernetes deployment failed", "CI pipeline is slow", "Docker image size", "on-call incident and monitoring"]}
    ])
}

/// The corpus's topics in `scripts/bench/make_corpus.py`'s sorted order:
/// line `i` of `short.txt` is about `CORPUS_TOPICS[i % 10]`.
const CORPUS_TOPICS: [&str; 10] =
    ["cooking", "databases", "devops", "feelings", "finance", "gpus", "home", "programming", "sports", "travel"];

/// The corpus topics the watch's four topics stand for.
const WATCHED: [&str; 4] = ["programming", "databases", "gpus", "devops"];

/// `n` posts as JSONL lines, drawn with a fixed seed from `sentences`, and
/// the ids of the posts whose topic is one the watch keeps. Each post keeps
/// to one topic as real posts do: its title and body sentences come from
/// that topic, with a one-in-eight chance per body sentence of a digression
/// into another.
fn make_posts(sentences: &[String], n: usize) -> (String, std::collections::HashSet<String>) {
    let by_topic: Vec<Vec<&str>> = (0..CORPUS_TOPICS.len())
        .map(|t| sentences.iter().skip(t).step_by(CORPUS_TOPICS.len()).map(String::as_str).collect())
        .collect();
    let mut rng = fastrand::Rng::with_seed(0x05b7_e1a0);
    let now = chrono::Utc::now().timestamp();
    let mut out = String::with_capacity(n * 400);
    let mut on_topic = std::collections::HashSet::new();
    let pick = |rng: &mut fastrand::Rng, t: usize| by_topic[t][rng.usize(..by_topic[t].len())];
    for i in 0..n {
        let topic = rng.usize(..CORPUS_TOPICS.len());
        let id = format!("t3_{i:07}");
        if WATCHED.contains(&CORPUS_TOPICS[topic]) {
            on_topic.insert(id.clone());
        }
        let title = pick(&mut rng, topic);
        let k = rng.usize(2..=6);
        let body: Vec<&str> = (0..k)
            .map(|_| {
                let t = if rng.usize(..8) == 0 { rng.usize(..CORPUS_TOPICS.len()) } else { topic };
                pick(&mut rng, t)
            })
            .collect();
        let line = json!({
            "id": id,
            "title": title.trim_end_matches('.'),
            "body": body.join(" "),
            "author": format!("user{}", rng.u32(..5000)),
            "created_utc": now - rng.i64(0..86_400),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    (out, on_topic)
}

/// Precision and recall of the kept posts against the posts' true topics.
fn accuracy(kept: &[String], on_topic: &std::collections::HashSet<String>) -> (f64, f64) {
    let hits = kept.iter().filter(|id| on_topic.contains(*id)).count() as f64;
    let precision = if kept.is_empty() { 0.0 } else { hits / kept.len() as f64 };
    let recall = if on_topic.is_empty() { 0.0 } else { hits / on_topic.len() as f64 };
    (precision, recall)
}

pub fn run(args: WatchBenchArgs) -> anyhow::Result<()> {
    if args.posts == 0 || args.repeats == 0 {
        anyhow::bail!("--posts and --repeats must be at least 1");
    }
    let corpus = std::fs::read_to_string(&args.corpus)
        .with_context(|| format!("reading {} (run from the repository root)", args.corpus.display()))?;
    let sentences: Vec<String> = corpus.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    anyhow::ensure!(!sentences.is_empty(), "{} holds no sentences", args.corpus.display());
    let dir = tempfile::tempdir().context("temporary directory")?;
    let posts_path = dir.path().join("posts.jsonl");
    anyhow::ensure!(
        sentences.len() >= CORPUS_TOPICS.len(),
        "{} holds fewer sentences than topics",
        args.corpus.display()
    );
    let (posts, on_topic) = make_posts(&sentences, args.posts);
    std::fs::write(&posts_path, posts).context("writing the posts")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "osprey bench watch: {} posts from {}, batch {}, head {} chars, {} model, {} cores, store {}",
        args.posts,
        args.corpus.display(),
        args.batch_size,
        args.head_chars,
        args.precision,
        cores,
        if args.database_url.is_some() { "postgresql" } else { "sqlite" }
    );

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut runs = Vec::new();
    for r in 0..args.repeats {
        let data = dir.path().join(format!("run{r}"));
        let mut run = rt.block_on(one_run(&args, &posts_path, &data))?;
        let kept: Vec<String> = serde_json::from_value(run["kept_ids"].take()).unwrap_or_default();
        let (precision, recall) = accuracy(&kept, &on_topic);
        run["precision"] = json!(precision);
        run["recall"] = json!(recall);
        if let Some(m) = run.as_object_mut() {
            m.remove("kept_ids");
        }
        println!(
            "  run {}: {:.0} posts/s ({} posts in {:.2} s; kept {}, filtered {}, duplicate {}, near-duplicate {}, invalid {})",
            r + 1,
            run["posts_per_sec"].as_f64().unwrap_or(0.0),
            run["received"],
            run["seconds"].as_f64().unwrap_or(0.0),
            run["kept"],
            run["filtered"],
            run["duplicate"],
            run["near_duplicate"],
            run["invalid"]
        );
        println!(
            "         filter against the posts' true topics: precision {:.1}%, recall {:.1}% ({} on-topic posts)",
            100.0 * precision,
            100.0 * recall,
            on_topic.len()
        );
        println!("         {}", stage_shares(&run["stage_seconds"], run["seconds"].as_f64().unwrap_or(0.0)));
        runs.push(run);
    }
    let mut rates: Vec<f64> = runs.iter().filter_map(|r| r["posts_per_sec"].as_f64()).collect();
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!("osprey watch: median {median:.0} posts/s over {} runs", rates.len());

    let baseline = match &args.python {
        Some(python) => {
            let b = python_baseline(python, &args, &posts_path, dir.path())?;
            let rate = b["posts_per_sec"].as_f64().unwrap_or(0.0);
            println!(
                "python baseline: {rate:.1} posts/s ({} posts, kept {}, in {:.1} s)",
                b["posts"],
                b["kept"],
                b["seconds"].as_f64().unwrap_or(0.0)
            );
            if rate > 0.0 {
                println!("ratio osprey / python: {:.1}x", median / rate);
            }
            Some(b)
        }
        None => None,
    };
    if let Some(path) = &args.json {
        let doc = json!({
            "schema": "osprey.bench.watch/1",
            "posts": args.posts,
            "batch_size": args.batch_size,
            "head_chars": args.head_chars,
            "precision": args.precision.to_string(),
            "keep_all": args.keep_all,
            "cores": cores,
            "store": if args.database_url.is_some() { "postgresql" } else { "sqlite" },
            "runs": runs,
            "median_posts_per_sec": median,
            "python": baseline,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One run on a fresh data directory: the model is loaded first, then the
/// clock runs from the watch's start until its source has finished.
async fn one_run(args: &WatchBenchArgs, posts: &Path, data: &Path) -> anyhow::Result<Value> {
    std::fs::create_dir_all(data)?;
    let watch = json!({
        "name": "bench",
        "sources": [{"type": "jsonl", "path": posts, "tail": false, "max_batch": args.batch_size}],
        "topics": topics(),
        "threshold": if args.keep_all { Some(-1.0) } else { None },
        "analyses": ["summary", "sentiment", "emotion", "trajectory"],
        "emotion": {"enable_model": false},
        "batch_size": args.batch_size,
        "head_chars": args.head_chars,
    });
    let mut settings: osprey_server::Settings =
        serde_json::from_value(json!({ "watch": [watch] })).context("the benchmark's watch definition")?;
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.data_dir = data.to_path_buf();
    settings.model.model = args.model.clone();
    settings.model.precision = args.precision;
    settings.analysis.vader_dir = args.vader_dir.clone();
    if let Some(url) = &args.database_url {
        settings.store.url = Some(url.clone());
    }
    let app = osprey_server::Application::build(settings).await?;
    app.state().registry.preload().await.context("loading the model")?;
    let started = Instant::now();
    let app = app.with_watches()?;
    let app_store = app.state().store.clone();
    let watches = app.state().watches.clone().context("no watches")?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_with_shutdown(async {
        let _ = rx.await;
    }));
    watches.sources_done().await;
    let seconds = started.elapsed().as_secs_f64();
    let status = watches.status().await;
    let kept_ids = kept_ids(app_store.as_ref()).await?;
    let _ = tx.send(());
    server.await.context("server task")??;
    let w = &status["watches"][0];
    let received = w["received"].as_u64().unwrap_or(0);
    anyhow::ensure!(received == args.posts as u64, "the watch received {received} of {} posts", args.posts);
    Ok(json!({
        "seconds": seconds,
        "posts_per_sec": received as f64 / seconds,
        "received": received,
        "kept": w["kept"],
        "filtered": w["filtered"],
        "duplicate": w["duplicate"],
        "near_duplicate": w["near_duplicate"],
        "invalid": w["invalid"],
        "errors": w["errors"],
        "stage_seconds": w["stage_seconds"],
        "kept_ids": kept_ids,
    }))
}

/// Source ids of every post in the store: the posts the watch kept.
async fn kept_ids(store: Option<&osprey_store::Store>) -> anyhow::Result<Vec<String>> {
    let Some(store) = store else { anyhow::bail!("the benchmark's watch has no store") };
    let mut ids = Vec::new();
    let mut q = osprey_store::PostQuery { limit: 500, ..osprey_store::PostQuery::default() };
    loop {
        let page = store.list_posts(&q).await.context("listing the stored posts")?;
        ids.extend(page.posts.into_iter().map(|p| p.external_id.unwrap_or(p.id)));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(ids),
        }
    }
}

/// "embed 61% · analyze 20% · …": each stage's share of the run's wall time,
/// largest first (stages run one after another within a batch).
fn stage_shares(stages: &Value, seconds: f64) -> String {
    let mut parts: Vec<(&str, f64)> = stages
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_f64()?))).collect())
        .unwrap_or_default();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    let accounted: f64 = parts.iter().map(|(_, s)| s).sum();
    let mut out: Vec<String> = parts
        .iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(k, s)| format!("{k} {:.1}%", 100.0 * s / seconds.max(f64::EPSILON)))
        .collect();
    out.push(format!("unaccounted {:.1}%", 100.0 * (seconds - accounted).max(0.0) / seconds.max(f64::EPSILON)));
    format!("stages: {}", out.join(" · "))
}

fn python_baseline(python: &Path, args: &WatchBenchArgs, posts: &Path, dir: &Path) -> anyhow::Result<Value> {
    let topics_path = dir.join("topics.json");
    std::fs::write(&topics_path, topics().to_string())?;
    let head: String =
        std::fs::read_to_string(posts)?.lines().take(args.python_posts).map(|l| format!("{l}\n")).collect();
    let subset = dir.join("posts-python.jsonl");
    std::fs::write(&subset, head)?;
    let threshold = if args.keep_all { "-1" } else { "0.35" };
    let out = std::process::Command::new(python)
        .arg("scripts/bench/watch_baseline.py")
        .arg("--posts")
        .arg(&subset)
        .arg("--topics")
        .arg(&topics_path)
        .arg("--model")
        .arg(&args.model)
        .arg("--threshold")
        .arg(threshold)
        .arg("--head-chars")
        .arg(args.head_chars.to_string())
        .arg("--batch")
        .arg(args.batch_size.to_string())
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "the Python baseline failed: {}",
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("the baseline printed {last:?}"))
}
