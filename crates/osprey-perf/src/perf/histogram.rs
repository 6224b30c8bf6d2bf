//! Log-linear latency buckets, the one number format every window shares.
//!
//! A duration in nanoseconds maps to a bucket index with a few integer
//! instructions (no floating point, no table), which is what keeps
//! [`crate::Op::record`] cheap. Below 64 ns every nanosecond has its own
//! bucket; above, each power of two is split into 32 equal sub-buckets, so a
//! bucket is at most 1/32 of its lower bound wide and the value reported for
//! it (its midpoint) is within ±1.6 % of any value that landed in it. The
//! buckets run to 2^42 ns (about 73 minutes); longer durations share the last
//! bucket, and the exact maximum is tracked beside the histogram anyway.
//!
//! Histograms come in two shapes: dense atomic arrays in the hot slots
//! (`super::ring`) and sparse sorted `(index, count)` lists once a second has
//! been folded away ([`Sparse`]), so that an op that sees a handful of
//! distinct latencies keeps a handful of numbers per second and minute.

/// Sub-buckets per power of two, as a bit count.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this each have an exact bucket.
const LINEAR: u64 = 2 * SUB;
/// Values at or above `2^TOP_EXP` ns share the last bucket.
const TOP_EXP: u32 = 42;

/// Number of buckets: the linear part plus 32 per power of two from 2^6 to 2^41.
pub(crate) const BUCKETS: usize = (LINEAR + (TOP_EXP - SUB_BITS - 1) as u64 * SUB) as usize;

/// The bucket holding `ns`.
#[inline]
pub(crate) fn index(ns: u64) -> usize {
    if ns < LINEAR {
        return ns as usize;
    }
    let ns = ns.min((1 << TOP_EXP) - 1);
    let exp = 63 - ns.leading_zeros();
    let sub = (ns >> (exp - SUB_BITS)) & (SUB - 1);
    (LINEAR + u64::from(exp - SUB_BITS - 1) * SUB + sub) as usize
}

/// The value reported for bucket `i`, in nanoseconds: the middle of its range.
pub(crate) fn midpoint(i: usize) -> f64 {
    let i = i as u64;
    if i < LINEAR {
        return i as f64;
    }
    let shift = (i - LINEAR) / SUB + 1;
    let sub = (i - LINEAR) % SUB;
    let lower = (SUB + sub) << shift;
    let width = 1u64 << shift;
    lower as f64 + (width - 1) as f64 / 2.0
}

/// The `q`-quantile (0 < q ≤ 1) of a dense histogram holding `total` values,
/// in nanoseconds: the midpoint of the bucket holding the value of rank
/// `ceil(q * total)`. Zero for an empty histogram.
pub(crate) fn quantile(counts: &[u64], total: u64, q: f64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, &n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return midpoint(i);
        }
    }
    midpoint(counts.len().saturating_sub(1))
}

/// A histogram as a sorted list of non-empty buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sparse(Vec<(u16, u32)>);

impl Sparse {
    /// Builds from `(index, count)` pairs given in increasing index order.
    pub(crate) fn from_sorted(pairs: Vec<(u16, u32)>) -> Self {
        debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        Self(pairs)
    }

    /// Sum of all counts.
    pub(crate) fn total(&self) -> u64 {
        self.0.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    /// Adds `other` into `self` (a sorted merge; counts saturate).
    pub(crate) fn merge(&mut self, other: &Sparse) {
        if other.0.is_empty() {
            return;
        }
        if self.0.is_empty() {
            self.0.clone_from(&other.0);
            return;
        }
        let mut merged = Vec::with_capacity(self.0.len() + other.0.len());
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(ia, na)), Some(&&(ib, nb))) => {
                    if ia == ib {
                        merged.push((ia, na.saturating_add(nb)));
                        a.next();
                        b.next();
                    } else if ia < ib {
                        merged.push((ia, na));
                        a.next();
                    } else {
                        merged.push((ib, nb));
                        b.next();
                    }
                }
                (Some(&&x), None) => {
                    merged.push(x);
                    a.next();
                }
                (None, Some(&&x)) => {
                    merged.push(x);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.0 = merged;
    }

    /// Adds the counts into a dense array of [`BUCKETS`] entries.
    pub(crate) fn add_to(&self, dense: &mut [u64]) {
        for &(i, n) in &self.0 {
            dense[usize::from(i)] += u64::from(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_monotonic_and_cover_the_range() {
        assert_eq!(BUCKETS, 64 + 36 * 32);
        let mut last = 0;
        let mut ns = 0u64;
        while ns < 1 << 43 {
            let i = index(ns);
            assert!(i >= last, "index must not decrease at {ns}");
            assert!(i < BUCKETS);
            last = i;
            ns = ns + 1 + ns / 97;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(index(63), 63);
        assert_eq!(index(64), 64);
        assert_eq!(index(127), 95);
        assert_eq!(index(128), 96);
    }

    #[test]
    fn midpoints_are_within_two_percent() {
        for ns in [1u64, 63, 64, 100, 999, 1_000, 12_345, 1_000_000, 987_654_321, 3_600_000_000_000] {
            let mid = midpoint(index(ns));
            let err = (mid - ns as f64).abs() / ns as f64;
            assert!(err <= 1.0 / 64.0 + 1e-9, "{ns} -> {mid} ({err})");
        }
    }

    #[test]
    fn sparse_merge_adds_counts() {
        let mut a = Sparse::from_sorted(vec![(1, 2), (5, 1), (9, 4)]);
        a.merge(&Sparse::from_sorted(vec![(0, 1), (5, 2), (10, 1)]));
        assert_eq!(a, Sparse::from_sorted(vec![(0, 1), (1, 2), (5, 3), (9, 4), (10, 1)]));
        assert_eq!(a.total(), 11);
        let mut dense = vec![0; BUCKETS];
        a.add_to(&mut dense);
        assert_eq!(quantile(&dense, 11, 0.5), midpoint(5));
        assert_eq!(quantile(&dense, 11, 1.0), midpoint(10));
        assert_eq!(quantile(&dense, 0, 0.5), 0.0);
    }
}
