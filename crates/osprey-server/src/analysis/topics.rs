//! Named, versioned topic sets kept server-side.
//!
//! A `PUT` embeds every phrase once (the label and each example) and keeps the
//! unit vectors with the set, so filtering a post costs one dot product per
//! phrase. Where the sets live depends on whether the server has a store:
//!
//! - With a store (`store.enabled`, SQLite or PostgreSQL), the database's
//!   `topic_sets` table is the truth, shared by every replica: versions are
//!   numbered there, a delete there is seen by all. Vectors are not stored:
//!   each replica embeds a version's phrases on first use and keeps the built
//!   set in memory (see [`shared`]). The `<data_dir>/topics` files are not
//!   written; any found there at the first use are imported once (and
//!   renamed `*.json.imported`), so an upgrade keeps the sets it had.
//! - Without a store, sets are kept in memory and written to
//!   `<data_dir>/topics/<name>.json` (atomically: a temporary file renamed
//!   over the old one) together with their vectors and the embedding model's
//!   revision, and read back at start. A set whose vectors came from another
//!   model revision is re-embedded on first use.
//!
//! # Layout
//! - [`TopicDraft`]: a validated `PUT` body.
//! - [`TopicStore`]: the entry points the routes and the analyzer use,
//!   over either of the two below.
//! - `FileSets`: the file-backed sets of a server without a store.
//! - [`shared`]: the database-backed sets and their per-replica cache.

mod shared;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use osprey_nlp::topics::TopicIndex;
use osprey_types::analysis::{TopicSetInfo, TopicSetRequest, TopicSpec};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// Limits on one topic set.
pub const MAX_TOPICS: usize = 256;
pub const MAX_EXAMPLES_PER_TOPIC: usize = 100;
pub const MAX_PHRASE_CHARS: usize = 2_000;
pub const MAX_PHRASES: usize = 4_096;

/// A stored set with its phrase vectors.
pub struct TopicSet {
    pub info: TopicSetInfo,
    pub index: TopicIndex,
    /// `model@revision` of the vectors.
    pub revision: String,
}

impl TopicSet {
    /// Identifies what a filter result depends on: topics, examples,
    /// threshold and the vectors' revision (not the version number, which
    /// starts again at 1 after a delete).
    pub fn fingerprint(&self) -> u128 {
        use super::cache::KeyParts as _;
        let mut k = super::cache::KeyBuilder::new("topic-set");
        k.str(&self.info.name).opts(&self.info.topics).opts(&self.info.threshold).str(&self.revision);
        k.finish().0
    }
}

/// A validated `PUT` body: the phrases to embed, each with its topic.
pub struct TopicDraft {
    pub name: String,
    pub topics: Vec<TopicSpec>,
    pub threshold: f32,
    pub description: Option<String>,
}

impl TopicDraft {
    /// Checks a `PUT /v1/topics/{name}` request (parse, don't validate: the
    /// draft is known good from here on).
    pub fn parse(name: &str, req: TopicSetRequest, default_threshold: f32) -> ApiResult<Self> {
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            || name.starts_with('.')
        {
            return Err(ApiError::validation(format!(
                "topic set name {name:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.', not starting with '.'"
            )));
        }
        if req.topics.is_empty() || req.topics.len() > MAX_TOPICS {
            return Err(ApiError::validation(format!("`topics` must hold 1 to {MAX_TOPICS} topics")));
        }
        let mut seen = std::collections::HashSet::new();
        let mut phrases = 0;
        let mut topics = Vec::with_capacity(req.topics.len());
        for (i, t) in req.topics.into_iter().enumerate() {
            let label = t.label.trim().to_string();
            if label.is_empty() || label.chars().count() > 200 {
                return Err(ApiError::validation(format!("`topics[{i}].label` must be 1 to 200 characters")));
            }
            if !seen.insert(label.clone()) {
                return Err(ApiError::validation(format!("topic label {label:?} appears twice")));
            }
            if t.examples.len() > MAX_EXAMPLES_PER_TOPIC {
                return Err(ApiError::validation(format!(
                    "`topics[{i}].examples` holds {}; at most {MAX_EXAMPLES_PER_TOPIC} are accepted",
                    t.examples.len()
                )));
            }
            let mut examples = Vec::with_capacity(t.examples.len());
            for (j, e) in t.examples.into_iter().enumerate() {
                let e = e.trim().to_string();
                if e.is_empty() || e.chars().count() > MAX_PHRASE_CHARS {
                    return Err(ApiError::validation(format!(
                        "`topics[{i}].examples[{j}]` must be 1 to {MAX_PHRASE_CHARS} characters"
                    )));
                }
                examples.push(e);
            }
            phrases += 1 + examples.len();
            topics.push(TopicSpec { label, examples });
        }
        if phrases > MAX_PHRASES {
            return Err(ApiError::validation(format!("a topic set may hold at most {MAX_PHRASES} phrases")));
        }
        let threshold = req.threshold.unwrap_or(default_threshold);
        if !threshold.is_finite() || !(-1.0..=1.0).contains(&threshold) {
            return Err(ApiError::validation("`threshold` must be within [-1, 1]"));
        }
        Ok(Self { name: name.to_string(), topics, threshold, description: req.description })
    }

