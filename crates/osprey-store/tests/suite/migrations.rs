//! Schema migrations: applied on an empty database, a no-op on a current
//! one, and data survives re-running them.

use crate::common::{record, TestDb};

async fn migrations_apply_once_and_keep_data(db: TestDb) {
    // Open applies everything to the empty database.
    let store = db.open().await;
    let report = store.migrate().await.expect("migrate");
    let versions: Vec<i64> = report.versions.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, vec![1, 2, 3], "{report}");
    assert!(report.newly_applied.is_empty(), "open already applied them: {report}");
    assert!(report.to_string().contains("0002 emotion aggregates (already applied)"), "{report}");

    store.submit(record("m-1", "kept", "across migrations")).await.expect("submit");
    store.flush().await.expect("flush");
    // Again on the same pool, then on a fresh open of the same database.
    assert!(store.migrate().await.expect("again").newly_applied.is_empty());
    store.close().await.expect("close");

    let reopened = db.open().await;
    let again = reopened.migrate().await.expect("migrate after reopen");
    assert_eq!(again.versions, report.versions);
    assert!(again.newly_applied.is_empty());
    let post = reopened.get_post("m-1").await.expect("read").expect("data kept");
    assert_eq!(post.post.body, "across migrations");
    assert_eq!(post.analyses.len(), 1);
    reopened.close().await.expect("close");
}
on_both!(migrations_apply_once_and_keep_data);

/// Schema work and view refreshes are not bound by the per-statement limit
/// meant for requests: with a 1 ms limit, creating the schema (tables,
/// indexes, the materialized view) and refreshing the view still succeed.
async fn schema_work_ignores_the_request_statement_timeout(db: TestDb) {
    let store = db.open_with(|s| s.statement_timeout = std::time::Duration::from_millis(1)).await;
    store.refresh_aggregates().await.expect("refresh under a 1 ms request limit");
    store.close().await.expect("close");
}
on_both!(schema_work_ignores_the_request_statement_timeout);
