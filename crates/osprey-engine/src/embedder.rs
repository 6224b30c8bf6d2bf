//! [`Embedder`]: the cheap, clonable handle callers use to turn texts into
//! vectors. It owns admission (a bounded number of requests in flight),
//! tokenization on a small worker pool, the per-request deadline and the
//! combining of chunked inputs; the batcher and model thread do the rest.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use osprey_types::metrics as m;
use serde::Serialize;
use tokio::sync::{oneshot, Semaphore};

use crate::backend::{self, Backend, PaddedBatch};
use crate::batcher::{self, BatchLimits, Entry, Queue};
use crate::error::{EngineError, Result};
use crate::model::{ModelFiles, ModelSource, Pooling};
use crate::settings::{BackendChoice, BatchingSettings, DeviceChoice, ModelSettings, Precision};
use crate::tokenize::{Sequence, TextTokenizer, TokenInfo, Truncation};

/// What is known about a loaded model (served by `/info` and the registry).
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub path: String,
    pub source: ModelSource,
    pub model_type: String,
    pub backend: String,
    pub device: String,
    pub dtype: String,
    pub hidden_size: usize,
    pub max_seq_length: usize,
    pub pooling: Pooling,
    /// Whether the model's own pipeline normalises (a `Normalize` module).
    pub normalize: bool,
    pub vocab_size: usize,
    pub weight_bytes: u64,
    /// Identifies these exact weights and how they are read (size and
    /// modification time of the weights file, pooling), so cached results and
    /// stored topic vectors of another revision are not reused.
    pub revision: String,
    pub load_seconds: f64,
    pub warmup_seconds: f64,
    /// Seconds since the Unix epoch at which loading finished.
    pub loaded_at: u64,
}

/// Per-request options.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbedOptions {
    pub truncation: Truncation,
    pub normalize: bool,
}

/// One window of a chunked input: its pooled vector and its token count.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub tokens: usize,
    pub vector: Vec<f32>,
}

/// Vectors for a request's inputs, in input order.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens fed to the model per input, special tokens included.
    pub tokens: Vec<usize>,
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads for CPU work that must stay off the async runtime.
struct WorkerPool {
    tx: Sender<Job>,
}

impl WorkerPool {
    fn new(name: &str, workers: usize) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || loop {
                let job = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            })?;
        }
        Ok(Self { tx })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.tx.send(job).map_err(|_| EngineError::ShutDown)?;
        rx.await.map_err(|_| EngineError::ShutDown)
    }
}

struct Inner {
    info: ModelInfo,
    tokenizer: TextTokenizer,
    queue: Arc<Queue>,
    permits: Arc<Semaphore>,
    /// Requests refused because `max_concurrent_requests` were in flight.
    rejected: std::sync::atomic::AtomicU64,
    batching: BatchingSettings,
    pool: WorkerPool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// A loaded, warmed-up model with its batcher. Clones share everything.
#[derive(Clone)]
pub struct Embedder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("model", &self.inner.info.id).finish()
    }
}

