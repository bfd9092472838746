//! Hard negatives mined with fiq's own index: each query's nearest gallery items of its category that are
//! not its target.

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
/// Queries are searched in one exact batch per gallery, restricted to that gallery's ids.
pub fn mine_hard_negatives(
    index: &Index,
    queries: &[MiningQuery<'_>],
    galleries: &[IdSet],
    per_query: usize,
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
        // One extra, since the target is usually among the nearest.
        let neighbors = index.exact_neighbors(&flat, per_query + 1, &options)?;
        for (&q, list) in members.iter().zip(neighbors) {
            mined[q] = list
                .into_iter()
                .map(|neighbor| neighbor.id)
                .filter(|&id| id != queries[q].target)
                .take(per_query)
                .collect();
        }
    }
    Ok(mined)
}
