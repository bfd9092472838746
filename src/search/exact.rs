//! Exact (brute-force) top-k by inner product.
//!
//! Scores are computed a block at a time as one matrix product, queries × block-of-rowsᵀ, with BLAS
//! `sgemm`, and each block is reduced to per-query top-k at once, so the score
//! matrix never exceeds a few MiB. Blocks are the unit of parallelism: each rayon task keeps its own
//! top-k per query and the tasks are merged at the end, so the result does not depend on the thread count.

use half::f16;
use rayon::prelude::*;

use super::topk::{Neighbor, TopK};

/// Rows scored per task: large enough that the matrix product runs near peak, small enough that the
/// scores of a query chunk stay in cache.
const BLOCK_ROWS: usize = 4096;
/// Queries scored together against a block.
const QUERY_CHUNK: usize = 256;

/// A run of consecutive rows stored contiguously (one segment of an index).
#[derive(Debug, Clone, Copy)]
pub enum VectorBlock<'a> {
    /// Rows as f32, row-major.
    F32 { base_id: u64, rows: &'a [f32] },
    /// Rows as f16, row-major (converted a block at a time).
    F16 { base_id: u64, rows: &'a [f16] },
}

impl VectorBlock<'_> {
    /// Rows in the block.
    pub fn len(&self, dim: usize) -> usize {
        match self {
            VectorBlock::F32 { rows, .. } => rows.len() / dim,
            VectorBlock::F16 { rows, .. } => rows.len() / dim,
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
    let tasks: Vec<(VectorBlock<'_>, usize, usize)> = blocks
        .iter()
        .flat_map(|block| {
            let n = block.len(dim);
            (0..n)
                .step_by(BLOCK_ROWS)
                .map(move |start| (*block, start, (start + BLOCK_ROWS).min(n)))
        })
        .collect();
    let merged = tasks
        .into_par_iter()
        .map(|(block, start, end)| score_block(queries, dim, block, start, end, k, keep))
        .reduce_with(|mut a, b| {
            for (top, other) in a.iter_mut().zip(b) {
                top.merge(other);
            }
            a
        })
        .unwrap_or_else(|| vec![TopK::new(k); nq]);
    merged.into_iter().map(TopK::into_sorted).collect()
}

fn score_block(
    queries: &[f32],
    dim: usize,
    block: VectorBlock<'_>,
    start: usize,
    end: usize,
    k: usize,
    keep: &(dyn Fn(u64) -> bool + Sync),
) -> Vec<TopK> {
    let nq = queries.len() / dim;
    let n = end - start;
    let converted: Vec<f32>;
    let rows: &[f32] = match block {
        VectorBlock::F32 { rows, .. } => &rows[start * dim..end * dim],
        VectorBlock::F16 { rows, .. } => {
            converted = rows[start * dim..end * dim]
                .iter()
                .map(|x| x.to_f32())
                .collect();
            &converted
        }
    };
    let base = block.base_id() + start as u64;
    let mut tops = vec![TopK::new(k); nq];
    let mut scores = vec![0f32; QUERY_CHUNK.min(nq) * n];
    for (chunk_index, chunk) in queries.chunks(QUERY_CHUNK * dim).enumerate() {
        let m = chunk.len() / dim;
        inner_products(chunk, rows, dim, &mut scores[..m * n]);
        for (i, row_scores) in scores[..m * n].chunks_exact(n).enumerate() {
            let top = &mut tops[chunk_index * QUERY_CHUNK + i];
            let mut threshold = top.threshold();
            for (j, &score) in row_scores.iter().enumerate() {
                // NaN never passes, so a NaN score (from a NaN query) cannot enter the results.
                if score > threshold && keep(base + j as u64) {
                    top.push(base + j as u64, score);
                    threshold = top.threshold();
                }
            }
        }
    }
    tops
}

/// `out[i * n + j] = <queries[i], rows[j]>` for `m` queries and `n` rows, by the BLAS `sgemm` that FAISS
/// already links (OpenBLAS here): on 1M x 512 it ran about twice as fast as the `gemm` crate's kernels
/// (BENCHMARKS.md), which is the difference between this and FAISS's flat search.
fn inner_products(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    let m = queries.len() / dim;
    let n = rows.len() / dim;
    debug_assert_eq!(out.len(), m * n);
    if m == 0 || n == 0 {
        return;
    }
    // BLAS is column-major: the row-major m×n `out` is the column-major n×m matrix outᵀ = rows · queriesᵀ.
    // `rows` (row-major n×dim) is a column-major dim×n matrix, used transposed ('T', lda = dim); `queries`
    // (row-major m×dim) is a column-major dim×m matrix, used as is ('N', ldb = dim); ldc = n.
    let (transa, transb) = (b'T' as std::ffi::c_char, b'N' as std::ffi::c_char);
    let (bm, bn, bk) = (n as BlasInt, m as BlasInt, dim as BlasInt);
    let (alpha, beta) = (1.0f32, 0.0f32);
    // SAFETY: sgemm_ reads an n×dim matrix from `rows` (n*dim values), a dim×m matrix from `queries`
    // (m*dim values) and writes n×m values to `out` (m*n values, checked above); the leading dimensions
    // equal the row lengths, so no access leaves the slices. All scalars are passed by pointer to
    // locals that outlive the call, as the Fortran ABI requires, and `out` aliases neither input.
    unsafe {
        sgemm_(
            &transa,
            &transb,
            &bm,
            &bn,
            &bk,
            &alpha,
            rows.as_ptr(),
            &bk,
            queries.as_ptr(),
            &bk,
            &beta,
            out.as_mut_ptr(),
            &bm,
        );
    }
}

/// The integer type of the LP64 BLAS interface that faiss-sys links (`-lblas`).
type BlasInt = std::ffi::c_int;

extern "C" {
    /// Fortran BLAS single-precision matrix product: C := alpha·op(A)·op(B) + beta·C.
    fn sgemm_(
        transa: *const std::ffi::c_char,
        transb: *const std::ffi::c_char,
        m: *const BlasInt,
        n: *const BlasInt,
        k: *const BlasInt,
        alpha: *const f32,
        a: *const f32,
        lda: *const BlasInt,
        b: *const f32,
        ldb: *const BlasInt,
        beta: *const f32,
        c: *mut f32,
        ldc: *const BlasInt,
    );
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
        let rows = pseudo_random(BLOCK_ROWS * 2 + 123, 1);
        let queries = pseudo_random(QUERY_CHUNK + 5, 2)
            .into_iter()
            .take((QUERY_CHUNK + 5) / dim * dim)
            .collect::<Vec<_>>();
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
