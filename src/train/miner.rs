//! Hard negatives mined with fiq's own index: each query's nearest gallery items of its category that are
//! not its target, optionally only those scoring clearly below the target (positive-aware mining).

use crate::index::{IdSet, Index, SearchOptions};

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

/// For each query, up to `per_query` ids of its gallery nearest to it, best first, never its target.
///
/// With `below_target = Some(r)`, an item is a negative only if its score is below `r` times the
/// target's (NV-Retriever's positive-aware mining, "TopK-PercPos"): where captions name only some of
/// the changes, as FashionIQ's do, the items nearest the query are often as good an answer as the target,
/// and pushing them away teaches the wrong thing.
///
/// Queries are searched in one exact batch per gallery, restricted to that gallery's ids.
pub fn mine_hard_negatives(
    index: &Index,
    queries: &[MiningQuery<'_>],
    galleries: &[IdSet],
    per_query: usize,
    below_target: Option<f32>,
) -> crate::Result<Vec<Vec<u64>>> {
    let mut mined = vec![Vec::new(); queries.len()];
    if per_query == 0 {
        return Ok(mined);
    }
    for (gallery_index, gallery) in galleries.iter().enumerate() {
        let members: Vec<usize> = (0..queries.len())
            .filter(|&q| queries[q].gallery == gallery_index)
            .collect();
        if members.is_empty() {
            continue;
        }
        let flat: Vec<f32> = members
            .iter()
            .flat_map(|&q| queries[q].query.iter().copied())
            .collect();
        let options = SearchOptions::default().filtered(gallery);
        // One extra, since the target is usually among the nearest; more when the nearest are dropped.
        let depth = match below_target {
            Some(_) => 4 * per_query + 1,
            None => per_query + 1,
        };
        let neighbors = index.exact_neighbors(&flat, depth, &options)?;
        for (&q, list) in members.iter().zip(neighbors) {
            let query = &queries[q];
            let ceiling = match below_target {
                Some(ratio) => ratio * target_score(index, query)?,
                None => f32::INFINITY,
            };
            mined[q] = list
                .into_iter()
                .filter(|neighbor| neighbor.id != query.target && neighbor.score < ceiling)
                .map(|neighbor| neighbor.id)
                .take(per_query)
                .collect();
        }
    }
    Ok(mined)
}

/// The query's score for its own target (inner product with the target's stored vector).
fn target_score(index: &Index, query: &MiningQuery<'_>) -> crate::Result<f32> {
    let target = index
        .vector(query.target)
        .ok_or(super::TrainError::MissingRow { id: query.target })?;
    Ok(crate::vector::dot(&target, query.query))
}
