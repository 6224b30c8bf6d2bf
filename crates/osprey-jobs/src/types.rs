//! The job model shared by both backends: ids, specs, states, the stored
//! record and the status computed from it.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use osprey_types::analysis::Post;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JobError;

/// Longest accepted label, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Largest accepted `options` value, serialised, in bytes.
pub const MAX_OPTIONS_BYTES: usize = 64 * 1024;

/// A job's id: a UUID v7, so ids sort by creation time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(uuid::Uuid);

impl JobId {
    /// A fresh id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Parses an id given by a client (a path segment); anything but a UUID is
    /// [`JobError::Invalid`].
    pub fn parse(s: &str) -> Result<Self, JobError> {
        uuid::Uuid::parse_str(s.trim()).map(Self).map_err(|_| JobError::Invalid(format!("not a job id: {s:?}")))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for JobId {
    type Err = JobError;
    fn from_str(s: &str) -> Result<Self, JobError> {
        Self::parse(s)
    }
}

/// What a new job is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSpec {
    /// Free text shown in listings.
    pub label: Option<String>,
    /// Opaque analysis options; every [`crate::Processor::process`] call of
    /// this job gets them back.
    pub options: Value,
    /// The total the producer announces, when it knows it up front (a
    /// backfill of a source of known size). It is the target for progress
    /// and ETA before the job is sealed, [`crate::Jobs::append`] refuses to go
    /// past it, and the job seals itself once that many posts were appended.
    pub sealed_total: Option<u64>,
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Created; no chunk has started yet.
    Queued,
    /// At least one chunk started; not every chunk is finished, or the job is
    /// not sealed yet.
    Running,
    /// Sealed, and every chunk was processed.
    Completed,
    /// Sealed, every chunk finished, and at least one chunk was
    /// dead-lettered: `failed` posts were never processed successfully.
    Failed,
    /// Cancelled: chunks not started when it was cancelled are skipped.
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Completed, failed or cancelled: it will not change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed | JobState::Cancelled)
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as [`crate::Jobs::status`] reports it. Counts are in posts unless
/// named `chunks_*`. Once a job is finished,
/// `done + failed + skipped == total` and
/// `chunks_done + chunks_dead + chunks_skipped == chunks_total`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobStatus {
    pub id: JobId,
    pub label: Option<String>,
    pub state: JobState,
    /// No more posts will be appended.
    pub sealed: bool,
    /// The total announced at creation ([`JobSpec::sealed_total`]).
    pub expected_total: Option<u64>,
    /// Posts appended so far.
    pub total: u64,
    /// Posts in chunks the processor finished (counted once per chunk however
    /// often it was delivered).
    pub done: u64,
    /// Posts in dead-lettered chunks.
    pub failed: u64,
    /// Posts in chunks skipped because the job was cancelled.
    pub skipped: u64,
    /// Of `done`, what the processor reported stored ([`ChunkReport::stored`]).
    pub stored: u64,
    /// Of `done`, what the processor reported it could not store
    /// ([`ChunkReport::failed`]).
    pub rejected: u64,
    pub chunks_total: u64,
    pub chunks_done: u64,
    pub chunks_dead: u64,
    pub chunks_skipped: u64,
    /// Epoch milliseconds.
    pub created_at: u64,
    /// When the first chunk started (epoch ms).
    pub started_at: Option<u64>,
    /// When the job reached a terminal state (epoch ms).
    pub finished_at: Option<u64>,
    /// `done` posts per second of running time (start to finish, or to now).
    pub rate_per_sec: f64,
    /// Seconds left at the current rate, while running with a known target
    /// (sealed, or an announced total).
    pub eta_secs: Option<f64>,
    pub options: Value,
    /// The latest processing error (a retried or a dead-lettered chunk).
    pub last_error: Option<String>,
}

/// What a processor did with one chunk, in posts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkReport {
    pub stored: u64,
    /// Posts the processor gave up on individually; the chunk still counts
    /// as done (it is not redelivered).
    pub failed: u64,
}

/// A chunk moved to the dead-letter stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream (Redis) or a sequence number (memory).
    pub id: String,
    pub job: Option<JobId>,
    pub chunk: Option<u64>,
    pub reason: String,
    /// Times it had been delivered.
    pub deliveries: u32,
    /// The worker that dead-lettered it.
    pub consumer: String,
    /// Epoch ms.
    pub dead_at: u64,
    /// The chunk's posts (empty when they could not be decoded).
    pub posts: Vec<Post>,
}

