//! Hard negatives mined with fiq's own index: each query's nearest gallery items of its category that are
//! not its target, optionally only those scoring clearly below the target (positive-aware mining), and
//! optionally drawn at random from a deeper pool of them (ANCE's sampling).

use serde::{Deserialize, Serialize};

use crate::index::{IdSet, Index, SearchOptions};
use crate::rng::SplitMix64;

/// Where a training run's mined negatives come from; one policy for the Combiner and the encoders.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mining {
    /// Negatives mined per query and added to its softmax; 0 turns mining off.
    #[serde(rename = "mined_negatives")]
    pub negatives: usize,
    /// Mining is refreshed every this many epochs, with the model of that moment.
    #[serde(rename = "mine_every")]
    pub every: usize,
    /// Positive-aware mining: only items scoring below this fraction of the target's score are mined
    /// (NV-Retriever's 0.95 by default); `None` mines the nearest items whatever their score, which
    /// lost to unmined training on the hard synthetic level where positive-aware mining won.
    #[serde(rename = "mine_below_target", default)]
    pub below_target: Option<f32>,
    /// Draw the `negatives` uniformly from this many nearest eligible items, a fresh draw at every
    /// mining (ANCE samples from the top 200): fewer of the few near-duplicates of the target that a
    /// partial caption cannot tell apart, and more different negatives over a run. `0` (or anything not
    /// above `negatives`) takes the nearest.
    #[serde(rename = "mine_pool", default)]
    pub pool: usize,
}

impl Default for Mining {
    fn default() -> Self {
        Mining {
            negatives: 0,
            every: 2,
            below_target: Some(0.95),
            pool: 0,
        }
    }
}

impl Mining {
    /// Whether an epoch (0-based) mines: on the schedule, or when nothing is mined yet.
    pub(super) fn due(&self, epoch: usize, have_mined: bool) -> bool {
        self.negatives > 0 && (epoch.is_multiple_of(self.every) || !have_mined)
    }

    /// Rejects a schedule of 0 and a ratio that is not a positive number.
    pub(super) fn check(&self) -> Result<(), super::TrainError> {
        let invalid = |name: &'static str, value: String| {
            Err(super::TrainError::InvalidOption { name, value })
        };
        if self.every == 0 {
            return invalid("mine every", "0".into());
        }
        if let Some(ratio) = self.below_target {
            if !(ratio > 0.0 && ratio.is_finite()) {
                return invalid("mine below target", ratio.to_string());
            }
        }
        Ok(())
    }

    /// The seed of the draw from the pool at the mining of `epoch` (0-based) in a run seeded `run_seed`:
    /// a fresh draw at every mining, the same one when a resumed run mines that epoch again.
    pub(super) fn draw_seed(run_seed: u64, epoch: usize) -> u64 {
        const MINING_STREAM: u64 = 0x6d69_6e65; // "mine": apart from the run's other streams
        SplitMix64::stream(run_seed ^ MINING_STREAM, epoch as u64).next_u64()
    }

    /// How many eligible items each query needs: the pool, or the negatives themselves.
    fn wanted(&self) -> usize {
        self.pool.max(self.negatives)
    }
}

/// One query to mine for.
#[derive(Debug, Clone)]
pub struct MiningQuery<'a> {
    /// The fused query vector.
    pub query: &'a [f32],
    /// The id of its target, never returned.
    pub target: u64,
    /// Which gallery (index into the `galleries` argument) it searches.
    pub gallery: usize,
}

/// For each query, up to `mining.negatives` ids of its gallery near it, never its target: the nearest,
/// best first, or (with a `pool`) a uniform draw from the `pool` nearest, in rank order, seeded by
/// `draw_seed` and the query's position so that the draw is the same on every machine.
///
/// With `below_target = Some(r)`, an item is a negative only if its score is below `r` times the
/// target's (NV-Retriever's positive-aware mining, "TopK-PercPos"): where captions name only some of
/// the changes, as FashionIQ's do, the items nearest the query are often as good an answer as the target,
/// and pushing them away teaches the wrong thing. While a model still ranks a target low, the eligible
/// items start far down the list (the semi-hard negatives just below the target), so a query short of
/// negatives is searched again, deeper, until it has them or its gallery runs out.
///
/// Queries are searched in one exact batch per gallery, restricted to that gallery's ids.
pub fn mine_hard_negatives(
    index: &Index,
    queries: &[MiningQuery<'_>],
    galleries: &[IdSet],
    mining: &Mining,
    draw_seed: u64,
) -> crate::Result<Vec<Vec<u64>>> {
    let mut mined = vec![Vec::new(); queries.len()];
    if mining.negatives == 0 {
        return Ok(mined);
    }
    let wanted = mining.wanted();
    // Each query's score ceiling, once, however many times a deeper search asks for it.
    let ceilings: Vec<f32> = queries
        .iter()
        .map(|query| match mining.below_target {
            Some(ratio) => Ok(ratio * target_score(index, query)?),
            None => Ok(f32::INFINITY),
        })
        .collect::<crate::Result<_>>()?;
    for (gallery_index, gallery) in galleries.iter().enumerate() {
        let options = SearchOptions::default().filtered(gallery);
        // One more than wanted, since the target is usually among the nearest. Positive-aware, the
        // items above the ceiling are dropped, and while the model still ranks a query's target low
        // that is most of its nearest: the queries left short search again, four times deeper, until
        // they have enough or their gallery is exhausted.
        let mut depth = wanted + 1;
        let mut pending: Vec<usize> = (0..queries.len())
            .filter(|&q| queries[q].gallery == gallery_index)
            .collect();
        while !pending.is_empty() {
            let flat: Vec<f32> = pending
                .iter()
                .flat_map(|&q| queries[q].query.iter().copied())
                .collect();
            let neighbors = index.exact_neighbors(&flat, depth, &options)?;
            let mut short = Vec::new();
            for (&q, list) in pending.iter().zip(neighbors) {
                let (target, ceiling) = (queries[q].target, ceilings[q]);
                let exhausted = list.len() < depth;
                let eligible: Vec<u64> = list
                    .into_iter()
                    .filter(|neighbor| neighbor.id != target && neighbor.score < ceiling)
                    .map(|neighbor| neighbor.id)
                    .take(wanted)
                    .collect();
                if eligible.len() < wanted && !exhausted {
                    short.push(q);
                    continue;
                }
                mined[q] = if eligible.len() > mining.negatives {
                    let mut rng = SplitMix64::stream(draw_seed, q as u64);
                    sample_in_order(&eligible, mining.negatives, &mut rng)
                } else {
                    eligible
                };
            }
            pending = short;
            depth = depth.saturating_mul(4);
        }
    }
    Ok(mined)
}

/// `count` of `items` drawn uniformly without replacement, kept in their original order (selection
/// sampling, Knuth's Algorithm S).
fn sample_in_order(items: &[u64], count: usize, rng: &mut SplitMix64) -> Vec<u64> {
    let mut chosen = Vec::with_capacity(count);
    for (seen, &item) in items.iter().enumerate() {
        let needed = count - chosen.len();
        if needed == 0 {
            break;
        }
        if rng.below(items.len() - seen) < needed {
            chosen.push(item);
        }
    }
    chosen
}

/// The query's score for its own target (inner product with the target's stored vector).
fn target_score(index: &Index, query: &MiningQuery<'_>) -> crate::Result<f32> {
    let target = index
        .vector(query.target)
        .ok_or(super::TrainError::MissingRow { id: query.target })?;
    Ok(crate::vector::dot(&target, query.query))
}
