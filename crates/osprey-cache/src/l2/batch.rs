//! Coalescing concurrent single-key reads into MGETs.
//!
//! Under load, many requests look up different keys at once. Sent one GET
//! each, the per-command cost (a channel hop and a write in the client, a read
//! and a reply on the server) dominates and caps throughput at a fraction of
//! what Redis can serve. Here look-ups go through a queue to one task that
//! keeps up to [`MAX_IN_FLIGHT`] commands outstanding and sends whatever has
//! queued meanwhile as one MGET (at most [`MAX_BATCH`] keys). An idle cache
//! adds no delay: a lone look-up is sent at once, as a plain GET; batches only
//! form while earlier commands are still in flight.

use std::sync::{Arc, Weak};

use redis::{ErrorKind, RedisError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{Failure, Op, L2};

/// Commands outstanding at once; more look-ups wait and join the next batch.
pub(super) const MAX_IN_FLIGHT: usize = 8;
/// Keys per MGET.
pub(super) const MAX_BATCH: usize = 128;
/// Look-ups that may wait in the queue; past this a look-up is a miss.
pub(super) const QUEUE: usize = 16 * 1024;

/// One queued look-up: the Redis key and where to send its bytes.
pub(super) struct Lookup {
    pub key: String,
    pub reply: oneshot::Sender<Result<Option<Vec<u8>>, Failure>>,
}

/// The batching loop; ends when the L2 client (the queue's sender) is dropped.
pub(super) async fn run(l2: Weak<L2>, mut queue: mpsc::Receiver<Lookup>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Take a slot before draining the queue, so that while every slot is
        // busy, look-ups accumulate into the next batch.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let Some(l2) = l2.upgrade() else { return };
        let lookups = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        tokio::spawn(async move {
            l2.send_batch(lookups).await;
            drop(slot);
        });
    }
}

impl L2 {
    async fn send_batch(&self, mut lookups: Vec<Lookup>) {
        // Callers that gave up (deadline passed, request cancelled) need nothing.
        lookups.retain(|l| !l.reply.is_closed());
        let timeout = self.settings.command_timeout;
        let result = match lookups.as_slice() {
            [] => return,
            [one] => {
                let mut cmd = redis::cmd("GET");
                cmd.arg(&one.key);
                self.call::<Option<Vec<u8>>>(Op::Get, timeout, &cmd).await.map(|v| vec![v])
            }
            many => {
                let mut cmd = redis::cmd("MGET");
                for l in many {
                    cmd.arg(&l.key);
                }
                self.call::<Vec<Option<Vec<u8>>>>(Op::Mget, timeout, &cmd).await
            }
        };
        match result {
            Ok(values) if values.len() == lookups.len() => {
                for (lookup, value) in lookups.into_iter().zip(values) {
                    let _ = lookup.reply.send(Ok(value));
                }
            }
            Ok(_) => {
                let failure = Failure::Redis(length_mismatch());
                for lookup in lookups {
                    let _ = lookup.reply.send(Err(failure.clone()));
                }
            }
            Err(failure) => {
                for lookup in lookups {
                    let _ = lookup.reply.send(Err(failure.clone()));
                }
            }
        }
    }
}

/// MGET answered with a different number of values than keys it was given.
pub(super) fn length_mismatch() -> RedisError {
    RedisError::from((ErrorKind::UnexpectedReturnType, "MGET answered with the wrong number of values"))
}
