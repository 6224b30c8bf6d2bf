//! Errors of the job API, and of the processors the workers run.

use crate::JobId;

/// What a [`crate::Jobs`] call can fail with.
///
/// [`JobError::is_client_error`] separates the caller's mistakes (an unknown
/// job, a sealed one, a request over a limit) from the service's (Redis down,
/// a corrupt record), so the HTTP layer can answer 4xx or 5xx;
/// [`JobError::http_status`] names the code.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// No job with this id (never created, or expired after its retention).
    #[error("job {0} not found")]
    NotFound(JobId),
    /// The job was sealed (or sealed itself on reaching its announced total):
    /// no more posts can be appended.
    #[error("job {0} is sealed; no more posts can be appended")]
    Sealed(JobId),
    /// The job was cancelled.
    #[error("job {0} was cancelled")]
    Cancelled(JobId),
    /// The posts would take the job past `max_posts_per_job` (or past the
    /// total it announced).
    #[error("job too large: {requested} posts requested, the limit is {limit}")]
    TooLarge { requested: u64, limit: u64 },
    /// A malformed request (an empty chunk, a label too long, a bad job id…).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The settings are out of range; the message names the field.
    #[error("invalid job settings: {0}")]
    Settings(String),
    /// Redis refused or could not be reached. Transient: the same call may
    /// succeed once Redis is back.
    #[error("redis: {0}")]
    Redis(String),
    /// A job record or queue message could not be read back.
    #[error("corrupt job data: {0}")]
    Corrupt(String),
}

impl JobError {
    /// True for errors the caller caused (HTTP 4xx); false for the service's
    /// own failures (HTTP 5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            JobError::NotFound(_)
                | JobError::Sealed(_)
                | JobError::Cancelled(_)
                | JobError::TooLarge { .. }
                | JobError::Invalid(_)
        )
    }

    /// The HTTP status this error maps to: 404 unknown job, 409 sealed or
    /// cancelled, 413 too large, 400 invalid, 503 Redis unavailable, 500 for
    /// the rest.
    pub fn http_status(&self) -> u16 {
        match self {
            JobError::NotFound(_) => 404,
            JobError::Sealed(_) | JobError::Cancelled(_) => 409,
            JobError::TooLarge { .. } => 413,
            JobError::Invalid(_) => 400,
            JobError::Redis(_) => 503,
            JobError::Settings(_) | JobError::Corrupt(_) => 500,
        }
    }
}

impl From<redis::RedisError> for JobError {
    fn from(e: redis::RedisError) -> Self {
        JobError::Redis(e.to_string())
    }
}

/// Why a [`crate::Processor`] could not finish a chunk.
///
/// A retryable error leaves the chunk unacknowledged: it is delivered again
/// (to this or another worker) once `ack_wait` has passed, until it has been
/// delivered `max_deliveries` times, when it is dead-lettered. A permanent
/// error dead-letters the chunk at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProcessError {
    pub message: String,
    pub permanent: bool,
}

impl ProcessError {
    /// A failure that may go away (a store briefly down, a timeout).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: false }
    }

    /// A failure that will not (the chunk itself is bad): dead-letter now.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_4xx() {
        let id = JobId::new();
        let cases: Vec<(JobError, bool, u16)> = vec![
            (JobError::NotFound(id.clone()), true, 404),
            (JobError::Sealed(id.clone()), true, 409),
            (JobError::Cancelled(id), true, 409),
            (JobError::TooLarge { requested: 2, limit: 1 }, true, 413),
            (JobError::Invalid("x".into()), true, 400),
            (JobError::Redis("down".into()), false, 503),
            (JobError::Settings("x".into()), false, 500),
            (JobError::Corrupt("x".into()), false, 500),
        ];
        for (e, client, status) in cases {
            assert_eq!(e.is_client_error(), client, "{e}");
            assert_eq!(e.http_status(), status, "{e}");
            assert_eq!(e.is_client_error(), (400..500).contains(&e.http_status()));
        }
    }
}
