//! Drift: how well the centroids an IVF index was trained on still fit the rows, the measure on which
//! compaction decides between refilling the lists with the same centroids and training new ones.
//!
//! A row's *residual* is `1 - <x, c>`, with `c` its nearest centroid (rows are unit-length: this is the
//! cosine distance a search's first step sees). The drift **ratio** is the mean residual of a sample of
//! the rows added since the index was trained, divided by the mean residual of a sample of the rows it
//! was trained on. About 1 means new rows sit as close to the centroids as the training data did; well
//! above 1, new rows fall between centroids, lists grow lopsided, and recall at a fixed `nprobe` drops.

use super::{AnnError, AnnIndex};

/// Retrain when new rows fit the centroids this much worse than the training rows did.
pub const RETRAIN_RATIO: f64 = 1.25;
/// Retrain when the catalog has grown or shrunk by this factor since training (the number of lists
/// was chosen for the old size).
pub const RETRAIN_GROWTH: f64 = 2.0;

/// How far the rows have drifted from the trained centroids.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    /// Mean residual of the sampled live rows the index was built over.
    pub built_residual: f64,
    /// Mean residual of the sampled live rows added since (`None` when none were).
    pub added_residual: Option<f64>,
    /// Rows the index was built over.
    pub built_rows: usize,
    /// Live rows among them that the measure sampled (0 when every one was removed).
    pub built_sampled: usize,
    /// Live rows added since.
    pub added_rows: usize,
    /// `added_residual / built_residual`; 1 when no rows were added.
    pub ratio: f64,
}

impl Drift {
    /// Measures drift from samples of the built rows and the added rows (row-major, unit-length).
    pub fn measure(
        ann: &AnnIndex,
        built_sample: &[f32],
        added_sample: &[f32],
        added_rows: usize,
    ) -> Result<Drift, AnnError> {
        let mean_residual = |rows: &[f32]| -> Result<Option<f64>, AnnError> {
            if rows.is_empty() {
                return Ok(None);
            }
            let fit = ann.centroid_fit(rows)?;
            let sum: f64 = fit.iter().map(|&s| 1.0 - s as f64).sum();
            Ok(Some(sum / fit.len() as f64))
        };
        let built = mean_residual(built_sample)?;
        let built_residual = built.unwrap_or(0.0);
        let added_residual = mean_residual(added_sample)?;
        let ratio = match added_residual {
            None => 1.0,
            // Every row the centroids were trained on is gone: nothing says they still fit.
            Some(_) if built.is_none() => f64::INFINITY,
            // A perfect fit of the built rows (residual 0, e.g. nlist = rows) leaves only the added
            // rows' residual to judge by: any misfit then counts as drift.
            Some(added) if built_residual <= f64::EPSILON => {
                if added <= f64::EPSILON {
                    1.0
                } else {
                    f64::INFINITY
                }
            }
            Some(added) => added / built_residual,
        };
        Ok(Drift {
            built_residual,
            added_residual,
            built_rows: ann.len(),
            built_sampled: built_sample.len() / ann.dim().max(1),
            added_rows,
            ratio,
        })
    }

    /// Why the IVF index should be trained again for `live_rows` rows, or `None` when its centroids
    /// still fit (then compaction refills the lists with them, without k-means).
    pub fn retrain_reason(&self, live_rows: u64) -> Option<String> {
        if self.built_sampled == 0 && self.added_residual.is_some() {
            return Some("no row the centroids were trained on is left".into());
        }
        if self.ratio > RETRAIN_RATIO {
            return Some(format!(
                "drift {:.2} > {RETRAIN_RATIO}: rows added since training fit the centroids worse",
                self.ratio
            ));
        }
        let growth = live_rows as f64 / self.built_rows.max(1) as f64;
        if !(1.0 / RETRAIN_GROWTH..=RETRAIN_GROWTH).contains(&growth) {
            return Some(format!(
                "the catalog is {growth:.2}x the size the lists were trained for"
            ));
        }
        None
    }
}
