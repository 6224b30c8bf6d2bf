//! The audit log of run-time configuration changes: one JSON line per change
//! appended to a file (`<data_dir>/audit.log` by default) and the newest
//! kept in memory for `GET /performance/config`.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// One accepted change.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub at: chrono::DateTime<chrono::Utc>,
    /// The key id that made the change (never the key).
    pub actor: String,
    /// Dotted setting name → `{ "from": …, "to": … }`.
    pub changes: serde_json::Map<String, serde_json::Value>,
}

const KEEP: usize = 100;

pub struct AuditLog {
    path: PathBuf,
    recent: Mutex<VecDeque<AuditRecord>>,
}

impl AuditLog {
    pub fn new(path: PathBuf) -> Self {
        Self { path, recent: Mutex::new(VecDeque::new()) }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Appends `record` to the file (and fsyncs it) before keeping it in
    /// memory. A change that cannot be audited is not made, so this returns
    /// the I/O error for the caller to refuse the change with.
    pub fn append(&self, record: AuditRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(&line)?;
        file.sync_data()?;
        if recent.len() == KEEP {
            recent.pop_front();
        }
        recent.push_back(record);
        Ok(())
    }

    /// The newest records, newest first.
    pub fn recent(&self) -> Vec<AuditRecord> {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner).iter().rev().cloned().collect()
    }
}
