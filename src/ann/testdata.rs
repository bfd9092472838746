//! Small synthetic catalogs whose neighbors are not trivial, for tests: many broad, overlapping clusters
//! plus a shared low-rank component plus isotropic noise, normalized. Tight, well-separated blobs would
//! make every IVF setting look perfect.

use super::source::Matrix;
use crate::rng::SplitMix64;

/// `n` unit rows of dimension `dim`, reproducible from `seed`.
pub(crate) fn mixture(n: usize, dim: usize, seed: u64) -> Matrix {
    // Centers and basis come from a fixed seed so that different `seed`s draw from one distribution
    // (a catalog and its held-out queries must share it).
    let mut structure = SplitMix64::new(0x5EED);
    let clusters = 24;
    let rank = (dim / 4).max(2);
    let centers: Vec<f32> = (0..clusters * dim).map(|_| structure.gaussian()).collect();
    let basis: Vec<f32> = (0..rank * dim).map(|_| structure.gaussian()).collect();
    let mut rng = SplitMix64::new(seed);
    let mut data = vec![0.0f32; n * dim];
    for row in data.chunks_exact_mut(dim) {
        let c = rng.below(clusters);
        let weights: Vec<f32> = (0..rank).map(|_| rng.gaussian() * 0.5).collect();
        for (j, v) in row.iter_mut().enumerate() {
            let low_rank: f32 = weights
                .iter()
                .enumerate()
                .map(|(r, w)| w * basis[r * dim + j])
                .sum();
            *v = centers[c * dim + j] + low_rank / (rank as f32).sqrt() + 1.3 * rng.gaussian();
        }
    }
    crate::vector::normalize_rows(&mut data, dim).expect("gaussian rows have a direction");
    Matrix::new(dim, data).expect("dim > 0 and data is n * dim long")
}
