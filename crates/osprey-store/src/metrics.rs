//! Prometheus metric names the store records through the `metrics` facade.
//! The binary installs the recorder; without one these are no-ops.

/// Histogram, seconds, label `statement`: execution time of each statement
/// once it has a connection.
pub const DB_QUERY_DURATION_SECONDS: &str = "osprey_db_query_duration_seconds";
/// Histogram, seconds, label `statement`: time spent waiting for a pooled
/// connection (includes the pre-ping), kept apart from execution so a
/// starved pool is not mistaken for slow SQL.
pub const DB_POOL_WAIT_SECONDS: &str = "osprey_db_pool_wait_seconds";
/// Counter, labels `statement` and `outcome` (`ok`, `error`, `timeout`).
pub const DB_QUERIES_TOTAL: &str = "osprey_db_queries_total";
/// Counter, label `statement`: statements over `slow_query_threshold`.
pub const DB_SLOW_QUERIES_TOTAL: &str = "osprey_db_slow_queries_total";
/// Gauge: records accepted and not yet committed (or given up on).
pub const STORE_QUEUE_DEPTH: &str = "osprey_store_queue_depth";
/// Counter, label `table`: rows inserted or updated by the writer.
pub const STORE_ROWS_WRITTEN_TOTAL: &str = "osprey_store_rows_written_total";
/// Counter, label `outcome` (`ok`, `retried`, `split`): batch attempts.
pub const STORE_BATCHES_TOTAL: &str = "osprey_store_batches_total";
/// Histogram, seconds: one committed batch, from first statement to commit.
pub const STORE_WRITE_BATCH_SECONDS: &str = "osprey_store_write_batch_seconds";
/// Counter, label `outcome` (`written`, `duplicate`, `rejected`, `lost`):
/// what became of each accepted record.
pub const STORE_RECORDS_TOTAL: &str = "osprey_store_records_total";

/// Registers help texts and units with the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(DB_QUERY_DURATION_SECONDS, Unit::Seconds, "Database statement execution time");
    describe_histogram!(DB_POOL_WAIT_SECONDS, Unit::Seconds, "Wait for a pooled database connection");
    describe_counter!(DB_QUERIES_TOTAL, "Database statements by outcome");
    describe_counter!(DB_SLOW_QUERIES_TOTAL, "Database statements slower than the slow-query threshold");
    describe_gauge!(STORE_QUEUE_DEPTH, "Records accepted by the store writer and not yet committed");
    describe_counter!(STORE_ROWS_WRITTEN_TOTAL, "Rows written by the store writer, per table");
    describe_counter!(STORE_BATCHES_TOTAL, "Store writer batch attempts by outcome");
    describe_histogram!(STORE_WRITE_BATCH_SECONDS, Unit::Seconds, "Store writer batch transaction time");
    describe_counter!(STORE_RECORDS_TOTAL, "Records accepted by the store writer, by fate");
}
