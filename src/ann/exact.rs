//! Exact top-k by inner product over a whole [`VectorSource`]: the reference every approximate search is
//! measured against, and the fallback a caller can always ask for.

use rayon::prelude::*;

use super::source::VectorSource;
use super::top_k::{Neighbor, TopK};

/// Rows scored per block: big enough for the matrix product to run at full speed, small enough that a
/// block of 512-d rows (2 MiB) stays in cache.
const BLOCK_ROWS: usize = 1024;

/// The exact `k` nearest rows of `source` for each query of `queries` (row-major, `source.dim()` each),
/// best first. Callers validate dimensions; see [`super::AnnIndex::search_batch`].
pub(crate) fn search(source: &dyn VectorSource, queries: &[f32], k: usize) -> Vec<Vec<Neighbor>> {
    let dim = source.dim();
    let nq = queries.len() / dim;
    let len = source.len();
    if nq == 0 {
        return Vec::new();
    }
    let blocks = len.div_ceil(BLOCK_ROWS);
    let empty = || vec![TopK::new(k); nq];
    let tops = (0..blocks)
        .into_par_iter()
        .fold(empty, |mut tops, block| {
            let start = block * BLOCK_ROWS;
            let end = (start + BLOCK_ROWS).min(len);
            score_block(source, queries, start, end, &mut tops);
            tops
        })
        .reduce(empty, |a, b| {
            a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect()
        });
    tops.into_iter().map(TopK::into_sorted).collect()
}

fn score_block(
    source: &dyn VectorSource,
    queries: &[f32],
    start: usize,
    end: usize,
    tops: &mut [TopK],
) {
    let dim = source.dim();
    let rows = end - start;
    let gathered;
    let block: &[f32] = match source.contiguous_rows(start, end) {
        Some(slice) => slice,
        None => {
            let mut buf = Vec::with_capacity(rows * dim);
            (start..end).for_each(|id| buf.extend_from_slice(source.row(id)));
            gathered = buf;
            &gathered
        }
    };
    let nq = tops.len();
    let mut scores = vec![0.0f32; nq * rows];
    // scores (nq x rows, row-major) = queries (nq x dim, row-major) * block^T (dim x rows).
    // SAFETY: every pointer covers the extent described by its shape and strides: `scores` nq*rows,
    // `queries` nq*dim, `block` rows*dim; `read_dst` is false so `scores` is only written; no aliasing.
    unsafe {
        gemm::gemm(
            nq,
            rows,
            dim,
            scores.as_mut_ptr(),
            1,
            rows as isize,
            false,
            queries.as_ptr(),
            1,
            dim as isize,
            block.as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    for (top, row_scores) in tops.iter_mut().zip(scores.chunks_exact(rows)) {
        for (offset, &score) in row_scores.iter().enumerate() {
            if score >= top.threshold() {
                top.push(Neighbor {
                    id: (start + offset) as u64,
                    score,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::source::{dot, Matrix};

    fn brute_force(m: &Matrix, q: &[f32], k: usize) -> Vec<u64> {
        let mut all: Vec<Neighbor> = (0..m.len())
            .map(|id| Neighbor {
                id: id as u64,
                score: dot(m.row(id), q),
            })
            .collect();
        all.sort_by(Neighbor::rank_cmp);
        all.truncate(k);
        all.iter().map(|n| n.id).collect()
    }

    #[test]
    fn blocked_matrix_product_agrees_with_row_by_row_dot_products() {
        let data = crate::ann::testdata::mixture(2500, 24, 7);
        let queries = crate::ann::testdata::mixture(5, 24, 8);
        let got = search(&data, queries.as_slice(), 10);
        for (qi, hits) in got.iter().enumerate() {
            let ids: Vec<u64> = hits.iter().map(|n| n.id).collect();
            assert_eq!(ids, brute_force(&data, queries.row(qi), 10), "query {qi}");
            for hit in hits {
                let want = dot(data.row(hit.id as usize), queries.row(qi));
                assert!((hit.score - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn k_larger_than_the_catalog_returns_every_row() {
        let data = crate::ann::testdata::mixture(7, 8, 1);
        let hits = search(&data, data.row(0), 50);
        assert_eq!(hits[0].len(), 7);
        assert_eq!(hits[0][0].id, 0);
    }
}
