//! Measuring an IVF index against exact search and choosing `nprobe`: recall@k on held-out queries,
//! and the smallest `nprobe` that reaches a target recall.

use std::time::Instant;

use super::index::AnnIndex;
use super::source::{Matrix, VectorSource};
use super::AnnError;
use crate::rng::SplitMix64;
use crate::search::Neighbor;

/// Mean over queries of |approximate top-k ∩ exact top-k| / k (k capped by what exact search found).
pub fn recall_at_k(approximate: &[Vec<Neighbor>], exact: &[Vec<Neighbor>], k: usize) -> f64 {
    if exact.is_empty() {
        return 0.0;
    }
    let total: f64 = approximate
        .iter()
        .zip(exact)
        .map(|(approx, truth)| {
            let truth: Vec<u64> = truth.iter().take(k).map(|n| n.id).collect();
            if truth.is_empty() {
                return 1.0;
            }
            let found = approx
                .iter()
                .take(k)
                .filter(|n| truth.contains(&n.id))
                .count();
            found as f64 / truth.len() as f64
        })
        .sum();
    total / exact.len() as f64
}

/// Queries that are not in the catalog but come from its distribution: a catalog item moved half-way
/// toward another one, normalized (a stand-in for "this item, but changed" queries when no real query
/// vectors are at hand). Reproducible from `seed`.
pub fn held_out_queries(
    source: &dyn VectorSource,
    n: usize,
    seed: u64,
) -> Result<Matrix, AnnError> {
    let (dim, len) = (source.dim(), source.len());
    if len < 2 {
        return Err(AnnError::invalid(
            "catalog size",
            len,
            "held-out queries need at least 2 vectors",
        ));
    }
    let mut rng = SplitMix64::new(seed);
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let a = rng.below(len);
        let b = (a + 1 + rng.below(len - 1)) % len;
        data.extend(
            source
                .row(a)
                .iter()
                .zip(source.row(b))
                .map(|(x, y)| x + 0.5 * y),
        );
    }
    crate::vector::normalize_rows(&mut data, dim).map_err(|(row, problem)| {
        AnnError::NoDirection {
            what: format!("held-out query {row}"),
            problem,
        }
    })?;
    Matrix::new(dim, data)
}

/// One measured setting.
#[derive(Debug, Clone, PartialEq)]
pub struct TunePoint {
    /// Lists probed.
    pub nprobe: usize,
    /// recall@k against exact search.
    pub recall: f64,
    /// Queries per second, all queries in one batch.
    pub qps: f64,
}

/// The outcome of [`tune_nprobe`].
#[derive(Debug, Clone, PartialEq)]
pub struct TuneReport {
    /// Neighbors per query.
    pub k: usize,
    /// The recall asked for.
    pub target: f64,
    /// Queries measured.
    pub queries: usize,
    /// Every setting measured, by increasing `nprobe`.
    pub points: Vec<TunePoint>,
    /// The smallest measured `nprobe` reaching `target`; `None` when even `nprobe = nlist` falls short
    /// (possible only with compressed codes: raise `rerank_factor` or use finer codes).
    pub chosen: Option<usize>,
}

/// Finds the smallest `nprobe` whose recall@k on `queries` reaches `target`: doubling from 1, then
/// bisecting between the last miss and the first hit (recall grows with `nprobe`, since more lists
/// probed means a superset of candidates).
pub fn tune_nprobe(
    index: &AnnIndex,
    source: &dyn VectorSource,
    queries: &[f32],
    k: usize,
    target: f64,
) -> Result<TuneReport, AnnError> {
    if !(0.0..=1.0).contains(&target) {
        return Err(AnnError::invalid(
            "target recall",
            target,
            "must be within [0, 1]",
        ));
    }
    super::index::check_queries(queries, source.dim())?;
    let exact = crate::search::exact_search(queries, source.dim(), &source.blocks(), k, &|_| true);
    let queries_n = exact.len();
    let mut points: Vec<TunePoint> = Vec::new();
    let mut measure = |nprobe: usize| -> Result<f64, AnnError> {
        let start = Instant::now();
        let found = index.search_batch(source, queries, k, Some(nprobe), None)?;
        let seconds = start.elapsed().as_secs_f64().max(1e-9);
        let recall = recall_at_k(&found, &exact, k);
        points.push(TunePoint {
            nprobe,
            recall,
            qps: queries_n as f64 / seconds,
        });
        Ok(recall)
    };

    let nlist = index.nlist();
    let (mut miss, mut hit) = (0usize, None);
    let mut nprobe = 1usize;
    loop {
        if measure(nprobe)? >= target {
            hit = Some(nprobe);
            break;
        }
        miss = nprobe;
        if nprobe == nlist {
            break;
        }
        nprobe = (nprobe * 2).min(nlist);
    }
    if let Some(mut high) = hit {
        while high - miss > 1 {
            let mid = miss + (high - miss) / 2;
            if measure(mid)? >= target {
                high = mid;
            } else {
                miss = mid;
            }
        }
        hit = Some(high);
    }
    points.sort_by_key(|p| p.nprobe);
    Ok(TuneReport {
        k,
        target,
        queries: queries_n,
        points,
        chosen: hit,
    })
}
