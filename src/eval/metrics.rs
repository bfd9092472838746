//! Recall@K and Precision@K for FashionIQ, where each query has exactly one relevant image (its target).
//!
//! - **Recall@K**: the fraction of queries whose target is among the first K results.
//! - **Precision@K**: hits in the first K results divided by K, averaged over queries. With one relevant
//!   image per query a query scores 1/K or 0, so P@K = R@K / K (see [`PRECISION_DEFINITION`]).
//!
//! Values are fractions in `[0, 1]`; reports print them in percent, as the papers do.
//!
//! ```
//! use fiq::eval::{precision_at_k, recall_at_k};
//! let ranked = [vec!["a", "b", "c"], vec!["d", "e", "f"]];
//! let targets = ["b", "z"];
//! assert_eq!(recall_at_k(&ranked, &targets, 2)?, 0.5);
//! assert_eq!(precision_at_k(&ranked, &targets, 2)?, 0.25);
//! # Ok::<(), fiq::eval::EvalError>(())
//! ```

use super::error::EvalError;

/// The definition of Precision@K used everywhere in fiq, printed with every report.
pub const PRECISION_DEFINITION: &str =
    "P@K = (relevant images in the top K) / K per query, averaged over queries; \
FashionIQ has one relevant target per query, so P@K = R@K / K";

/// Where each query's target sits in its ranked results: `Some(0)` is first, `None` not returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRanks {
    ranks: Vec<Option<usize>>,
}

impl TargetRanks {
    /// Finds each target in its ranked list (its first occurrence). `ranked[i]` answers the query whose
    /// target is `targets[i]`.
    pub fn new<R, S, T>(ranked: &[R], targets: &[T]) -> Result<TargetRanks, EvalError>
    where
        R: AsRef<[S]>,
        S: AsRef<str>,
        T: AsRef<str>,
    {
        if ranked.len() != targets.len() {
            return Err(EvalError::LengthMismatch {
                ranked: ranked.len(),
                targets: targets.len(),
            });
        }
        let ranks = ranked
            .iter()
            .zip(targets)
            .map(|(results, target)| {
                results
                    .as_ref()
                    .iter()
                    .position(|key| key.as_ref() == target.as_ref())
            })
            .collect();
        Ok(TargetRanks { ranks })
    }

    /// Ranks already found (0-based; `None` for a target not returned).
    pub fn from_ranks(ranks: Vec<Option<usize>>) -> TargetRanks {
        TargetRanks { ranks }
    }

    /// The number of queries.
    pub fn len(&self) -> usize {
        self.ranks.len()
    }

    /// Whether there are no queries.
    pub fn is_empty(&self) -> bool {
        self.ranks.is_empty()
    }

    /// Queries whose target is in the first `k` results.
    pub fn hits_at(&self, k: usize) -> usize {
        self.ranks
            .iter()
            .filter(|rank| rank.is_some_and(|rank| rank < k))
            .count()
    }

    /// Recall@K as a fraction.
    pub fn recall_at(&self, k: usize) -> Result<f64, EvalError> {
        if k == 0 {
            return Err(EvalError::ZeroK);
        }
        if self.ranks.is_empty() {
            return Err(EvalError::NoQueries { category: None });
        }
        Ok(self.hits_at(k) as f64 / self.ranks.len() as f64)
    }

    /// Precision@K as a fraction: hits / K per query, averaged (a list shorter than K still divides by K).
    pub fn precision_at(&self, k: usize) -> Result<f64, EvalError> {
        Ok(self.recall_at(k)? / k as f64)
    }
}

/// Recall@K of ranked result keys against one target key per query. See the [module docs](self).
pub fn recall_at_k<R, S, T>(ranked: &[R], targets: &[T], k: usize) -> Result<f64, EvalError>
where
    R: AsRef<[S]>,
    S: AsRef<str>,
    T: AsRef<str>,
{
    TargetRanks::new(ranked, targets)?.recall_at(k)
}

/// Precision@K of ranked result keys against one target key per query. See [`PRECISION_DEFINITION`].
pub fn precision_at_k<R, S, T>(ranked: &[R], targets: &[T], k: usize) -> Result<f64, EvalError>
where
    R: AsRef<[S]>,
    S: AsRef<str>,
    T: AsRef<str>,
{
    TargetRanks::new(ranked, targets)?.precision_at(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five queries over a gallery of letters; targets at ranks 0, 2, 4, absent, 1.
    fn five_queries() -> (Vec<Vec<&'static str>>, Vec<&'static str>) {
        let ranked = vec![
            vec!["t", "a", "b", "c", "d"],
            vec!["a", "b", "t", "c", "d"],
            vec!["a", "b", "c", "d", "t"],
            vec!["a", "b", "c", "d", "e"],
            vec!["a", "t", "t", "c", "d"],
        ];
        (ranked, vec!["t"; 5])
    }

    #[test]
    fn recall_counts_targets_within_k() {
        let (ranked, targets) = five_queries();
        // k: hits -> recall
        let table = [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (50, 4)];
        for (k, hits) in table {
            let expected = hits as f64 / 5.0;
            assert_eq!(
                recall_at_k(&ranked, &targets, k).unwrap(),
                expected,
                "R@{k}"
            );
        }
    }

    #[test]
    fn precision_is_hits_over_k_averaged() {
        let (ranked, targets) = five_queries();
        // P@2: queries score 1/2, 0, 0, 0, 1/2 -> mean 0.2; P@5: four hits of 1/5 -> 0.16.
        assert!((precision_at_k(&ranked, &targets, 2).unwrap() - 0.2).abs() < 1e-12);
        assert!((precision_at_k(&ranked, &targets, 5).unwrap() - 0.16).abs() < 1e-12);
        // Lists shorter than K still divide by K.
        assert!((precision_at_k(&ranked, &targets, 10).unwrap() - 0.08).abs() < 1e-12);
    }

    #[test]
    fn ranks_take_the_first_occurrence() {
        let (ranked, targets) = five_queries();
        let ranks = TargetRanks::new(&ranked, &targets).unwrap();
        assert_eq!(
            ranks,
            TargetRanks::from_ranks(vec![Some(0), Some(2), Some(4), None, Some(1)])
        );
        assert_eq!(ranks.hits_at(3), 3);
    }

    #[test]
    fn undefined_inputs_are_errors() {
        let (ranked, targets) = five_queries();
        assert!(matches!(
            recall_at_k(&ranked, &targets, 0),
            Err(EvalError::ZeroK)
        ));
        assert!(matches!(
            recall_at_k(&ranked, &targets[..2], 1),
            Err(EvalError::LengthMismatch {
                ranked: 5,
                targets: 2
            })
        ));
        let none: [Vec<&str>; 0] = [];
        let no_targets: [&str; 0] = [];
        assert!(matches!(
            precision_at_k(&none, &no_targets, 10),
            Err(EvalError::NoQueries { .. })
        ));
    }
}
