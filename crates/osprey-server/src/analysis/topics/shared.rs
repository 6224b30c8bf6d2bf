//! Topic sets in the database, shared by every replica that uses it.
//!
//! The `topic_sets` table holds each version's topics, threshold and
//! description; it numbers the versions (the highest plus one, chosen and
//! inserted in one statement, so two replicas writing at once get two
//! versions). Phrase vectors are not stored: they belong to a model
//! revision, and each replica computes them for a version on its first use
//! and keeps the built [`TopicSet`] in memory, keyed by the version's
//! contents and the embedding revision. A replica embeds each version once
//! however many requests arrive together (they wait on one computation).
//!
//! How fresh a replica's view is:
//! - `GET /v1/topics[/{name}]`, `PUT` and `DELETE` always ask the database.
//! - Resolving a set for `/v1/filter` and `/v1/analyze` asks it at most once
//!   per [`RECHECK_AFTER`] per name (a primary-key lookup, once per request,
//!   never per post), so a change made through another replica is used here
//!   within that bound. A replica sees its own writes at once. A name the
//!   database does not have is never cached: a set created elsewhere is
//!   found by the next request.
//! - When the database cannot be reached, a set seen before is still used
//!   (with a warning); one never seen is a 503.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osprey_nlp::topics::TopicIndex;
use osprey_store::{Store, TopicSetRow};
use osprey_types::analysis::{TopicSetInfo, TopicSpec};
use osprey_types::error::ErrorCode;
use tokio::sync::OnceCell;

use super::{phrases_of, read_set, TopicDraft, TopicSet};
use crate::error::{ApiError, ApiResult};
use crate::routes::store::store_error;

/// Longest a replica resolves a set from what it last read without asking
/// the database again. A lookup costs a fraction of a millisecond against a
/// filter request's embedding work; the bound only spares the database one
/// query per request under heavy load.
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// How old the set count `/info` shows may get before it is read again.
const COUNT_TTL: Duration = Duration::from_secs(10);

/// The latest version of a name as last read, and when that read began.
struct Latest {
    info: Arc<TopicSetInfo>,
    as_of: Instant,
}

/// A version's set built (or being built) for one embedding revision.
struct Built {
    info: Arc<TopicSetInfo>,
    revision: String,
    set: Arc<OnceCell<Arc<TopicSet>>>,
}

pub struct SharedSets {
    store: Store,
    latest: Mutex<HashMap<String, Latest>>,
    /// One entry per name: the newest version this replica has used.
    built: Mutex<HashMap<String, Built>>,
    /// `<data_dir>/topics`, whose files are imported once.
    import_dir: Option<PathBuf>,
    imported: OnceCell<()>,
    count: Arc<CountHint>,
}

