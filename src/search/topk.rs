//! Keeping the k best (id, score) pairs of a stream.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One result: an internal id and its inner-product score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// Internal id in the index.
    pub id: u64,
    /// Inner product with the query (cosine similarity for normalized vectors).
    pub score: f32,
}

impl Neighbor {
    /// `Less` when `self` ranks before `other`: higher score first, then lower id, so that ties are
    /// broken the same way by exact and approximate search.
    pub fn rank_cmp(&self, other: &Neighbor) -> std::cmp::Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// Orders neighbors worst-first so that a max-heap's top is the one to evict: lower score is worse, and
/// among equal scores the higher id is worse, which makes results deterministic.
#[derive(Debug, Clone, Copy)]
struct Worst(Neighbor);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .score
            .total_cmp(&self.0.score)
            .then(self.0.id.cmp(&other.0.id))
    }
}

/// The best `k` neighbors seen so far.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    /// An empty selection of at most `k`.
    pub fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// The score a candidate must beat to enter (−∞ until `k` are held).
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0.score)
        }
    }

    /// Offers a candidate.
    #[inline]
    pub fn push(&mut self, id: u64, score: f32) {
        if self.k == 0 {
            return;
        }
        let candidate = Worst(Neighbor { id, score });
        if self.heap.len() < self.k {
            self.heap.push(candidate);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if candidate < *worst {
                *worst = candidate;
            }
        }
    }

    /// Adds every neighbor of `other`.
    pub fn merge(&mut self, other: TopK) {
        for w in other.heap {
            self.push(w.0.id, w.0.score);
        }
    }

    /// The neighbors, best first.
    pub fn into_sorted(self) -> Vec<Neighbor> {
        let mut v: Vec<Worst> = self.heap.into_vec();
        v.sort();
        v.into_iter().map(|w| w.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_k_with_ties_broken_by_id() {
        let mut top = TopK::new(3);
        for (id, score) in [(5, 0.1), (1, 0.9), (2, 0.5), (3, 0.5), (4, 0.7), (0, 0.5)] {
            top.push(id, score);
        }
        let got: Vec<(u64, f32)> = top
            .into_sorted()
            .into_iter()
            .map(|n| (n.id, n.score))
            .collect();
        assert_eq!(got, vec![(1, 0.9), (4, 0.7), (0, 0.5)]);
    }

    #[test]
    fn zero_k_keeps_nothing() {
        let mut top = TopK::new(0);
        top.push(1, 1.0);
        assert!(top.into_sorted().is_empty());
    }
}
