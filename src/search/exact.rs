//! Exact (brute-force) top-k by inner product.
//!
//! Scores are computed a block of rows at a time as one matrix product, queries × block-of-rowsᵀ, with
//! BLAS `sgemm` (which spreads the product over its own threads), and each block's scores are reduced
//! into the per-query top-k in parallel over queries (rayon), so the score matrix never exceeds 16 MiB.
//! This is how FAISS's flat search is organized too. The first version instead ran blocks as rayon tasks
//! with a single-threaded `sgemm` each: as fast only with `OPENBLAS_NUM_THREADS=1` (threaded BLAS inside
//! rayon tasks oversubscribed the cores, 20% slower), a setting that would also have made the encoder's
//! BLAS single-threaded (BENCHMARKS.md). The result does not depend on the thread count.

use half::f16;
use rayon::prelude::*;

use super::topk::{Neighbor, TopK};

/// Rows scored per matrix product: large enough that the product runs near peak.
const BLOCK_ROWS: usize = 4096;
/// Queries scored together against a block: each block of rows is read once per chunk, so a chunk as
/// large as a typical batch reads the catalog once.
const QUERY_CHUNK: usize = 1024;

/// Batches this small skip BLAS: a one-row `sgemm` wakes BLAS's threads for a few microseconds of work
/// each (6,000 single queries over 15,000 x 128 took 23.8 s on the loaded benchmark machine), so rows
/// are scored by plain dot products instead, blocks spread over rayon.
const FEW_QUERIES: usize = 4;

/// A run of consecutive rows stored contiguously (one segment of an index).
#[derive(Debug, Clone, Copy)]
pub enum VectorBlock<'a> {
    /// Rows as f32, row-major.
    F32 {
        /// The id of the block's first row.
        base_id: u64,
        /// The rows, row-major.
        rows: &'a [f32],
    },
    /// Rows as f16, row-major (converted a block at a time).
    F16 {
        /// The id of the block's first row.
        base_id: u64,
        /// The rows, row-major.
        rows: &'a [f16],
    },
}

impl VectorBlock<'_> {
    /// Rows in the block.
    pub fn len(&self, dim: usize) -> usize {
        match self {
            VectorBlock::F32 { rows, .. } => rows.len() / dim,
            VectorBlock::F16 { rows, .. } => rows.len() / dim,
        }
    }

    /// Rows `start..end` of the block as f32: in place, or converted into `scratch` for f16.
    fn rows_f32<'s>(
        &'s self,
        start: usize,
        end: usize,
        dim: usize,
        scratch: &'s mut Vec<f32>,
    ) -> &'s [f32] {
        match self {
            VectorBlock::F32 { rows, .. } => &rows[start * dim..end * dim],
            VectorBlock::F16 { rows, .. } => {
                scratch.clear();
                scratch.extend(rows[start * dim..end * dim].iter().map(|x| x.to_f32()));
                scratch
            }
        }
    }

    /// The id of the block's first row.
    pub fn base_id(&self) -> u64 {
        match self {
            VectorBlock::F32 { base_id, .. } | VectorBlock::F16 { base_id, .. } => *base_id,
        }
    }
}