/// The number of sets, as of the last read; refreshed in the background.
#[derive(Default)]
struct CountHint {
    n: AtomicUsize,
    read_at: Mutex<Option<Instant>>,
    refreshing: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SharedSets {
    pub fn new(store: Store, import_dir: Option<PathBuf>) -> Self {
        Self {
            store,
            latest: Mutex::new(HashMap::new()),
            built: Mutex::new(HashMap::new()),
            import_dir,
            imported: OnceCell::new(),
            count: Arc::new(CountHint::default()),
        }
    }

    /// Imports the file-backed sets once, before the first use.
    async fn ready(&self) {
        self.imported.get_or_init(|| self.import()).await;
    }

    pub async fn list(&self) -> ApiResult<Vec<TopicSetInfo>> {
        self.ready().await;
        let rows = self.store.list_topic_sets().await.map_err(store_error)?;
        let sets = rows.into_iter().map(info_of).collect::<ApiResult<Vec<_>>>()?;
        self.count.set(sets.len());
        Ok(sets)
    }

    /// The latest version of `name`, read from the database now.
    pub async fn info(&self, name: &str) -> ApiResult<Option<TopicSetInfo>> {
        self.ready().await;
        Ok(self.latest(name, Duration::ZERO).await?.map(|i| (*i).clone()))
    }

    /// Stores `draft` as the name's next version; `vectors` (one per phrase)
    /// are kept in this replica's memory only.
    pub async fn insert(
        &self,
        draft: TopicDraft,
        vectors: Vec<Vec<f32>>,
        model: &str,
        revision: &str,
    ) -> ApiResult<Arc<TopicSet>> {
        self.ready().await;
        let index = index_of(&draft.topics, vectors)?;
        let now = now_ms();
        let row = TopicSetRow {
            name: draft.name,
            version: 0,
            topics: serde_json::to_value(&draft.topics)
                .map_err(|e| ApiError::new(ErrorCode::Internal, format!("encoding topics: {e}")))?,
            threshold: f64::from(draft.threshold),
            description: draft.description,
            model: model.to_string(),
            created_at: now,
            updated_at: now,
        };
        let stored = self.store.create_topic_set_version(&row).await.map_err(store_error)?;
        let info = Arc::new(info_of(stored)?);
        if info.version == 1 {
            self.count.n.fetch_add(1, Ordering::Relaxed);
        }
        let info = self.remember(info, Instant::now());
        let set = Arc::new(TopicSet { info: (*info).clone(), index, revision: revision.to_string() });
        // Only fails if a request built this version first, which is as good.
        let _ = self.cell_for(&info, revision).set(Arc::clone(&set));
        Ok(set)
    }

    /// Deletes every version of `name`; whether there was one.
    pub async fn delete(&self, name: &str) -> ApiResult<bool> {
        self.ready().await;
        let removed = self.store.delete_topic_set(name).await.map_err(store_error)? > 0;
        self.forget(name, Instant::now());
        if removed {
            let _ = self.count.n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        Ok(removed)
    }

    /// The latest version of `name` (at most [`RECHECK_AFTER`] old) built for
    /// `revision`, embedding its phrases with `embed` if this replica has not
    /// yet; `None` when there is no such set.
    pub async fn resolve<F, Fut>(&self, name: &str, revision: &str, embed: F) -> ApiResult<Option<Arc<TopicSet>>>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = ApiResult<Vec<Vec<f32>>>>,
    {
        self.ready().await;
        let Some(info) = self.latest(name, RECHECK_AFTER).await? else { return Ok(None) };
        let cell = self.cell_for(&info, revision);
        let set = cell
            .get_or_try_init(|| async {
                let started = Instant::now();
                let phrases: Vec<String> = phrases_of(&info.topics).into_iter().map(|(_, p)| p).collect();
                let n = phrases.len();
                let index = index_of(&info.topics, embed(phrases).await?)?;
                tracing::info!(
                    set = name,
                    version = info.version,
                    revision,
                    phrases = n,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "embedded a topic set's phrases on this replica"
                );
                Ok::<_, ApiError>(Arc::new(TopicSet { info: (*info).clone(), index, revision: revision.to_string() }))
            })
            .await?;
        Ok(Some(Arc::clone(set)))
    }

    /// The number of sets as last read; a read older than [`COUNT_TTL`] is
    /// started in the background (when called on a runtime).
    pub fn count(&self) -> usize {
        let stale = lock(&self.count.read_at).is_none_or(|at| at.elapsed() > COUNT_TTL);
        if stale && !self.count.refreshing.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let (store, count) = (self.store.clone(), Arc::clone(&self.count));
                    rt.spawn(async move {
                        if let Ok(rows) = store.list_topic_sets().await {
                            count.set(rows.len());
                        }
                        count.refreshing.store(false, Ordering::Release);
                    });
                }
                Err(_) => self.count.refreshing.store(false, Ordering::Release),
            }
        }
        self.count.n.load(Ordering::Relaxed)
    }

    /// The latest version of `name`: from memory when read within
    /// `max_age`, else from the database. A failed read falls back to what
    /// was read before, unless `max_age` is zero (the caller wants the truth).
    async fn latest(&self, name: &str, max_age: Duration) -> ApiResult<Option<Arc<TopicSetInfo>>> {
        let known = lock(&self.latest).get(name).map(|l| (Arc::clone(&l.info), l.as_of));
        if let Some((info, as_of)) = &known {
            if as_of.elapsed() < max_age {
                return Ok(Some(Arc::clone(info)));
            }
        }
        let asked = Instant::now();
        match self.store.get_topic_set(name, None).await {
            Ok(Some(row)) => Ok(Some(self.remember(Arc::new(info_of(row)?), asked))),
            Ok(None) => {
                self.forget(name, asked);
                Ok(None)
            }
            Err(e) => match known {
                Some((info, _)) if !max_age.is_zero() => {
                    tracing::warn!(set = name, error = %e, "topic set lookup failed; using the version last read");
                    Ok(Some(info))
                }
                _ => Err(store_error(e)),
            },
        }
    }

    /// Records `info` as the latest version, read at `as_of`, unless a
    /// later read or write is already recorded. Returns the value recorded
    /// (the one already held when equal, so callers share one `Arc`).
    fn remember(&self, info: Arc<TopicSetInfo>, as_of: Instant) -> Arc<TopicSetInfo> {
        let mut latest = lock(&self.latest);
        match latest.get_mut(&info.name) {
            Some(l) if l.as_of > as_of => Arc::clone(&l.info),
            Some(l) => {
                if *l.info != *info {
                    l.info = info;
                }
                l.as_of = as_of;
                Arc::clone(&l.info)
            }
            None => {
                latest.insert(info.name.clone(), Latest { info: Arc::clone(&info), as_of });
                info
            }
        }
    }

    /// Drops what is held about `name`, unless it was recorded after `as_of`.
    fn forget(&self, name: &str, as_of: Instant) {
        let mut latest = lock(&self.latest);
        if latest.get(name).is_some_and(|l| l.as_of <= as_of) {
            latest.remove(name);
            lock(&self.built).remove(name);
        }
    }

    /// The cell holding `info`'s set for `revision`, replacing the one kept
    /// for an older version (or another revision) of the name.
    fn cell_for(&self, info: &Arc<TopicSetInfo>, revision: &str) -> Arc<OnceCell<Arc<TopicSet>>> {
        let mut built = lock(&self.built);
        if let Some(b) = built.get(&info.name) {
            if b.revision == revision && (Arc::ptr_eq(&b.info, info) || *b.info == **info) {
                return Arc::clone(&b.set);
            }
        }
        let set = Arc::new(OnceCell::new());
        built.insert(
            info.name.clone(),
            Built { info: Arc::clone(info), revision: revision.to_string(), set: Arc::clone(&set) },
        );
        set
    }

    /// Moves the sets of the file-backed store (`<data_dir>/topics/*.json`)
    /// into the database, keeping their versions and times, and renames
    /// each file `*.json.imported`. A name the database already has is left
    /// as the database has it. Failures are logged and leave the file.
    async fn import(&self) {
        let Some(dir) = &self.import_dir else { return };
        let paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read the topic set directory to import it");
                return;
            }
        };
        for path in paths {
            if let Err(e) = self.import_one(&path).await {
                tracing::warn!(path = %path.display(), error = %e, "topic set file not imported");
            }
        }
    }

    async fn import_one(&self, path: &Path) -> Result<(), String> {
        let info = read_set(path)?.info;
        let exists = self.store.get_topic_set(&info.name, None).await.map_err(|e| e.to_string())?.is_some();
        if !exists {
            let row = TopicSetRow {
                name: info.name.clone(),
                version: i64::try_from(info.version.max(1)).map_err(|e| e.to_string())?,
                topics: serde_json::to_value(&info.topics).map_err(|e| e.to_string())?,
                threshold: f64::from(info.threshold),
                description: info.description.clone(),
                model: info.model.clone(),
                created_at: secs_to_ms(info.created_at),
                updated_at: secs_to_ms(info.updated_at),
            };
            self.store.put_topic_set(&row).await.map_err(|e| e.to_string())?;
        }
        let mut done = path.as_os_str().to_owned();
        done.push(".imported");
        std::fs::rename(path, &done).map_err(|e| e.to_string())?;
        tracing::info!(
            set = %info.name,
            version = info.version,
            imported = !exists,
            "topic set file moved to the database"
        );
        Ok(())
    }
}

