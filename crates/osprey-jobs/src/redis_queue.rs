//! The Redis Streams backend. See the crate documentation for the key layout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use osprey_types::analysis::Post;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, FromRedisValue, RedisResult, ToRedisArgs, Value};
use serde_json::Value as Json;

use crate::queue::{Begin, Delivery, Finish};
use crate::scripts;
use crate::settings::redact_url;
use crate::types::{now_ms, Record};
use crate::{DeadLetter, JobError, JobId, JobSettings, JobSpec, JobStatus, QueueStats};

/// The consumer group every worker reads through.
pub(crate) const GROUP: &str = "workers";
/// Approximate cap on the dead-letter stream.
const DEAD_CAP: u64 = 100_000;
/// Payload bytes per append script call: big appends are split so that no
/// single script holds Redis for long.
const APPEND_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Chunks per append script call.
const APPEND_BATCH_CHUNKS: usize = 256;
/// Idle time given to released messages, so any worker's next `XAUTOCLAIM`
/// takes them whatever its `ack_wait`.
const RELEASED_IDLE_MS: u64 = 24 * 3600 * 1000;
/// Consumers idle this long with nothing pending are deleted from the group.
const PRUNE_IDLE_MS: u64 = 3600 * 1000;

/// A Lua script run with `EVALSHA`, loaded on first use and again when Redis
/// has forgotten it (after a restart).
struct Lua {
    code: String,
    sha: Mutex<Option<String>>,
}

/// Keys and arguments of one script call.
#[derive(Default)]
struct Call {
    keys: Vec<String>,
    args: Vec<Vec<u8>>,
}

impl Call {
    fn key(mut self, k: impl Into<String>) -> Self {
        self.keys.push(k.into());
        self
    }

    fn arg(mut self, a: impl ToRedisArgs) -> Self {
        self.args.extend(a.to_redis_args());
        self
    }
}

impl Lua {
    fn new(code: String) -> Self {
        Self { code, sha: Mutex::new(None) }
    }

    fn evalsha(sha: &str, call: &Call) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(sha).arg(call.keys.len()).arg(&call.keys);
        for a in &call.args {
            cmd.arg(&a[..]);
        }
        cmd
    }

    async fn run<T: FromRedisValue>(&self, con: &mut ConnectionManager, call: &Call) -> RedisResult<T> {
        let known = self.sha.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(sha) = known {
            match Self::evalsha(&sha, call).query_async(con).await {
                Err(e) if e.code() == Some("NOSCRIPT") => {}
                other => return other,
            }
        }
        let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(&self.code).query_async(con).await?;
        *self.sha.lock().unwrap_or_else(|e| e.into_inner()) = Some(sha.clone());
        Self::evalsha(&sha, call).query_async(con).await
    }
}

struct Scripts {
    create: Lua,
    append: Lua,
    seal: Lua,
    cancel: Lua,
    begin: Lua,
    finish: Lua,
    note_error: Lua,
    extend: Lua,
    release: Lua,
    reclaim: Lua,
    prune: Lua,
}

pub(crate) struct RedisQueue {
    settings: JobSettings,
    client: redis::Client,
    conn: ConnectionManager,
    stream: String,
    dead: String,
    jobs: String,
    job_prefix: String,
    scripts: Scripts,
}

/// A worker's own connection for `XREADGROUP ... BLOCK`: a blocked command
/// would hold up every other command pipelined on a shared connection.
pub(crate) struct Reader {
    conn: ConnectionManager,
}

fn manager_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(1))
        .set_number_of_retries(3)
}

/// Longest `BLOCK` a worker asks for.
pub(crate) const MAX_BLOCK: Duration = Duration::from_secs(1);

