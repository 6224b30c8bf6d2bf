//! A bounded memory of ids already returned, kept in cursors.

use serde::{Deserialize, Serialize};

/// Ids seen lately, newest first, at most `cap` of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct RecentIds(Vec<String>);

impl RecentIds {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|seen| seen == id)
    }

    /// Put `newest_first` in front of what is remembered, dropping repeats and the oldest beyond `cap`.
    pub(crate) fn remember<I>(&mut self, newest_first: I, cap: usize)
    where
        I: IntoIterator<Item = String>,
    {
        let mut merged: Vec<String> = Vec::with_capacity(cap.min(self.0.len() + 64));
        for id in newest_first.into_iter().chain(self.0.drain(..)) {
            if merged.len() == cap {
                break;
            }
            if !merged.contains(&id) {
                merged.push(id);
            }
        }
        self.0 = merged;
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
        assert_eq!(recent.0, ["e", "d", "c", "b"]);
        assert!(recent.contains("b"));
        assert!(!recent.contains("a"));
    }
}
