//! Single flight: concurrent misses for one key compute once.
//!
//! The first caller to miss becomes the leader and registers a watch channel
//! under the key; later callers subscribe and wait. The leader publishes the
//! value (type-erased, so one map serves every type) and removes the entry.
//! Removal happens *before* publishing, so a caller arriving after the result
//! starts a fresh flight (and finds the value in L1) instead of waiting on a
//! finished one.
//!
//! A leader that fails or is cancelled publishes "no value". Its followers
//! then compute independently rather than electing a new leader in turn:
//! errors are never shared or cached, and a run of failures must not make N
//! waiting callers queue for N sequential attempts.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::Kind;

pub(crate) type Shared = Arc<dyn Any + Send + Sync>;
/// `None` while running; `Some(None)` when the leader produced nothing.
type Outcome = Option<Option<Shared>>;
type Key = (Kind, u128);

#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<Key, Arc<watch::Sender<Outcome>>>>,
}

pub(crate) enum Role<'a> {
    Leader(Leader<'a>),
    Follower(watch::Receiver<Outcome>),
}

impl Flights {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<watch::Sender<Outcome>>>> {
        // Map operations cannot panic midway, so a poisoned map is consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn join(&self, key: Key) -> Role<'_> {
        let mut map = self.lock();
        if let Some(tx) = map.get(&key) {
            return Role::Follower(tx.subscribe());
        }
        let tx = Arc::new(watch::Sender::new(None));
        map.insert(key, Arc::clone(&tx));
        Role::Leader(Leader { flights: self, key, tx, value: None })
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.lock().len()
    }
}

/// Held by the computing caller; publishes on drop, whatever happened.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: Key,
    tx: Arc<watch::Sender<Outcome>>,
    value: Option<Shared>,
}

impl Leader<'_> {
    pub fn finish(mut self, value: Shared) {
        self.value = Some(value);
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        {
            let mut map = self.flights.lock();
            if map.get(&self.key).is_some_and(|tx| Arc::ptr_eq(tx, &self.tx)) {
                map.remove(&self.key);
            }
        }
        self.tx.send_replace(Some(self.value.take()));
    }
}

/// Waits for the leader; `None` if it produced no value.
pub(crate) async fn wait(mut rx: watch::Receiver<Outcome>) -> Option<Shared> {
    match rx.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().flatten(),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_value_and_the_entry_goes() {
        let flights = Flights::default();
        let Role::Leader(leader) = flights.join((Kind::Metadata, 1)) else { panic!("first caller leads") };
        let Role::Follower(rx) = flights.join((Kind::Metadata, 1)) else { panic!("second caller follows") };
        assert!(matches!(flights.join((Kind::Response, 1)), Role::Leader(_)), "kinds are separate flights");
        let waiter = tokio::spawn(wait(rx));
        leader.finish(Arc::new(42u32));
        let got = waiter.await.ok().flatten().and_then(|v| v.downcast::<u32>().ok());
        assert_eq!(got.as_deref(), Some(&42));
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_followers_empty_handed() {
        let flights = Flights::default();
        let leader = flights.join((Kind::Metadata, 1));
        let Role::Follower(rx) = flights.join((Kind::Metadata, 1)) else { panic!("second caller follows") };
        drop(leader);
        assert!(wait(rx).await.is_none());
        assert!(matches!(flights.join((Kind::Metadata, 1)), Role::Leader(_)), "the next caller leads afresh");
    }
}
