//! `osprey bench embed`: embedding throughput and latency, measured side by
//! side with a baseline (sentence-transformers on PyTorch, via
//! `scripts/bench/baseline.py`) in one run on the same machine.
//!
//! It reports, per corpus (short and medium texts): in-process texts/s at each
//! batch size; HTTP texts/s with N concurrent single-text clients and their
//! latency percentiles; a lone client's p50 next to a direct forward pass;
//! cold start to `/ready`; RSS idle and under load. Nothing here is a test:
//! it prints figures and ratios, and a JSON report with `--out`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hdrhistogram::Histogram;
use osprey_engine::backend::PaddedBatch;
use osprey_engine::embedder::create_backend;
use osprey_engine::model::{resolve_model, ResolveOptions};
use osprey_engine::tokenize::TextTokenizer;
use osprey_engine::{BatchingSettings, EmbedOptions, Embedder, ModelSettings, Truncation};
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct EmbedBenchArgs {
    /// Model directory.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    pub model: String,
    /// Directory holding short.txt and medium.txt.
    #[arg(long, default_value = "fixtures/bench")]
    pub corpus_dir: PathBuf,
    /// Corpora to run.
    #[arg(long, value_delimiter = ',', default_value = "short,medium")]
    pub corpora: Vec<String>,
    /// In-process batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    pub batch_sizes: Vec<usize>,
    /// Texts per measurement (short corpus; the medium corpus uses a quarter).
    #[arg(long, default_value_t = 512)]
    pub texts: usize,
    /// Concurrent single-text HTTP clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Inference backend (auto, onnxruntime, candle).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Inference threads (0 = one per core); the baseline gets the same count.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Python with sentence-transformers for the baseline (default: .venv/bin/python, else python3).
    #[arg(long, env = "OSPREY_BENCH_PYTHON")]
    pub python: Option<PathBuf>,
    /// Skip the baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Skip the HTTP part (server start, load).
    #[arg(long)]
    pub no_http: bool,
    /// Write the full report as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(cmd: crate::cli::BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        crate::cli::BenchCommand::Suite(args) => crate::bench_suite::suite(&args),
        crate::cli::BenchCommand::Embed(args) => embed(&args).map(|()| ExitCode::SUCCESS),
        crate::cli::BenchCommand::Analysis(args) => crate::bench_analysis::analysis(&args).map(|()| ExitCode::SUCCESS),
        crate::cli::BenchCommand::EmotionModel(args) => {
            crate::bench_analysis::emotion_model(&args).map(|()| ExitCode::SUCCESS)
        }
        crate::cli::BenchCommand::Store(args) => crate::bench_storage::store(&args).map(|()| ExitCode::SUCCESS),
        crate::cli::BenchCommand::Cache(args) => crate::bench_storage::cache(&args).map(|()| ExitCode::SUCCESS),
        crate::cli::BenchCommand::Watch(args) => crate::bench_watch::run(args).map(|()| ExitCode::SUCCESS),
        crate::cli::BenchCommand::Telemetry(args) => {
            crate::bench_telemetry::telemetry(&args).map(|()| ExitCode::SUCCESS)
        }
    }
}

fn threads(args: &EmbedBenchArgs) -> usize {
    if args.threads == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        args.threads
    }
}

pub(crate) fn read_corpus(dir: &Path, name: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let path = dir.join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    if lines.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(lines.iter().cycle().take(n).cloned().collect())
}

fn embed(args: &EmbedBenchArgs) -> anyhow::Result<()> {
    let threads = threads(args);
    let mut report = json!({
        "model": args.model, "threads": threads, "backend_requested": args.backend,
        "machine": machine(), "corpora": {},
    });
    for corpus in &args.corpora {
        let n = if corpus == "short" { args.texts } else { (args.texts / 4).max(16) };
        let texts = read_corpus(&args.corpus_dir, corpus, n)?;
        eprintln!("== corpus {corpus}: {n} texts");
        let baseline = if args.no_baseline { None } else { Some(run_baseline(args, corpus, n, threads)?) };
        let inproc = in_process(args, &texts, threads)?;
        let http = if args.no_http { None } else { Some(http_bench(args, &texts, threads)?) };
        let entry = json!({ "texts": n, "baseline": baseline, "in_process": inproc, "http": http });
        print_corpus(corpus, &entry);
        report["corpora"][corpus] = entry;
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}

pub(crate) fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    json!({ "cpu": cpu, "cores": std::thread::available_parallelism().map_or(1, usize::from) })
}