/// Queue depth, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Messages not yet acknowledged, delivered or not.
    pub messages: u64,
    /// Of those, delivered to a worker and not acknowledged yet.
    pub pending: u64,
    /// Entries in the dead-letter stream.
    pub dead_letters: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A job record as stored (a Redis hash, or a struct in memory).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    pub id: JobId,
    pub label: Option<String>,
    pub options: Value,
    pub state: JobState,
    pub sealed: bool,
    pub expected: Option<u64>,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
    pub stored: u64,
    pub rejected: u64,
    pub chunks_total: u64,
    pub chunks_done: u64,
    pub chunks_dead: u64,
    pub chunks_skipped: u64,
    pub created_at: u64,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    pub last_error: Option<String>,
}

impl Record {
    pub fn new(id: JobId, spec: &JobSpec, created_at: u64) -> Self {
        Self {
            id,
            label: spec.label.clone(),
            options: spec.options.clone(),
            state: JobState::Queued,
            sealed: false,
            expected: spec.sealed_total,
            total: 0,
            done: 0,
            failed: 0,
            skipped: 0,
            stored: 0,
            rejected: 0,
            chunks_total: 0,
            chunks_done: 0,
            chunks_dead: 0,
            chunks_skipped: 0,
            created_at,
            started_at: None,
            finished_at: None,
            last_error: None,
        }
    }