    /// `(topic index, phrase)` for every phrase: the label, then the examples.
    pub fn phrases(&self) -> Vec<(usize, String)> {
        phrases_of(&self.topics)
    }
}

pub fn phrases_of(topics: &[TopicSpec]) -> Vec<(usize, String)> {
    topics
        .iter()
        .enumerate()
        .flat_map(|(i, t)| std::iter::once((i, t.label.clone())).chain(t.examples.iter().map(move |e| (i, e.clone()))))
        .collect()
}

#[derive(Serialize, Deserialize)]
struct FileFormat {
    info: TopicSetInfo,
    revision: String,
    /// Little-endian f32 vectors, base64, one per phrase in `phrases_of` order.
    vectors: Vec<String>,
}

/// The topic sets: in the database when the server has a store, else in
/// memory and files (see the module docs).
pub struct TopicStore {
    inner: Inner,
}

enum Inner {
    Files(FileSets),
    Shared(shared::SharedSets),
}

impl TopicStore {
    /// With `store`, the sets are the database's and `dir` only holds files
    /// to import; without, they are read from and written to `dir`.
    pub fn open(dir: Option<PathBuf>, store: Option<osprey_store::Store>) -> Self {
        let inner = match store {
            Some(store) => Inner::Shared(shared::SharedSets::new(store, dir)),
            None => Inner::Files(FileSets::open(dir)),
        };
        Self { inner }
    }

    /// Whether the sets live in the database (shared by replicas).
    pub fn is_shared(&self) -> bool {
        matches!(self.inner, Inner::Shared(_))
    }

    /// The latest version of every set, by name.
    pub async fn list(&self) -> ApiResult<Vec<TopicSetInfo>> {
        match &self.inner {
            Inner::Files(f) => Ok(f.list()),
            Inner::Shared(s) => s.list().await,
        }
    }

    /// The latest version of `name` (read from the database, when there is one).
    pub async fn info(&self, name: &str) -> ApiResult<Option<TopicSetInfo>> {
        match &self.inner {
            Inner::Files(f) => Ok(f.get(name).map(|s| s.info.clone())),
            Inner::Shared(s) => s.info(name).await,
        }
    }

    /// Stores a new version of `draft` with its phrase vectors.
    pub async fn insert(
        &self,
        draft: TopicDraft,
        vectors: Vec<Vec<f32>>,
        model: &str,
        revision: &str,
    ) -> ApiResult<Arc<TopicSet>> {
        match &self.inner {
            Inner::Files(f) => f.insert(draft, vectors, model, revision),
            Inner::Shared(s) => s.insert(draft, vectors, model, revision).await,
        }
    }

    /// Removes every version of a set; returns whether it existed.
    pub async fn delete(&self, name: &str) -> ApiResult<bool> {
        match &self.inner {
            Inner::Files(f) => f.delete(name),
            Inner::Shared(s) => s.delete(name).await,
        }
    }

    /// The set `name` with vectors of the model revision `revision`
    /// (`model@revision`), computed with `embed` (one vector per phrase of
    /// [`phrases_of`]) when this process has none for it yet. A 404 when
    /// there is no such set.
    pub async fn resolve<F, Fut>(&self, name: &str, model: &str, revision: &str, embed: F) -> ApiResult<Arc<TopicSet>>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = ApiResult<Vec<Vec<f32>>>>,
    {
        let missing =
            || ApiError::not_found(format!("no topic set named {name:?}; create it with PUT /v1/topics/{name}"));
        match &self.inner {
            Inner::Shared(s) => s.resolve(name, revision, embed).await?.ok_or_else(missing),
            Inner::Files(f) => {
                let set = f.get(name).ok_or_else(missing)?;
                if set.revision == revision {
                    return Ok(set);
                }
                tracing::info!(set = name, from = %set.revision, to = %revision, "re-embedding topic set for a new model");
                let phrases: Vec<String> = phrases_of(&set.info.topics).into_iter().map(|(_, p)| p).collect();
                let vectors = embed(phrases).await?;
                f.replace_vectors(&set, vectors, model, revision)
            }
        }
    }

    /// How many sets there are, for `/info`: exact without a database; with
    /// one, as last read (a read older than a few seconds is started in the
    /// background, so this never waits on the database).
    pub fn count(&self) -> usize {
        match &self.inner {
            Inner::Files(f) => f.read().len(),
            Inner::Shared(s) => s.count(),
        }
    }
}