fn model_settings(args: &EmbedBenchArgs, threads: usize) -> anyhow::Result<ModelSettings> {
    Ok(ModelSettings {
        model: args.model.clone(),
        backend: args.backend.parse().map_err(anyhow::Error::msg)?,
        threads,
        ..ModelSettings::default()
    })
}

fn in_process(args: &EmbedBenchArgs, texts: &[String], threads: usize) -> anyhow::Result<Value> {
    let settings = model_settings(args, threads)?;
    let files = resolve_model(&args.model, &ResolveOptions::default())?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;

    // Direct forward pass at batch 1: the floor a lone HTTP request is compared with.
    let config = files.read_config()?;
    let st = files.read_sentence_config(&config)?;
    let tokenizer = TextTokenizer::load(&files, st.max_seq_length)?;
    let mut backend = create_backend(&files, &config, &settings)?;
    let backend_name = backend.info().name;
    let mut hist = Histogram::<u64>::new(3)?;
    for (i, t) in texts.iter().take(200).enumerate() {
        let seq = tokenizer.encode(t, Truncation::Truncate)?;
        let batch = PaddedBatch::from_sequences(seq.iter().map(|s| (s.ids.as_slice(), s.type_ids.as_slice())));
        let started = Instant::now();
        backend.embed(&batch, st.pooling)?;
        if i >= 5 {
            hist.record(started.elapsed().as_micros() as u64)?;
        }
    }
    drop(backend);
    let direct_p50_ms = hist.value_at_quantile(0.5) as f64 / 1000.0;

    let batching = BatchingSettings { max_client_batch_size: 4096, ..BatchingSettings::default() };
    let embedder = Embedder::load(files, &settings, &batching)?;
    let mut results = Vec::new();
    for &bs in &args.batch_sizes {
        let total = if bs == 1 { texts.len().min(256) } else { texts.len() };
        let work: Vec<Vec<String>> = texts[..total].chunks(bs).map(<[String]>::to_vec).collect();
        rt.block_on(embedder.embed(work[0].clone(), EmbedOptions::default()))?;
        let started = Instant::now();
        for chunk in work {
            rt.block_on(embedder.embed(chunk, EmbedOptions::default()))?;
        }
        let secs = started.elapsed().as_secs_f64();
        let tps = total as f64 / secs;
        eprintln!("   in-process batch {bs:>4}: {tps:8.1} texts/s");
        results.push(json!({ "batch_size": bs, "texts": total, "seconds": secs, "texts_per_s": tps }));
    }
    Ok(json!({ "backend": backend_name, "direct_forward_p50_ms": direct_p50_ms, "results": results }))
}

fn run_baseline(args: &EmbedBenchArgs, corpus: &str, n: usize, threads: usize) -> anyhow::Result<Value> {
    let python = python(args.python.as_ref());
    eprintln!("   baseline: sentence-transformers via {}", python.display());
    let out = Command::new(&python)
        .args(["scripts/bench/baseline.py", "--model", &args.model, "--corpus", corpus])
        .args(["--corpus-dir", &args.corpus_dir.display().to_string()])
        .args(["--threads", &threads.to_string(), "--texts", &n.to_string()])
        .args(["--batch-sizes", &args.batch_sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("failed to run {} (pass --python or --no-baseline)", python.display()))?;
    if !out.status.success() {
        bail!("baseline failed ({}); install scripts/reference/requirements.txt or pass --no-baseline", out.status);
    }
    serde_json::from_slice(&out.stdout).context("baseline printed no JSON")
}

/// The Python for baselines: `explicit`, else `.venv/bin/python`, else `python3`.
pub(crate) fn python(explicit: Option<&PathBuf>) -> PathBuf {
    explicit.cloned().unwrap_or_else(|| {
        let venv = PathBuf::from(".venv/bin/python");
        if venv.is_file() {
            venv
        } else {
            PathBuf::from("python3")
        }
    })
}

/// Starts `osprey serve` as a child on a free loopback port.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    /// The server's own data directory (its SQLite store), removed on drop.
    data_dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn rss_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .map_or(0, |kb| kb * 1024)
}