impl CountHint {
    fn set(&self, n: usize) {
        self.n.store(n, Ordering::Relaxed);
        *lock(&self.read_at) = Some(Instant::now());
    }
}

/// The scoring index over `topics`' phrases, given one vector per phrase.
fn index_of(topics: &[TopicSpec], vectors: Vec<Vec<f32>>) -> ApiResult<TopicIndex> {
    let labels = topics.iter().map(|t| t.label.clone()).collect();
    let phrases = phrases_of(topics).into_iter().map(|(t, _)| t).zip(vectors).collect();
    TopicIndex::new(labels, phrases).map_err(|e| ApiError::validation(e.to_string()))
}

/// A stored row as the wire shows it (times in seconds).
fn info_of(row: TopicSetRow) -> ApiResult<TopicSetInfo> {
    let topics: Vec<TopicSpec> = serde_json::from_value(row.topics).map_err(|e| {
        ApiError::new(ErrorCode::Internal, format!("topic set {:?} v{} is unreadable: {e}", row.name, row.version))
    })?;
    Ok(TopicSetInfo {
        name: row.name,
        version: u64::try_from(row.version).unwrap_or(0),
        topics,
        threshold: row.threshold as f32,
        description: row.description,
        created_at: u64::try_from(row.created_at / 1000).unwrap_or(0),
        updated_at: u64::try_from(row.updated_at / 1000).unwrap_or(0),
        model: row.model,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 1000).saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, version: i64) -> TopicSetRow {
        TopicSetRow {
            name: name.into(),
            version,
            topics: serde_json::json!([{ "label": "a", "examples": ["x"] }, { "label": "b", "examples": [] }]),
            threshold: 0.3,
            description: Some("d".into()),
            model: "m".into(),
            created_at: 1_700_000_000_123,
            updated_at: 1_700_000_005_999,
        }
    }

    #[test]
    fn rows_read_as_the_wire_shows_them() {
        let info = info_of(row("s", 3)).expect("readable");
        assert_eq!((info.version, info.created_at, info.updated_at), (3, 1_700_000_000, 1_700_000_005));
        assert_eq!(info.threshold, 0.3);
        assert_eq!(info.topics[0].examples, vec!["x".to_string()]);
        let mut bad = row("s", 1);
        bad.topics = serde_json::json!({ "not": "a list" });
        assert_eq!(info_of(bad).expect_err("unreadable").code, ErrorCode::Internal);
    }

    /// A directory of the calling test's own, removed with the value.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("osprey-shared-topics-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn sqlite_sets() -> (SharedSets, TempDir) {
        let dir = TempDir::new();
        let settings = osprey_store::StoreSettings { aggregate_refresh_interval: Duration::ZERO, ..Default::default() };
        let store = Store::open(&settings, dir.path()).await.expect("open");
        (SharedSets::new(store, Some(dir.path().join("topics"))), dir)
    }

    fn draft(threshold: f32) -> TopicDraft {
        let topics = vec![
            TopicSpec { label: "a".into(), examples: vec!["x".into()] },
            TopicSpec { label: "b".into(), examples: vec![] },
        ];
        TopicDraft { name: "s".into(), topics, threshold, description: None }
    }

    fn vectors() -> Vec<Vec<f32>> {
        vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]]
    }

    #[tokio::test]
    async fn two_replicas_share_versions_and_deletes() {
        let (a, _dir) = sqlite_sets().await;
        let b = SharedSets::new(a.store.clone(), None);
        assert_eq!(a.insert(draft(0.3), vectors(), "m", "r1").await.expect("put").info.version, 1);
        // B builds the set itself, once, and uses it for later requests.
        let embeds = AtomicUsize::new(0);
        let embed = |phrases: Vec<String>| {
            embeds.fetch_add(1, Ordering::Relaxed);
            assert_eq!(phrases, vec!["a", "x", "b"]);
            async { Ok(vectors()) }
        };
        let got = b.resolve("s", "r1", embed).await.expect("resolve").expect("found");
        assert_eq!((got.info.version, got.index.score(&[0.0, 1.0]).best), (1, 1));
        let again = b.resolve("s", "r1", embed).await.expect("resolve").expect("found");
        assert!(Arc::ptr_eq(&got, &again));
        assert_eq!(embeds.load(Ordering::Relaxed), 1);
        // A new version through A: B reads it fresh at once, and resolves
        // it once its recheck interval has passed.
        assert_eq!(a.insert(draft(0.5), vectors(), "m", "r1").await.expect("put").info.version, 2);
        assert_eq!(b.info("s").await.expect("info").expect("found").version, 2);
        let v2 = b.resolve("s", "r1", embed).await.expect("resolve").expect("found");
        assert_eq!((v2.info.version, v2.info.threshold), (2, 0.5));
        // Another embedding revision is built apart.
        let r2 = b.resolve("s", "r2", embed).await.expect("resolve").expect("found");
        assert_eq!(r2.revision, "r2");
        // A delete through B is a 404 on A.
        assert!(b.delete("s").await.expect("delete"));
        assert!(a.info("s").await.expect("info").is_none());
        tokio::time::sleep(RECHECK_AFTER).await;
        assert!(a.resolve("s", "r1", embed).await.expect("resolve").is_none());
        assert!(!a.delete("s").await.expect("delete again"));
        // Made again: the numbering goes on past the delete.
        assert_eq!(a.insert(draft(0.3), vectors(), "m", "r1").await.expect("put").info.version, 4);
        assert_eq!(b.resolve("s", "r1", embed).await.expect("resolve").expect("found").info.version, 4);
    }

    #[tokio::test]
    async fn file_sets_are_imported_once() {
        let (sets, dir) = sqlite_sets().await;
        let files = super::super::FileSets::open(Some(dir.path().join("topics")));
        files.insert(draft(0.3), vectors(), "m", "r1").expect("insert");
        files.insert(draft(0.4), vectors(), "m", "r1").expect("insert");
        let listed = sets.list().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].version, listed[0].threshold), (2, 0.4));
        assert!(dir.path().join("topics/s.json.imported").is_file());
        assert!(!dir.path().join("topics/s.json").exists());
        assert_eq!(sets.insert(draft(0.3), vectors(), "m", "r1").await.expect("put").info.version, 3);
    }
}