impl RedisQueue {
    pub async fn connect(settings: &JobSettings) -> Result<Self, JobError> {
        let url = settings.redis_url.as_deref().unwrap_or_default();
        let client =
            redis::Client::open(url).map_err(|e| JobError::Settings(format!("redis_url {}: {e}", redact_url(url))))?;
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            ConnectionManager::new_with_config(client.clone(), manager_config(Duration::from_secs(10))),
        )
        .await
        .map_err(|_| JobError::Redis(format!("connecting to {} timed out", redact_url(url))))?
        .map_err(|e| JobError::Redis(format!("connecting to {}: {e}", redact_url(url))))?;
        let p = &settings.prefix;
        let queue = Self {
            settings: settings.clone(),
            client,
            conn,
            stream: format!("{p}:stream"),
            dead: format!("{p}:dead"),
            jobs: format!("{p}:jobs"),
            job_prefix: format!("{p}:job:"),
            scripts: Scripts {
                create: Lua::new(scripts::create()),
                append: Lua::new(scripts::append()),
                seal: Lua::new(scripts::seal()),
                cancel: Lua::new(scripts::cancel()),
                begin: Lua::new(scripts::begin()),
                finish: Lua::new(scripts::finish()),
                note_error: Lua::new(scripts::NOTE_ERROR.to_string()),
                extend: Lua::new(scripts::EXTEND.to_string()),
                release: Lua::new(scripts::RELEASE.to_string()),
                reclaim: Lua::new(scripts::RECLAIM.to_string()),
                prune: Lua::new(scripts::PRUNE_CONSUMERS.to_string()),
            },
        };
        queue.create_group().await?;
        tracing::info!(url = %redact_url(url), prefix = %p, "jobs: Redis queue ready");
        Ok(queue)
    }

    fn con(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn job_key(&self, id: &JobId) -> String {
        format!("{}{id}", self.job_prefix)
    }

    fn done_key(&self, id: &JobId) -> String {
        format!("{}{id}:done", self.job_prefix)
    }

    fn retention_ms(&self) -> u64 {
        self.settings.retention.as_millis() as u64
    }

    /// `XGROUP CREATE <stream> workers 0 MKSTREAM`; true when it was created.
    /// From `0`: entries are deleted once acknowledged, so whatever is in the
    /// stream when the group is (re)created still has to be processed.
    async fn create_group(&self) -> Result<bool, JobError> {
        let r: RedisResult<()> = self.con().xgroup_create_mkstream(&self.stream, GROUP, "0").await;
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn ensure_group(&self) -> Result<bool, JobError> {
        let created = self.create_group().await?;
        if created {
            tracing::error!(
                stream = %self.stream,
                "jobs: the consumer group was missing and has been recreated; Redis lost its data \
                 (restarted without persistence?): chunks that were in flight may be lost"
            );
        }
        Ok(created)
    }

    pub async fn prune_consumers(&self) -> Result<u64, JobError> {
        let call = Call::default().key(&self.stream).arg(GROUP).arg(PRUNE_IDLE_MS).arg("");
        Ok(self.scripts.prune.run(&mut self.con(), &call).await?)
    }

    pub fn reader(&self) -> Result<Reader, JobError> {
        let conn = ConnectionManager::new_lazy_with_config(
            self.client.clone(),
            manager_config(MAX_BLOCK + Duration::from_secs(5)),
        )?;
        Ok(Reader { conn })
    }

    pub async fn create(&self, id: &JobId, spec: &JobSpec) -> Result<(), JobError> {
        let rec = Record::new(id.clone(), spec, now_ms());
        let mut call = Call::default()
            .key(self.job_key(id))
            .key(&self.jobs)
            .arg(id.to_string())
            .arg(rec.created_at)
            .arg(&self.job_prefix);
        for (k, v) in rec.create_fields() {
            call = call.arg(k).arg(v);
        }
        let _: String = self.scripts.create.run(&mut self.con(), &call).await?;
        Ok(())
    }

    pub async fn append(&self, id: &JobId, chunks: Vec<Vec<Post>>) -> Result<(), JobError> {
        let mut encoded = Vec::with_capacity(chunks.len());
        for c in &chunks {
            let json = serde_json::to_string(c).map_err(|e| JobError::Invalid(format!("posts: {e}")))?;
            encoded.push((c.len() as u64, json));
        }
        let mut remaining: u64 = encoded.iter().map(|(n, _)| n).sum();
        // An append with no posts still checks that the job takes appends.
        let mut batches: Vec<Vec<(u64, String)>> = vec![Vec::new()];
        let mut bytes = 0usize;
        for e in encoded {
            let last = batches
                .last_mut()
                .filter(|b| b.is_empty() || (b.len() < APPEND_BATCH_CHUNKS && bytes + e.1.len() <= APPEND_BATCH_BYTES));
            match last {
                Some(b) => {
                    bytes += e.1.len();
                    b.push(e);
                }
                None => {
                    bytes = e.1.len();
                    batches.push(vec![e]);
                }
            }
        }
        for batch in batches {
            let posts: u64 = batch.iter().map(|(n, _)| n).sum();
            let mut call = Call::default()
                .key(self.job_key(id))
                .key(&self.stream)
                .key(self.done_key(id))
                .arg(id.to_string())
                .arg(self.settings.max_posts_per_job as u64)
                .arg(remaining)
                .arg(now_ms())
                .arg(self.retention_ms())
                .arg(batch.len());
            for (n, json) in batch {
                call = call.arg(n).arg(json);
            }
            let reply: Vec<String> = self.scripts.append.run(&mut self.con(), &call).await?;
            match reply.first().map(String::as_str) {
                Some("ok") => {}
                Some("notfound") => return Err(JobError::NotFound(id.clone())),
                Some("sealed") => return Err(JobError::Sealed(id.clone())),
                Some("cancelled") => return Err(JobError::Cancelled(id.clone())),
                Some("toolarge") => {
                    let num = |i: usize| reply.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                    return Err(JobError::TooLarge { requested: num(1), limit: num(2) });
                }
                other => return Err(JobError::Corrupt(format!("append script answered {other:?}"))),
            }
            remaining -= posts;
        }
        Ok(())
    }

    pub async fn seal(&self, id: &JobId) -> Result<(), JobError> {
        let call = Call::default().key(self.job_key(id)).key(self.done_key(id)).arg(now_ms()).arg(self.retention_ms());
        let reply: String = self.scripts.seal.run(&mut self.con(), &call).await?;
        match reply.as_str() {
            "ok" => Ok(()),
            "notfound" => Err(JobError::NotFound(id.clone())),
            "cancelled" => Err(JobError::Cancelled(id.clone())),
            other => Err(JobError::Corrupt(format!("seal script answered {other:?}"))),
        }
    }

    pub async fn status(&self, id: &JobId) -> Result<Option<JobStatus>, JobError> {
        let h: HashMap<String, String> = self.con().hgetall(self.job_key(id)).await?;
        Ok(Record::from_hash(id, &h)?.map(|r| r.status(now_ms())))
    }

    pub async fn cancel(&self, id: &JobId) -> Result<bool, JobError> {
        let call = Call::default().key(self.job_key(id)).key(self.done_key(id)).arg(now_ms()).arg(self.retention_ms());
        let reply: String = self.scripts.cancel.run(&mut self.con(), &call).await?;
        match reply.as_str() {
            "ok" => Ok(true),
            "finished" => Ok(false),
            "notfound" => Err(JobError::NotFound(id.clone())),
            other => Err(JobError::Corrupt(format!("cancel script answered {other:?}"))),
        }
    }

    pub async fn list(&self, limit: usize) -> Result<Vec<JobStatus>, JobError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut con = self.con();
        let ids: Vec<String> = con.zrevrange(&self.jobs, 0, limit as isize - 1).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(format!("{}{id}", self.job_prefix));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut con).await?;
        let now = now_ms();
        let mut out = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        for (raw, h) in ids.iter().zip(hashes) {
            let Ok(id) = JobId::parse(raw) else {
                gone.push(raw.clone());
                continue;
            };
            match Record::from_hash(&id, &h) {
                Ok(Some(rec)) => out.push(rec.status(now)),
                Ok(None) => gone.push(raw.clone()),
                Err(e) => tracing::warn!(job = %id, error = %e, "jobs: unreadable job record left out of the listing"),
            }
        }
        if !gone.is_empty() {
            let _: RedisResult<u64> = con.zrem(&self.jobs, &gone).await;
        }
        Ok(out)
    }

    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, JobError> {
        let reply: StreamRangeReply = self.con().xrevrange_count(&self.dead, "+", "-", limit).await?;
        Ok(reply.ids.iter().map(dead_letter).collect())
    }

    pub async fn stats(&self) -> Result<QueueStats, JobError> {
        let mut pipe = redis::pipe();
        pipe.xlen(&self.stream).xlen(&self.dead).cmd("XPENDING").arg(&self.stream).arg(GROUP);
        let (messages, dead, pending): (u64, u64, Value) = pipe.query_async(&mut self.con()).await?;
        let pending = match pending {
            Value::Array(v) => v.first().and_then(|c| redis::from_redis_value_ref::<u64>(c).ok()).unwrap_or(0),
            _ => 0,
        };
        Ok(QueueStats { messages, pending, dead_letters: dead })
    }

    pub async fn read(
        &self,
        reader: &mut Reader,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, JobError> {
        let mut opts = StreamReadOptions::default().group(GROUP, consumer).count(count);
        if let Some(b) = block {
            opts = opts.block(b.min(MAX_BLOCK).as_millis().max(1) as usize);
        }
        let reply: Option<StreamReadReply> = reader.conn.xread_options(&[&self.stream], &[">"], &opts).await?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in &key.ids {
                out.push(decode_entry(entry, 1));
            }
        }
        Ok(out)
    }

    pub async fn reclaim(
        &self,
        cursor: &mut String,
        consumer: &str,
        count: usize,
        min_idle: Duration,
    ) -> Result<Vec<Delivery>, JobError> {
        if cursor.is_empty() {
            *cursor = "0-0".into();
        }
        let mut out = Vec::new();
        // A few pages per call: each page scans at most 10 × count entries of
        // the pending list.
        for _ in 0..8 {
            let call = Call::default()
                .key(&self.stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg(cursor.as_str())
                .arg(count - out.len());
            let reply: Value = self.scripts.reclaim.run(&mut self.con(), &call).await?;
            let (next, claimed) = parse_reclaim(reply)?;
            out.extend(claimed);
            *cursor = next;
            if cursor == "0-0" || out.len() >= count {
                break;
            }
        }
        Ok(out)
    }

    pub async fn extend(&self, consumer: &str, ids: &[String]) -> Result<Vec<String>, JobError> {
        let mut call = Call::default().key(&self.stream).arg(GROUP).arg(consumer);
        for id in ids {
            call = call.arg(id);
        }
        Ok(self.scripts.extend.run(&mut self.con(), &call).await?)
    }

    pub async fn release(&self, consumer: &str, ids: &[(String, u32)]) -> Result<(), JobError> {
        let mut call = Call::default().key(&self.stream).arg(GROUP).arg(consumer).arg(RELEASED_IDLE_MS);
        for (id, deliveries) in ids {
            call = call.arg(id).arg(*deliveries);
        }
        let _: u64 = self.scripts.release.run(&mut self.con(), &call).await?;
        Ok(())
    }

    pub async fn begin(&self, d: &Delivery) -> Result<Begin, JobError> {
        let (Some(job), Some(chunk)) = (&d.job, d.chunk) else { return Ok(Begin::Skip("undecodable")) };
        let call = Call::default().key(self.job_key(job)).key(self.done_key(job)).arg(chunk).arg(now_ms());
        let reply: Vec<String> = self.scripts.begin.run(&mut self.con(), &call).await?;
        match reply.first().map(String::as_str) {
            Some("run") => {
                let raw = reply.get(1).map(String::as_str).unwrap_or("null");
                let options = serde_json::from_str::<Json>(raw)
                    .map_err(|e| JobError::Corrupt(format!("job {job}: options: {e}")))?;
                Ok(Begin::Run(options))
            }
            Some("gone") => Ok(Begin::Skip("job gone")),
            Some("counted") => Ok(Begin::Skip("already counted")),
            Some("cancelled") => Ok(Begin::Skip("cancelled")),
            other => Err(JobError::Corrupt(format!("begin script answered {other:?}"))),
        }
    }

    pub async fn finish(&self, d: &Delivery, consumer: &str, outcome: &Finish) -> Result<(), JobError> {
        let (job_key, done_key, job) = match &d.job {
            Some(j) => (self.job_key(j), self.done_key(j), j.to_string()),
            // Keys that do not exist: nothing is counted.
            None => (format!("{}-", self.job_prefix), format!("{}-:done", self.job_prefix), String::new()),
        };
        let (word, stored, rejected, reason) = match outcome {
            Finish::Done(r) => ("done", r.stored, r.failed, ""),
            Finish::Dead(reason) => ("dead", 0, 0, reason.as_str()),
            Finish::Skip => ("skip", 0, 0, ""),
        };
        let call = Call::default()
            .key(job_key)
            .key(done_key)
            .key(&self.stream)
            .key(&self.dead)
            .arg(GROUP)
            .arg(&d.msg_id)
            .arg(d.chunk.map(|c| c.to_string()).unwrap_or_default())
            .arg(word)
            .arg(d.n_posts)
            .arg(stored)
            .arg(rejected)
            .arg(now_ms())
            .arg(self.retention_ms())
            .arg(reason)
            .arg(d.deliveries)
            .arg(consumer)
            .arg(job)
            .arg(DEAD_CAP);
        let _: u64 = self.scripts.finish.run(&mut self.con(), &call).await?;
        Ok(())
    }

    pub async fn note_error(&self, job: &JobId, error: &str) -> Result<(), JobError> {
        let call = Call::default().key(self.job_key(job)).arg(error);
        let _: String = self.scripts.note_error.run(&mut self.con(), &call).await?;
        Ok(())
    }
}