impl Server {
    /// Starts `osprey serve` on a free loopback port with `args` (after
    /// `--bind`) and `envs`, quiet on stdout.
    pub(crate) fn start(args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> anyhow::Result<Self> {
        let port = free_port()?;
        // A fresh store per run: nothing stored by an earlier run is reused.
        let data_dir = std::env::temp_dir().join(format!("osprey-bench-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        // Built-in defaults plus what the benchmark sets, never the user's
        // ./osprey.toml or OSPREY_* variables: an empty settings file, and
        // the environment without them.
        std::fs::create_dir_all(&data_dir)?;
        let settings = data_dir.join("bench.toml");
        std::fs::write(&settings, "")?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("--config")
            .arg(&settings)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(args)
            .stdout(Stdio::null());
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("OSPREY_")) {
                cmd.env_remove(k);
            }
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("failed to start osprey serve")?;
        Ok(Self { child, port, data_dir })
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls `/ready` until it answers 200 (at most 120 s).
    pub(crate) async fn wait_ready(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if started.elapsed() > Duration::from_secs(120) {
                bail!("server not ready after 120 s");
            }
            if let Ok(r) = client.get(format!("{}/ready", self.base())).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn http_bench(args: &EmbedBenchArgs, texts: &[String], threads: usize) -> anyhow::Result<Value> {
    let started = Instant::now();
    let threads = threads.to_string();
    let server = Server::start(
        &[
            "--model",
            &args.model,
            "--backend",
            &args.backend,
            "--threads",
            &threads,
            "--log-level",
            "warn",
            "--max-concurrent-requests",
            "4096",
        ],
        &[],
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let base = server.base();
    rt.block_on(server.wait_ready(&client))?;
    let cold_start = started.elapsed().as_secs_f64();
    let pid = server.child.id();
    let idle_rss = rss_bytes(pid, "VmRSS:");

    let post = |client: reqwest::Client, url: String, text: String| async move {
        let t = Instant::now();
        let r = client.post(url).json(&json!({ "inputs": text })).send().await?;
        let ok = r.status().is_success();
        r.bytes().await?;
        anyhow::ensure!(ok, "request failed");
        Ok::<_, anyhow::Error>(t.elapsed())
    };

    // A lone client, sequential requests.
    let lone = rt.block_on(async {
        let mut h = Histogram::<u64>::new(3)?;
        for (i, t) in texts.iter().take(150).enumerate() {
            let d = post(client.clone(), format!("{base}/embed"), t.clone()).await?;
            if i >= 10 {
                h.record(d.as_micros() as u64)?;
            }
        }
        Ok::<_, anyhow::Error>(h)
    })?;

    // N concurrent single-text clients sharing the corpus.
    let texts = Arc::new(texts.to_vec());
    let (hist, secs) = rt.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let (client, texts, next, url) =
                (client.clone(), Arc::clone(&texts), Arc::clone(&next), format!("{base}/embed"));
            tasks.push(tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3)?;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= texts.len() {
                        return Ok::<_, anyhow::Error>(h);
                    }
                    let d = post(client.clone(), url.clone(), texts[i].clone()).await?;
                    h.record(d.as_micros() as u64)?;
                }
            }));
        }
        let mut all = Histogram::<u64>::new(3)?;
        for t in tasks {
            all.add(t.await??)?;
        }
        Ok::<_, anyhow::Error>((all, started.elapsed().as_secs_f64()))
    })?;
    let peak_rss = rss_bytes(pid, "VmHWM:");
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let tps = texts.len() as f64 / secs;
    eprintln!(
        "   http {} clients: {tps:8.1} texts/s, p50 {:.1} ms p99 {:.1} ms",
        args.concurrency,
        ms(&hist, 0.5),
        ms(&hist, 0.99)
    );
    Ok(json!({
        "cold_start_to_ready_s": cold_start,
        "rss_idle_bytes": idle_rss,
        "rss_peak_bytes": peak_rss,
        "concurrency": args.concurrency,
        "texts": texts.len(),
        "seconds": secs,
        "texts_per_s": tps,
        "latency_ms": { "p50": ms(&hist, 0.5), "p95": ms(&hist, 0.95), "p99": ms(&hist, 0.99), "max": hist.max() as f64 / 1000.0 },
        "lone_client_latency_ms": { "p50": ms(&lone, 0.5), "p95": ms(&lone, 0.95) },
    }))
}

