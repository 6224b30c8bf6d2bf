//! A bounded memory of ids already returned, kept in cursors.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// Ids seen lately, newest first, at most `cap` of them; saved as a JSON list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub(crate) struct RecentIds {
    /// Newest first, without repeats.
    order: Vec<String>,
    /// The same ids, for membership tests.
    members: HashSet<String>,
}

impl From<Vec<String>> for RecentIds {
    fn from(ids: Vec<String>) -> Self {
        let mut recent = RecentIds::default();
        recent.remember(ids, usize::MAX);
        recent
    }
}

impl From<RecentIds> for Vec<String> {
    fn from(recent: RecentIds) -> Self {
        recent.order
    }
}

impl RecentIds {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.members.contains(id)
    }

    /// Put `newest_first` in front of what is remembered, dropping repeats and the oldest beyond `cap`.
    pub(crate) fn remember<I>(&mut self, newest_first: I, cap: usize)
    where
        I: IntoIterator<Item = String>,
    {
        let older = std::mem::take(&mut self.order);
        let mut members = HashSet::with_capacity(cap.min(older.len() + 64));
        let mut order = Vec::with_capacity(members.capacity());
        for id in newest_first.into_iter().chain(older) {
            if order.len() == cap {
                break;
            }
            if members.insert(id.clone()) {
                order.push(id);
            }
        }
        self.order = order;
        self.members = members;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_without_repeats() {
        let mut recent = RecentIds::default();
        recent.remember(["c", "b", "a"].map(String::from), 4);
        recent.remember(["e", "d", "c"].map(String::from), 4);
        assert_eq!(recent.order, ["e", "d", "c", "b"]);
        assert!(recent.contains("b"));
        assert!(!recent.contains("a"));
    }

    #[test]
    fn round_trips_as_a_list() {
        let recent: RecentIds = serde_json::from_value(serde_json::json!(["b", "a", "b"])).expect("ids");
        assert!(recent.contains("a") && recent.contains("b"));
        assert_eq!(serde_json::to_value(&recent).expect("json"), serde_json::json!(["b", "a"]));
    }

    /// Membership was a linear scan per id: O(cap²) for a large memory.
    #[test]
    fn remembering_many_ids_is_linear() {
        let ids: Vec<String> = (0..200_000).map(|n| format!("t3_{n}")).collect();
        let mut recent = RecentIds::default();
        recent.remember(ids.iter().cloned(), 150_000);
        recent.remember(ids.iter().rev().take(10).cloned(), 150_000);
        assert_eq!(recent.order.len(), 150_000);
        assert_eq!(recent.order[..2], ["t3_199999", "t3_199998"]);
        assert!(recent.contains("t3_149989") && !recent.contains("t3_149990"));
        assert_eq!(recent.order.iter().collect::<HashSet<_>>().len(), 150_000);
    }
}
