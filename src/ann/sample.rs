//! The seeded k-means training sample: which rows of the store FAISS trains on.

use crate::rng::SplitMix64;

/// `m` distinct ids from `0..n` (all of them when `m >= n`), sorted so that gathering them reads the store
/// front to back. Floyd's algorithm: O(m) draws whatever `n` is.
pub(crate) fn sample_ids(n: usize, m: usize, seed: u64) -> Vec<usize> {
    if m >= n {
        return (0..n).collect();
    }
    let mut rng = SplitMix64::new(seed);
    let mut chosen = std::collections::HashSet::with_capacity(m);
    for j in n - m..n {
        let t = rng.below(j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut ids: Vec<usize> = chosen.into_iter().collect();
    ids.sort_unstable();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_distinct_sorted_in_range_and_reproducible() {
        let a = sample_ids(10_000, 300, 42);
        assert_eq!(a.len(), 300);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|&i| i < 10_000));
        assert_eq!(a, sample_ids(10_000, 300, 42));
        assert_ne!(a, sample_ids(10_000, 300, 43));
    }

    #[test]
    fn asking_for_more_than_there_is_gives_everything() {
        assert_eq!(sample_ids(5, 9, 1), vec![0, 1, 2, 3, 4]);
    }
}
