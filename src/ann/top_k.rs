//! Keeping the best `k` of a stream of scored ids, with a total, deterministic order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One search result: a row id of the vector source and its inner product with the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The row id in the vector source (dense, `0..len`).
    pub id: u64,
    /// The inner product with the query (cosine similarity for normalized vectors).
    pub score: f32,
}

impl Neighbor {
    /// `Less` when `self` ranks before `other`: higher score first, then lower id, so that ties are
    /// broken the same way by exact and approximate search.
    pub(crate) fn rank_cmp(&self, other: &Neighbor) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// Orders a max-heap so that its top is the worst kept neighbor.
#[derive(Debug, Clone, Copy)]
struct WorstFirst(Neighbor);

impl PartialEq for WorstFirst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for WorstFirst {}
impl PartialOrd for WorstFirst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for WorstFirst {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// The best `k` neighbors seen so far.
#[derive(Debug, Clone)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<WorstFirst>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// The score a new neighbor must beat once `k` are kept.
    #[inline]
    pub(crate) fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0.score)
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, candidate: Neighbor) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(WorstFirst(candidate));
        } else if let Some(worst) = self.heap.peek() {
            if candidate.rank_cmp(&worst.0) == Ordering::Less {
                self.heap.pop();
                self.heap.push(WorstFirst(candidate));
            }
        }
    }

    pub(crate) fn merge(mut self, other: TopK) -> TopK {
        for w in other.heap {
            self.push(w.0);
        }
        self
    }

    /// The kept neighbors, best first.
    pub(crate) fn into_sorted(self) -> Vec<Neighbor> {
        let mut out: Vec<Neighbor> = self.heap.into_iter().map(|w| w.0).collect();
        out.sort_by(Neighbor::rank_cmp);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_k_with_ties_broken_by_lower_id() {
        let mut top = TopK::new(3);
        for (id, score) in [(5, 0.1), (1, 0.9), (7, 0.5), (2, 0.5), (9, 0.95), (3, 0.5)] {
            top.push(Neighbor { id, score });
        }
        let ids: Vec<u64> = top.into_sorted().iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![9, 1, 2]);
    }

    #[test]
    fn merging_equals_pushing_everything_into_one() {
        let all: Vec<Neighbor> = (0..50)
            .map(|i| Neighbor {
                id: i,
                score: ((i * 37) % 11) as f32,
            })
            .collect();
        let mut one = TopK::new(7);
        all.iter().for_each(|n| one.push(*n));
        let (mut a, mut b) = (TopK::new(7), TopK::new(7));
        all[..20].iter().for_each(|n| a.push(*n));
        all[20..].iter().for_each(|n| b.push(*n));
        assert_eq!(a.merge(b).into_sorted(), one.into_sorted());
    }
}