    /// The fields written when a job is created (Redis hash layout).
    pub fn create_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("id", self.id.to_string()),
            ("state", self.state.as_str().to_string()),
            ("sealed", "0".to_string()),
            ("options", self.options.to_string()),
            ("created_at", self.created_at.to_string()),
        ];
        for (k, v) in [
            ("total", 0u64),
            ("done", 0),
            ("failed", 0),
            ("skipped", 0),
            ("stored", 0),
            ("rejected", 0),
            ("chunks_total", 0),
            ("chunks_done", 0),
            ("chunks_dead", 0),
            ("chunks_skipped", 0),
        ] {
            f.push((k, v.to_string()));
        }
        if let Some(label) = &self.label {
            f.push(("label", label.clone()));
        }
        if let Some(expected) = self.expected {
            f.push(("expected", expected.to_string()));
        }
        f
    }

    /// Reads a Redis hash back; `None` for an empty (missing) hash.
    pub fn from_hash(id: &JobId, h: &HashMap<String, String>) -> Result<Option<Self>, JobError> {
        if h.is_empty() {
            return Ok(None);
        }
        let corrupt = |field: &str| JobError::Corrupt(format!("job {id}: field {field}"));
        let num = |field: &str| -> Result<u64, JobError> {
            match h.get(field) {
                None => Ok(0),
                Some(v) => v.parse::<u64>().map_err(|_| corrupt(field)),
            }
        };
        let opt_num = |field: &str| -> Result<Option<u64>, JobError> {
            match h.get(field).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse::<u64>().map(Some).map_err(|_| corrupt(field)),
            }
        };
        let state = h.get("state").and_then(|s| JobState::parse(s)).ok_or_else(|| corrupt("state"))?;
        let options = match h.get("options") {
            None => Value::Null,
            Some(s) => serde_json::from_str(s).map_err(|_| corrupt("options"))?,
        };
        Ok(Some(Self {
            id: id.clone(),
            label: h.get("label").cloned(),
            options,
            state,
            sealed: h.get("sealed").map(|s| s == "1").unwrap_or(false),
            expected: opt_num("expected")?,
            total: num("total")?,
            done: num("done")?,
            failed: num("failed")?,
            skipped: num("skipped")?,
            stored: num("stored")?,
            rejected: num("rejected")?,
            chunks_total: num("chunks_total")?,
            chunks_done: num("chunks_done")?,
            chunks_dead: num("chunks_dead")?,
            chunks_skipped: num("chunks_skipped")?,
            created_at: num("created_at")?,
            started_at: opt_num("started_at")?,
            finished_at: opt_num("finished_at")?,
            last_error: h.get("last_error").filter(|s| !s.is_empty()).cloned(),
        }))
    }

    /// Chunks finished one way or another.
    pub fn chunks_finished(&self) -> u64 {
        self.chunks_done + self.chunks_dead + self.chunks_skipped
    }

    /// The state a sealed job with every chunk finished ends in.
    pub fn final_state(&self) -> JobState {
        if self.chunks_dead > 0 {
            JobState::Failed
        } else {
            JobState::Completed
        }
    }

    pub fn status(&self, now: u64) -> JobStatus {
        let rate = match self.started_at {
            Some(start) => {
                let end = self.finished_at.unwrap_or(now).max(start);
                let secs = (end - start) as f64 / 1000.0;
                if secs > 0.0 {
                    self.done as f64 / secs
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        let target = if self.sealed { Some(self.total) } else { self.expected };
        let eta = match (self.state, target) {
            (JobState::Running, Some(target)) if rate > 0.0 => {
                let left = target.saturating_sub(self.done + self.failed + self.skipped);
                Some(left as f64 / rate)
            }
            _ => None,
        };
        JobStatus {
            id: self.id.clone(),
            label: self.label.clone(),
            state: self.state,
            sealed: self.sealed,
            expected_total: self.expected,
            total: self.total,
            done: self.done,
            failed: self.failed,
            skipped: self.skipped,
            stored: self.stored,
            rejected: self.rejected,
            chunks_total: self.chunks_total,
            chunks_done: self.chunks_done,
            chunks_dead: self.chunks_dead,
            chunks_skipped: self.chunks_skipped,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            rate_per_sec: rate,
            eta_secs: eta,
            options: self.options.clone(),
            last_error: self.last_error.clone(),
        }
    }
}

/// Checks a spec against the limits.
pub(crate) fn validate_spec(spec: &JobSpec, max_posts: usize) -> Result<(), JobError> {
    if let Some(label) = &spec.label {
        if label.len() > MAX_LABEL_BYTES {
            return Err(JobError::Invalid(format!("label is longer than {MAX_LABEL_BYTES} bytes")));
        }
    }
    if spec.options.to_string().len() > MAX_OPTIONS_BYTES {
        return Err(JobError::Invalid(format!("options are larger than {MAX_OPTIONS_BYTES} bytes")));
    }
    if let Some(n) = spec.sealed_total {
        if n > max_posts as u64 {
            return Err(JobError::TooLarge { requested: n, limit: max_posts as u64 });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_parse_and_print() {
        let id = JobId::new();
        assert_eq!(JobId::parse(&id.to_string()).expect("round trip"), id);
        assert!(JobId::parse("../etc").expect_err("not a uuid").is_client_error());
        assert_eq!(serde_json::to_value(&id).expect("serialises"), Value::String(id.to_string()));
    }

    #[test]
    fn hash_round_trip() {
        let id = JobId::new();
        let spec = JobSpec { label: Some("l".into()), options: serde_json::json!({"a": 1}), sealed_total: Some(7) };
        let rec = Record::new(id.clone(), &spec, 42);
        let h: HashMap<String, String> = rec.create_fields().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(Record::from_hash(&id, &h).expect("parses"), Some(rec));
        assert_eq!(Record::from_hash(&id, &HashMap::new()).expect("empty"), None);
        let mut bad = h.clone();
        bad.insert("total".into(), "x".into());
        assert!(matches!(Record::from_hash(&id, &bad), Err(JobError::Corrupt(_))));
    }

    #[test]
    fn rate_and_eta() {
        let mut rec = Record::new(JobId::new(), &JobSpec::default(), 0);
        rec.state = JobState::Running;
        rec.started_at = Some(1_000);
        rec.total = 300;
        rec.done = 100;
        let s = rec.status(3_000);
        assert!((s.rate_per_sec - 50.0).abs() < 1e-9);
        assert_eq!(s.eta_secs, None, "unsealed with no announced total: no target");
        rec.sealed = true;
        let s = rec.status(3_000);
        assert!((s.eta_secs.expect("eta") - 4.0).abs() < 1e-9);
        rec.state = JobState::Completed;
        rec.done = 300;
        rec.finished_at = Some(4_000);
        let s = rec.status(100_000);
        assert!((s.rate_per_sec - 100.0).abs() < 1e-9, "rate is frozen at finish");
        assert_eq!(s.eta_secs, None);
    }

    #[test]
    fn spec_limits() {
        assert!(validate_spec(&JobSpec::default(), 10).is_ok());
        let long = JobSpec { label: Some("x".repeat(MAX_LABEL_BYTES + 1)), ..Default::default() };
        assert!(matches!(validate_spec(&long, 10), Err(JobError::Invalid(_))));
        let big = JobSpec { sealed_total: Some(11), ..Default::default() };
        assert!(matches!(validate_spec(&big, 10), Err(JobError::TooLarge { requested: 11, limit: 10 })));
    }
}