/// Every topic set, in memory, mirrored to disk when a directory is given:
/// the store of a server without a database.
struct FileSets {
    sets: RwLock<HashMap<String, Arc<TopicSet>>>,
    dir: Option<PathBuf>,
    /// Held across a write's memory and disk steps.
    io: std::sync::Mutex<()>,
    /// Highest version each name has had, so a set deleted and created again
    /// never reuses a version number within a process.
    versions: std::sync::Mutex<HashMap<String, u64>>,
}

impl FileSets {
    /// Opens the store, reading every set saved under `dir`.
    fn open(dir: Option<PathBuf>) -> Self {
        let store = Self {
            sets: RwLock::new(HashMap::new()),
            dir,
            io: std::sync::Mutex::new(()),
            versions: std::sync::Mutex::new(HashMap::new()),
        };
        if let Some(dir) = &store.dir {
            match std::fs::read_dir(dir) {
                Ok(entries) => {
                    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                        if path.extension().is_some_and(|e| e == "json") {
                            match read_set(&path) {
                                Ok(set) => {
                                    store
                                        .versions
                                        .lock()
                                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                                        .insert(set.info.name.clone(), set.info.version);
                                    store.write().insert(set.info.name.clone(), Arc::new(set));
                                }
                                Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping topic set file"),
                            }
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot read the topic set directory"),
            }
        }
        store
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<TopicSet>>> {
        self.sets.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<TopicSet>>> {
        self.sets.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, name: &str) -> Option<Arc<TopicSet>> {
        self.read().get(name).cloned()
    }

    fn list(&self) -> Vec<TopicSetInfo> {
        let mut v: Vec<TopicSetInfo> = self.read().values().map(|s| s.info.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Swaps in re-embedded vectors for `current`, unless the set changed
    /// (a newer `PUT`, a delete) while they were computed; then the set as it
    /// now stands is returned, or a 503 asking to retry if it is gone or still
    /// holds old vectors.
    fn replace_vectors(
        &self,
        current: &TopicSet,
        vectors: Vec<Vec<f32>>,
        model: &str,
        revision: &str,
    ) -> ApiResult<Arc<TopicSet>> {
        let draft = TopicDraft {
            name: current.info.name.clone(),
            topics: current.info.topics.clone(),
            threshold: current.info.threshold,
            description: current.info.description.clone(),
        };
        let _write = self.lock_io();
        let now = self.get(&current.info.name);
        match now {
            Some(now) if now.info.version == current.info.version && now.revision == current.revision => {
                self.store(draft, vectors, model, revision, Some(current.info.version))
            }
            Some(now) if now.revision == revision => Ok(now),
            _ => Err(ApiError::new(
                osprey_types::error::ErrorCode::NotReady,
                format!("topic set {:?} changed while it was re-embedded; retry", current.info.name),
            )),
        }
    }

    /// Serialises writes (memory and disk together), so a delete and a put
    /// of the same name cannot interleave their file operations.
    fn lock_io(&self) -> std::sync::MutexGuard<'_, ()> {
        self.io.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a new version of `draft` with its phrase vectors.
    fn insert(
        &self,
        draft: TopicDraft,
        vectors: Vec<Vec<f32>>,
        model: &str,
        revision: &str,
    ) -> ApiResult<Arc<TopicSet>> {
        let _write = self.lock_io();
        self.store(draft, vectors, model, revision, None)
    }

    /// With `replace_version`, keeps that version number (a re-embedding).
    /// Callers hold the io lock.
    fn store(
        &self,
        draft: TopicDraft,
        vectors: Vec<Vec<f32>>,
        model: &str,
        revision: &str,
        replace_version: Option<u64>,
    ) -> ApiResult<Arc<TopicSet>> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let labels: Vec<String> = draft.topics.iter().map(|t| t.label.clone()).collect();
        let phrases: Vec<(usize, Vec<f32>)> =
            draft.phrases().into_iter().map(|(t, _)| t).zip(vectors.iter().cloned()).collect();
        let index = TopicIndex::new(labels, phrases).map_err(|e| ApiError::validation(e.to_string()))?;
        let previous = self.get(&draft.name);
        let previous = previous.as_deref();
        let version = match replace_version {
            Some(v) => v,
            None => {
                let mut seen = self.versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let last = seen.get(&draft.name).copied().unwrap_or(0).max(previous.map_or(0, |p| p.info.version));
                seen.insert(draft.name.clone(), last + 1);
                last + 1
            }
        };
        let info = TopicSetInfo {
            name: draft.name.clone(),
            version,
            topics: draft.topics,
            threshold: draft.threshold,
            description: draft.description,
            created_at: previous.map_or(now, |p| p.info.created_at),
            updated_at: if replace_version.is_some() { previous.map_or(now, |p| p.info.updated_at) } else { now },
            model: model.to_string(),
        };
        let set = Arc::new(TopicSet { info, index, revision: revision.to_string() });
        if let Some(dir) = &self.dir {
            write_set(dir, &set, &vectors).map_err(|e| {
                ApiError::new(osprey_types::error::ErrorCode::Internal, format!("saving topic set: {e}"))
            })?;
        }
        self.write().insert(draft.name, Arc::clone(&set));
        Ok(set)
    }

    /// Removes a set; returns whether it existed.
    fn delete(&self, name: &str) -> ApiResult<bool> {
        let _write = self.lock_io();
        let removed = self.write().remove(name).is_some();
        if removed {
            if let Some(dir) = &self.dir {
                let path = dir.join(format!("{name}.json"));
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(ApiError::new(
                            osprey_types::error::ErrorCode::Internal,
                            format!("removing {}: {e}", path.display()),
                        ))
                    }
                }
            }
        }
        Ok(removed)
    }
}

fn write_set(dir: &Path, set: &TopicSet, vectors: &[Vec<f32>]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let file = FileFormat {
        info: set.info.clone(),
        revision: set.revision.clone(),
        vectors: vectors
            .iter()
            .map(|v| b64.encode(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()))
            .collect(),
    };
    let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{}.json.tmp", set.info.name));
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(format!("{}.json", set.info.name)))?;
    // The rename itself is durable once the directory is synced.
    std::fs::File::open(dir)?.sync_all()
}

fn read_set(path: &Path) -> Result<TopicSet, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let file: FileFormat = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let phrases = phrases_of(&file.info.topics);
    if phrases.len() != file.vectors.len() {
        return Err(format!("{} phrases but {} vectors", phrases.len(), file.vectors.len()));
    }
    let mut pairs = Vec::with_capacity(phrases.len());
    for ((topic, _), v) in phrases.into_iter().zip(&file.vectors) {
        let raw = b64.decode(v).map_err(|e| e.to_string())?;
        let vector: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        pairs.push((topic, vector));
    }
    let labels = file.info.topics.iter().map(|t| t.label.clone()).collect();
    let index = TopicIndex::new(labels, pairs).map_err(|e| e.to_string())?;
    Ok(TopicSet { info: file.info, index, revision: file.revision })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(topics: Vec<(&str, Vec<&str>)>) -> TopicSetRequest {
        TopicSetRequest {
            topics: topics
                .into_iter()
                .map(|(l, e)| TopicSpec { label: l.into(), examples: e.into_iter().map(String::from).collect() })
                .collect(),
            threshold: None,
            description: None,
        }
    }

    #[test]
    fn drafts_reject_bad_names_and_duplicates() {
        assert!(TopicDraft::parse("../etc", req(vec![("a", vec![])]), 0.3).is_err());
        assert!(TopicDraft::parse(".hidden", req(vec![("a", vec![])]), 0.3).is_err());
        assert!(TopicDraft::parse("ok", req(vec![]), 0.3).is_err());
        assert!(TopicDraft::parse("ok", req(vec![("a", vec![]), (" a ", vec![])]), 0.3).is_err());
        assert!(TopicDraft::parse("ok", req(vec![("a", vec![" "])]), 0.3).is_err());
        let d = TopicDraft::parse("rust-2024", req(vec![("a", vec!["x", "y"]), ("b", vec![])]), 0.3).expect("valid");
        assert_eq!(d.phrases(), vec![(0, "a".into()), (0, "x".into()), (0, "y".into()), (1, "b".into())]);
    }

    #[test]
    fn sets_persist_and_versions_grow() {
        let dir = std::env::temp_dir().join(format!("osprey-topics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = FileSets::open(Some(dir.clone()));
        let draft = || TopicDraft::parse("s", req(vec![("a", vec!["x"]), ("b", vec![])]), 0.3).expect("valid");
        let vecs = vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]];
        assert_eq!(store.insert(draft(), vecs.clone(), "m", "r1").expect("insert").info.version, 1);
        assert_eq!(store.insert(draft(), vecs, "m", "r1").expect("insert").info.version, 2);
        let reopened = FileSets::open(Some(dir.clone()));
        let set = reopened.get("s").expect("persisted");
        assert_eq!((set.info.version, set.revision.as_str()), (2, "r1"));
        assert_eq!(set.index.score(&[0.0, 1.0]).best, 1);
        assert!(reopened.delete("s").expect("delete"));
        assert!(FileSets::open(Some(dir.clone())).get("s").is_none());
        // A set made again after a delete never reuses a version number.
        let vecs = vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]];
        assert_eq!(reopened.insert(draft(), vecs, "m", "r1").expect("insert").info.version, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
