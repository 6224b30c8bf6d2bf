//! The first connection to Redis, made in the background.
//!
//! Start-up must not wait on Redis, nor fail without it: [`connect`] retries
//! with exponential backoff (capped at the breaker cooldown) until it has a
//! [`ConnectionManager`] or the cache is dropped. From then on the manager
//! reconnects by itself after a dropped connection, and the breaker shields
//! requests meanwhile.

use std::sync::Weak;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{ADMIN_TIMEOUT, L2};

/// Connects, retrying until it succeeds or the cache is dropped.
pub(super) async fn connect(l2: Weak<L2>, client: redis::Client) {
    let Some(settings) = l2.upgrade().map(|l| l.settings.clone()) else { return };
    let max_backoff = settings.breaker_cooldown.clamp(Duration::from_millis(100), Duration::from_secs(30));
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.command_timeout.max(ADMIN_TIMEOUT)))
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(max_backoff)
        .set_number_of_retries(6);
    let url = settings.redacted_url().unwrap_or_default();
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let attempt = tokio::time::timeout(
            settings.connect_timeout,
            ConnectionManager::new_with_config(client.clone(), config.clone()),
        )
        .await;
        let Some(this) = l2.upgrade() else { return };
        let error = match attempt {
            Ok(Ok(manager)) => {
                let _ = this.conn.set(manager);
                tracing::info!(url, attempts, "L2 (Redis) connected");
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("connection timed out after {:?}", settings.connect_timeout),
        };
        if attempts == 1 || attempts.is_power_of_two() {
            tracing::warn!(url, attempts, error, "L2 (Redis) unreachable; serving from L1 until it connects");
        }
        *this.last_connect_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        drop(this);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
    }
}