/// The `k` rows with the largest inner product with each query, best first.
///
/// `queries` is row-major `nq × dim`. `keep(id)` says whether a row may be returned (deleted rows and rows
/// outside a filter may not). Ties are broken by the smaller id.
///
/// ```
/// use fiq::search::{exact_search, VectorBlock};
/// let rows = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
/// let hits = exact_search(&[0.0, 1.0], 2, &[VectorBlock::F32 { base_id: 0, rows: &rows }], 2, &|_| true);
/// assert_eq!(hits[0].iter().map(|n| n.id).collect::<Vec<_>>(), vec![1, 2]);
/// ```
pub fn exact_search(
    queries: &[f32],
    dim: usize,
    blocks: &[VectorBlock<'_>],
    k: usize,
    keep: &(dyn Fn(u64) -> bool + Sync),
) -> Vec<Vec<Neighbor>> {
    assert!(
        dim > 0 && queries.len() % dim == 0,
        "queries must be nq × dim"
    );
    let nq = queries.len() / dim;
    if nq == 0 {
        return Vec::new();
    }
    if nq <= FEW_QUERIES {
        return few_queries(queries, dim, blocks, k, keep);
    }
    let mut tops = vec![TopK::new(k); nq];
    let mut scores = vec![0f32; QUERY_CHUNK.min(nq) * BLOCK_ROWS];
    let mut converted = Vec::new();
    for block in blocks {
        let rows_in_block = block.len(dim);
        for start in (0..rows_in_block).step_by(BLOCK_ROWS) {
            let end = (start + BLOCK_ROWS).min(rows_in_block);
            let n = end - start;
            let rows = block.rows_f32(start, end, dim, &mut converted);
            let base = block.base_id() + start as u64;
            for (chunk_index, chunk) in queries.chunks(QUERY_CHUNK * dim).enumerate() {
                let m = chunk.len() / dim;
                let scores = &mut scores[..m * n];
                inner_products(chunk, rows, dim, scores);
                let first = chunk_index * QUERY_CHUNK;
                tops[first..first + m]
                    .par_iter_mut()
                    .zip(scores.par_chunks_exact(n))
                    .for_each(|(top, row_scores)| keep_best(top, row_scores, base, keep));
            }
        }
    }
    tops.into_iter().map(TopK::into_sorted).collect()
}

fn few_queries(
    queries: &[f32],
    dim: usize,
    blocks: &[VectorBlock<'_>],
    k: usize,
    keep: &(dyn Fn(u64) -> bool + Sync),
) -> Vec<Vec<Neighbor>> {
    let nq = queries.len() / dim;
    let tasks: Vec<(VectorBlock<'_>, usize, usize)> = blocks
        .iter()
        .flat_map(|block| {
            let n = block.len(dim);
            (0..n)
                .step_by(BLOCK_ROWS)
                .map(move |start| (*block, start, (start + BLOCK_ROWS).min(n)))
        })
        .collect();
    let empty = || vec![TopK::new(k); nq];
    let tops = tasks
        .into_par_iter()
        .fold(empty, |mut tops, (block, start, end)| {
            let mut converted = Vec::new();
            let rows = block.rows_f32(start, end, dim, &mut converted);
            let base = block.base_id() + start as u64;
            let mut scores = vec![0f32; end - start];
            for (top, query) in tops.iter_mut().zip(queries.chunks_exact(dim)) {
                for (score, row) in scores.iter_mut().zip(rows.chunks_exact(dim)) {
                    *score = crate::vector::dot(query, row);
                }
                keep_best(top, &scores, base, keep);
            }
            tops
        })
        .reduce(empty, |mut a, b| {
            a.iter_mut().zip(b).for_each(|(x, y)| x.merge(y));
            a
        });
    tops.into_iter().map(TopK::into_sorted).collect()
}

/// Offers the scores of rows `base..` to one query's top-k.
fn keep_best(top: &mut TopK, scores: &[f32], base: u64, keep: &(dyn Fn(u64) -> bool + Sync)) {
    let mut threshold = top.threshold();
    for (j, &score) in scores.iter().enumerate() {
        // NaN never passes, so a NaN score (from a NaN query) cannot enter the results.
        if score > threshold && keep(base + j as u64) {
            top.push(base + j as u64, score);
            threshold = top.threshold();
        }
    }
}

/// `out[i * n + j] = <queries[i], rows[j]>` for `m` queries and `n` rows, by BLAS `sgemm`
/// ([`crate::blas`]): on 1M x 512 it ran about twice as fast as the `gemm` crate's kernels
/// (BENCHMARKS.md), which is the difference between this and FAISS's flat search.
fn inner_products(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    crate::blas::matmul_transposed(queries, rows, dim, out, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(queries: &[f32], rows: &[f32], dim: usize, k: usize) -> Vec<Vec<u64>> {
        queries
            .chunks(dim)
            .map(|q| {
                let mut scored: Vec<(u64, f32)> = rows
                    .chunks(dim)
                    .enumerate()
                    .map(|(i, r)| (i as u64, q.iter().zip(r).map(|(a, b)| a * b).sum()))
                    .collect();
                scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                scored.into_iter().take(k).map(|(i, _)| i).collect()
            })
            .collect()
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn matches_naive_across_block_and_chunk_boundaries() {
        let dim = 7;
        let rows = pseudo_random((BLOCK_ROWS * 2 + 123) * dim, 1);
        let queries = pseudo_random((QUERY_CHUNK + 5) * dim, 2);
        let got = exact_search(
            &queries,
            dim,
            &[VectorBlock::F32 {
                base_id: 0,
                rows: &rows,
            }],
            10,
            &|_| true,
        );
        let want = naive(&queries, &rows, dim, 10);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.iter().map(|n| n.id).collect::<Vec<_>>(), *w);
        }
    }

    #[test]
    fn few_query_path_agrees_with_the_blas_path() {
        let dim = 16;
        let rows = pseudo_random((BLOCK_ROWS + 77) * dim, 3);
        let block = [VectorBlock::F32 {
            base_id: 5,
            rows: &rows,
        }];
        let few = pseudo_random(FEW_QUERIES * dim, 4);
        // The same queries repeated, so that the batch takes the BLAS path.
        let many: Vec<f32> = few.iter().copied().cycle().take(few.len() * 3).collect();
        let odd = |id: u64| id % 2 == 1;
        let alone = exact_search(&few, dim, &block, 10, &odd);
        let batched = exact_search(&many, dim, &block, 10, &odd);
        for (q, list) in alone.iter().enumerate() {
            let ids: Vec<u64> = list.iter().map(|n| n.id).collect();
            assert_eq!(
                ids,
                naive_ids_with(&few[q * dim..(q + 1) * dim], &rows, dim, 10, 5, odd)
            );
            let batched_ids: Vec<u64> = batched[q].iter().map(|n| n.id).collect();
            assert_eq!(ids, batched_ids);
        }
    }

    fn naive_ids_with(
        query: &[f32],
        rows: &[f32],
        dim: usize,
        k: usize,
        base: u64,
        keep: impl Fn(u64) -> bool,
    ) -> Vec<u64> {
        let mut scored: Vec<(u64, f32)> = rows
            .chunks(dim)
            .enumerate()
            .map(|(i, r)| {
                (
                    base + i as u64,
                    query.iter().zip(r).map(|(a, b)| a * b).sum(),
                )
            })
            .filter(|(id, _)| keep(*id))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.into_iter().take(k).map(|(i, _)| i).collect()
    }

    #[test]
    fn keep_filter_and_multiple_blocks() {
        let rows_a = [1.0f32, 0.0, 0.9, 0.1];
        let rows_b = [0.95f32, 0.05];
        let blocks = [
            VectorBlock::F32 {
                base_id: 0,
                rows: &rows_a,
            },
            VectorBlock::F32 {
                base_id: 2,
                rows: &rows_b,
            },
        ];
        let hits = exact_search(&[1.0, 0.0], 2, &blocks, 3, &|id| id != 0);
        assert_eq!(hits[0].iter().map(|n| n.id).collect::<Vec<_>>(), vec![2, 1]);
    }

    #[test]
    fn f16_rows_score_like_f32() {
        let rows: Vec<f16> = [0.5f32, 0.5, 1.0, 0.0]
            .iter()
            .map(|&x| f16::from_f32(x))
            .collect();
        let hits = exact_search(
            &[1.0, 0.0],
            2,
            &[VectorBlock::F16 {
                base_id: 10,
                rows: &rows,
            }],
            1,
            &|_| true,
        );
        assert_eq!(hits[0][0].id, 11);
        assert_eq!(hits[0][0].score, 1.0);
    }
}