impl Embedder {
    /// Loads the model, starts its threads and runs the warm-up passes.
    /// Blocking: call from a blocking context.
    pub fn load(files: ModelFiles, settings: &ModelSettings, batching: &BatchingSettings) -> Result<Self> {
        batching.validate().map_err(EngineError::Unsupported)?;
        let started = Instant::now();
        let config = files.read_config()?;
        backend::check_supported(&config)?;
        let sentence = files.read_sentence_config(&config)?;
        let tokenizer = TextTokenizer::load(&files, sentence.max_seq_length)?;
        let limits = BatchLimits {
            max_batch_tokens: batching.max_batch_tokens,
            max_batch_requests: batching.max_batch_requests,
        };
        let queue = Queue::new(limits, files.id.clone());
        let batches = batcher::spawn_former(Arc::clone(&queue)).map_err(EngineError::backend)?;

        // The model thread loads the backend itself, warms it up, reports,
        // then serves batches until the queue closes.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (thread_files, thread_config, thread_settings) = (files.clone(), config.clone(), settings.clone());
        let warm_tokens = tokenizer.encode("osprey warms the model up before serving", Truncation::Truncate)?;
        let warm_long = tokenizer.encode(&"warm ".repeat(tokenizer.max_len()), Truncation::Truncate)?;
        let pooling = settings.pooling.unwrap_or(sentence.pooling);
        let thread_queue = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("osprey-model".into())
            .spawn(move || {
                let loaded = create_backend(&thread_files, &thread_config, &thread_settings).and_then(|mut b| {
                    let load_done = Instant::now();
                    for pass in 0..thread_settings.warmup_passes {
                        let seqs: Vec<&Sequence> = if pass % 2 == 0 {
                            warm_tokens.iter().collect()
                        } else {
                            std::iter::repeat_n(&warm_long[0], 4).collect()
                        };
                        let batch =
                            PaddedBatch::from_sequences(seqs.iter().map(|s| (s.ids.as_slice(), s.type_ids.as_slice())));
                        b.embed(&batch, pooling)?;
                    }
                    Ok((b, load_done, load_done.elapsed()))
                });
                match loaded {
                    Ok((mut b, load_done, warmup)) => {
                        let _ = ready_tx.send(Ok((b.info(), load_done, warmup)));
                        batcher::run_model(&thread_queue, b.as_mut(), pooling, &batches);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(EngineError::backend)?;
        let (binfo, load_done, warmup) = match ready_rx.recv() {
            Ok(r) => r?,
            Err(_) => return Err(EngineError::Backend("model thread exited during load".into())),
        };
        let meta = std::fs::metadata(&files.weights).ok();
        let weight_bytes = meta.as_ref().map_or(0, |m| m.len());
        let mtime = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        // Vectors of another precision are not interchangeable: stored
        // results and topic vectors of the f32 model are not reused by int8.
        let revision = match settings.precision {
            Precision::F32 => format!("{weight_bytes:x}-{mtime:x}-{pooling}"),
            p => format!("{weight_bytes:x}-{mtime:x}-{pooling}-{p}"),
        };
        let info = ModelInfo {
            id: files.id.clone(),
            path: files.dir.display().to_string(),
            source: files.source.clone(),
            model_type: config.model_type.clone(),
            backend: binfo.name.to_string(),
            device: binfo.device,
            dtype: binfo.dtype,
            hidden_size: config.hidden_size,
            max_seq_length: sentence.max_seq_length,
            pooling,
            normalize: sentence.normalize,
            vocab_size: config.vocab_size,
            weight_bytes,
            revision,
            load_seconds: load_done.duration_since(started).as_secs_f64(),
            warmup_seconds: warmup.as_secs_f64(),
            loaded_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        let labels = [("model", info.id.clone())];
        metrics::gauge!(m::MODEL_LOAD_SECONDS, &labels).set(info.load_seconds);
        metrics::gauge!(m::MODEL_WARMUP_SECONDS, &labels).set(info.warmup_seconds);
        metrics::gauge!(m::MODEL_WEIGHT_BYTES, &labels).set(weight_bytes as f64);
        metrics::gauge!(m::MODEL_LOADED, &labels).set(1.0);
        tracing::info!(model = %info.id, backend = %info.backend, device = %info.device,
            load_s = info.load_seconds, warmup_s = info.warmup_seconds, "model ready");
        let pool = WorkerPool::new("osprey-tokenizer", batching.tokenizer_workers).map_err(EngineError::backend)?;
        Ok(Self {
            inner: Arc::new(Inner {
                info,
                tokenizer,
                queue,
                permits: Arc::new(Semaphore::new(batching.max_concurrent_requests)),
                rejected: Default::default(),
                batching: batching.clone(),
                pool,
            }),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    pub fn batching(&self) -> &BatchingSettings {
        &self.inner.batching
    }

    /// Requests refused since load because the admission limit was reached.
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests admitted and not yet answered, and how many may be
    /// (`max_concurrent_requests`).
    pub fn admission(&self) -> (usize, usize) {
        let cap = self.inner.batching.max_concurrent_requests;
        (cap.saturating_sub(self.inner.permits.available_permits()), cap)
    }

    /// The batch limits in force now (they change at run time through
    /// [`Embedder::set_batch_limits`]).
    pub fn batch_limits(&self) -> BatchLimits {
        self.inner.queue.limits()
    }

    /// Changes the batch limits at run time; the next batch uses them.
    pub fn set_batch_limits(&self, limits: BatchLimits) {
        self.inner.queue.set_limits(limits);
    }

    /// Batches and sequences run, dropped and failed since the model loaded.
    pub fn stats(&self) -> crate::batcher::BatcherStats {
        self.inner.queue.stats()
    }

    /// Embeds `texts`, in order. Fails at once with [`EngineError::Overloaded`]
    /// when `max_concurrent_requests` are already in flight.
    #[tracing::instrument(skip_all, fields(model = %self.inner.info.id, texts = texts.len()))]
    pub async fn embed(&self, texts: Vec<String>, opts: EmbedOptions) -> Result<Embedded> {
        let (parts, tokens) = self.run(texts, opts.truncation).await?;
        let mut vectors: Vec<Vec<f32>> = parts.into_iter().map(combine).collect();
        if opts.normalize {
            vectors.iter_mut().for_each(|v| normalize(v));
        }
        Ok(Embedded { vectors, tokens })
    }

    /// Like [`embed`](Self::embed) but keeps each chunk's pooled vector
    /// (with its token count) instead of mean-pooling them: with
    /// [`Truncation::Chunk`] a long text yields several parts. Vectors are
    /// not normalised. Classifiers use this to average per-window predictions.
    #[tracing::instrument(skip_all, fields(model = %self.inner.info.id, texts = texts.len()))]
    pub async fn embed_chunks(&self, texts: Vec<String>, truncation: Truncation) -> Result<Vec<Vec<Chunk>>> {
        let (parts, _) = self.run(texts, truncation).await?;
        Ok(parts
            .into_iter()
            .map(|p| p.into_iter().map(|(tokens, vector)| Chunk { tokens, vector }).collect())
            .collect())
    }

    /// Admission, tokenization, queueing and collection: per text, the pooled
    /// vector of each chunk with its token count, and the text's token total.
    async fn run(&self, texts: Vec<String>, mode: Truncation) -> Result<(Vec<Vec<(usize, Vec<f32>)>>, Vec<usize>)> {
        if texts.is_empty() {
            return Err(EngineError::EmptyInput);
        }
        let inner = &self.inner;
        let _permit = Arc::clone(&inner.permits).try_acquire_owned().map_err(|_| {
            inner.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!(m::REQUESTS_REJECTED_TOTAL, "reason" => "overloaded").increment(1);
            EngineError::Overloaded(inner.batching.max_concurrent_requests)
        })?;
        let timeout = inner.batching.request_timeout;
        let started = Instant::now();
        let deadline = started + timeout;

        let tokenizer = inner.tokenizer.clone();
        let per_text: Vec<Vec<Sequence>> = inner
            .pool
            .run(move || texts.iter().map(|t| tokenizer.encode(t, mode)).collect::<Result<Vec<_>>>())
            .await??;
        let tokenized = started.elapsed();
        metrics::histogram!(m::TOKENIZATION_DURATION_SECONDS).record(tokenized.as_secs_f64());
        crate::timing::record("tokenize", tokenized);

        let mut receivers = Vec::with_capacity(per_text.len());
        let mut entries = Vec::new();
        let enqueued = Instant::now();
        let mut tokens = Vec::with_capacity(per_text.len());
        for seqs in per_text {
            let mut rxs = Vec::with_capacity(seqs.len());
            tokens.push(seqs.iter().map(|s| s.ids.len()).sum());
            for seq in seqs {
                let (tx, rx) = oneshot::channel();
                rxs.push((seq.ids.len(), rx));
                entries.push(Entry { seq, enqueued, deadline, reply: tx, span: tracing::Span::current() });
            }
            receivers.push(rxs);
        }
        inner.queue.push(entries)?;

        let collect = async {
            let mut out = Vec::with_capacity(receivers.len());
            let mut inference = std::time::Duration::ZERO;
            for rxs in receivers {
                let mut parts = Vec::with_capacity(rxs.len());
                for (len, rx) in rxs {
                    let answer = rx.await.map_err(|_| EngineError::ShutDown)??;
                    inference = inference.max(answer.inference);
                    parts.push((len, answer.vector));
                }
                out.push(parts);
            }
            Ok::<_, EngineError>((out, inference))
        };
        let (parts, inference) = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), collect)
            .await
            .map_err(|_| EngineError::Timeout(timeout))??;
        // The request's wait for its vectors: the longest forward pass it
        // was part of, and the rest is queueing (batches run one at a time).
        crate::timing::record("inference", inference);
        crate::timing::record("queue", enqueued.elapsed().saturating_sub(inference));
        metrics::counter!(m::EMBEDDINGS_TOTAL).increment(parts.len() as u64);
        metrics::counter!(m::TOKENS_TOTAL).increment(tokens.iter().sum::<usize>() as u64);
        Ok((parts, tokens))
    }

    /// Tokens of `text` as the model sees them.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<TokenInfo>> {
        self.inner.tokenizer.tokens(text, add_special)
    }
}

/// Mean of chunk vectors weighted by their token counts (a single part is
/// returned as is).
fn combine(mut parts: Vec<(usize, Vec<f32>)>) -> Vec<f32> {
    if parts.len() == 1 {
        return parts.pop().map(|(_, v)| v).unwrap_or_default();
    }
    let total: usize = parts.iter().map(|(n, _)| n).sum();
    let dim = parts.first().map_or(0, |(_, v)| v.len());
    let mut acc = vec![0f32; dim];
    for (n, v) in &parts {
        let w = *n as f32 / total.max(1) as f32;
        for (a, x) in acc.iter_mut().zip(v) {
            *a += w * x;
        }
    }
    acc
}

/// Scales `v` to unit L2 norm (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Picks and loads the backend for `settings` (see [`BackendChoice`]).
pub fn create_backend(
    files: &ModelFiles,
    config: &crate::model::ModelConfig,
    settings: &ModelSettings,
) -> Result<Box<dyn Backend>> {
    use crate::backend::{
        candle::CandleBackend,
        ort::{OrtBackend, OrtOptions},
    };
    let ort_opts = OrtOptions {
        library: settings.ort_library.clone(),
        intra_threads: settings.threads,
        spinning: true,
        // A model read through its first token needs no other row from the last layer.
        first_token_only: settings.pooling == Some(crate::model::Pooling::Cls),
        int8: settings.precision == Precision::Int8,
    };
    let int8 = settings.precision == Precision::Int8;
    let cuda = |n: usize| -> Result<Box<dyn Backend>> {
        let device = candle_core::Device::new_cuda(n).map_err(|e| EngineError::Device(format!("cuda:{n}: {e}")))?;
        Ok(Box::new(CandleBackend::load(files, config, device)?))
    };
    match (&settings.device, settings.backend) {
        (_, BackendChoice::Candle) | (DeviceChoice::Cuda(_), _) if int8 => {
            Err(EngineError::Unsupported("precision int8 runs on the onnxruntime backend on the CPU only".into()))
        }
        (DeviceChoice::Cuda(n), BackendChoice::Onnxruntime) => Err(EngineError::Device(format!(
            "the onnxruntime backend runs on the CPU only; use --backend candle for cuda:{n}"
        ))),
        (DeviceChoice::Cuda(n), _) => cuda(*n),
        (DeviceChoice::Auto, BackendChoice::Auto | BackendChoice::Candle)
            if candle_core::utils::cuda_is_available() && !int8 =>
        {
            cuda(0)
        }
        (_, BackendChoice::Onnxruntime) => Ok(Box::new(OrtBackend::load(files, config, &ort_opts)?)),
        (_, BackendChoice::Candle) => Ok(Box::new(CandleBackend::load(files, config, candle_core::Device::Cpu)?)),
        (_, BackendChoice::Auto) => match OrtBackend::load(files, config, &ort_opts) {
            Ok(b) => Ok(Box::new(b)),
            Err(e) if int8 => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "ONNX Runtime unavailable, falling back to the candle CPU backend");
                Ok(Box::new(CandleBackend::load(files, config, candle_core::Device::Cpu)?))
            }
        },
    }
}