fn best(v: &Value) -> f64 {
    v["results"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["texts_per_s"].as_f64()).fold(0.0, f64::max))
        .unwrap_or(0.0)
}

fn at_batch(v: &Value, bs: u64) -> Option<f64> {
    v["results"].as_array()?.iter().find(|r| r["batch_size"].as_u64() == Some(bs))?["texts_per_s"].as_f64()
}

fn print_corpus(corpus: &str, e: &Value) {
    println!("\n## {corpus} texts ({} texts)", e["texts"]);
    println!("| batch | osprey texts/s | sentence-transformers texts/s | ratio |");
    println!("|---:|---:|---:|---:|");
    if let Some(rows) = e["in_process"]["results"].as_array() {
        for r in rows {
            let bs = r["batch_size"].as_u64().unwrap_or(0);
            let ours = r["texts_per_s"].as_f64().unwrap_or(0.0);
            let base = at_batch(&e["baseline"], bs);
            let ratio = base.map_or("–".into(), |b| format!("{:.2}×", ours / b));
            println!("| {bs} | {ours:.1} | {} | {ratio} |", base.map_or("–".into(), |b| format!("{b:.1}")));
        }
    }
    let (ours, base) = (best(&e["in_process"]), best(&e["baseline"]));
    if base > 0.0 {
        println!("best in-process: osprey {ours:.1} vs baseline {base:.1} texts/s = {:.2}×", ours / base);
    }
    let h = &e["http"];
    if h.is_object() {
        let tps = h["texts_per_s"].as_f64().unwrap_or(0.0);
        let b32 = at_batch(&e["baseline"], 32).unwrap_or(0.0);
        println!(
            "HTTP, {} single-text clients: {tps:.1} texts/s{}; latency p50 {:.1} / p95 {:.1} / p99 {:.1} ms",
            h["concurrency"],
            if b32 > 0.0 { format!(" = {:.2}× baseline in-process batch 32", tps / b32) } else { String::new() },
            h["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
            h["latency_ms"]["p95"].as_f64().unwrap_or(0.0),
            h["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
        );
        let lone = h["lone_client_latency_ms"]["p50"].as_f64().unwrap_or(0.0);
        let direct = e["in_process"]["direct_forward_p50_ms"].as_f64().unwrap_or(0.0);
        println!(
            "lone client p50 {lone:.2} ms vs direct forward pass p50 {direct:.2} ms ({:+.0}%)",
            if direct > 0.0 { (lone / direct - 1.0) * 100.0 } else { 0.0 }
        );
        println!(
            "cold start to /ready {:.2} s; RSS idle {:.0} MB, peak {:.0} MB",
            h["cold_start_to_ready_s"].as_f64().unwrap_or(0.0),
            h["rss_idle_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            h["rss_peak_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        );
        if let Some(rss) = e["baseline"]["peak_rss_bytes"].as_f64() {
            println!("baseline peak RSS {:.0} MB", rss / 1e6);
        }
    }
}