fn decode(job: Option<String>, chunk: Option<String>, n: Option<String>, posts: Option<String>) -> Delivery {
    let job = job.and_then(|j| JobId::parse(&j).ok());
    let chunk = chunk.and_then(|c| c.parse::<u64>().ok());
    let n_posts = n.and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    let posts = match posts {
        Some(p) => serde_json::from_str::<Vec<Post>>(&p).map_err(|e| format!("undecodable posts: {e}")),
        None => Err("message has no posts field".to_string()),
    };
    Delivery { msg_id: String::new(), job, chunk, n_posts, posts, deliveries: 1 }
}

fn decode_entry(entry: &StreamId, deliveries: u32) -> Delivery {
    let mut d = decode(entry.get("job"), entry.get("chunk"), entry.get("n"), entry.get("posts"));
    d.msg_id = entry.id.clone();
    d.deliveries = deliveries;
    d
}

fn parse_reclaim(v: Value) -> Result<(String, Vec<Delivery>), JobError> {
    let bad = || JobError::Corrupt("unexpected reclaim reply".into());
    let Value::Array(mut top) = v else { return Err(bad()) };
    if top.len() != 2 {
        return Err(bad());
    }
    let entries = top.pop().ok_or_else(bad)?;
    let next: String = redis::from_redis_value(top.pop().ok_or_else(bad)?).map_err(|_| bad())?;
    let entries: Vec<Vec<Value>> = redis::from_redis_value(entries).map_err(|_| bad())?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let s = |i: usize| e.get(i).and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
        let id = s(0).ok_or_else(bad)?;
        let deliveries = e.get(1).and_then(|v| redis::from_redis_value_ref::<u32>(v).ok()).unwrap_or(1);
        let opt = |x: Option<String>| x.filter(|v| !v.is_empty());
        let mut d = decode(opt(s(2)), opt(s(3)), opt(s(4)), opt(s(5)));
        d.msg_id = id;
        d.deliveries = deliveries;
        out.push(d);
    }
    Ok((next, out))
}

fn dead_letter(e: &StreamId) -> DeadLetter {
    let d = decode(e.get("job"), e.get("chunk"), e.get("n"), e.get("posts"));
    DeadLetter {
        id: e.id.clone(),
        job: d.job,
        chunk: d.chunk,
        reason: e.get("reason").unwrap_or_default(),
        deliveries: e.get::<String>("deliveries").and_then(|s| s.parse().ok()).unwrap_or(0),
        consumer: e.get("consumer").unwrap_or_default(),
        dead_at: e.get::<String>("dead_at").and_then(|s| s.parse().ok()).unwrap_or(0),
        posts: d.posts.unwrap_or_default(),
    }
}
