//! Where the exact vectors live. The ANN layer never owns a full-precision copy of the catalog: it reads
//! rows from a [`VectorSource`] (the memory-mapped store in production, a [`Matrix`] in tests) for exact
//! search and for re-ranking compressed candidates.

use super::AnnError;
use crate::search::VectorBlock;

/// Read access to `len()` rows of `dim()` f32, with dense ids `0..len()`.
///
/// Rows are L2-normalized, so the inner product is the cosine similarity.
pub trait VectorSource: Sync {
    /// The dimension of every row.
    fn dim(&self) -> usize;
    /// The number of rows.
    fn len(&self) -> usize;
    /// Row `id`; `id < len()`.
    fn row(&self, id: usize) -> &[f32];
    /// All rows as runs of contiguous rows, in id order (`base_id` of the first is 0, each starts where
    /// the previous ended): what exact search multiplies and what a build hands to FAISS.
    fn blocks(&self) -> Vec<VectorBlock<'_>>;
    /// Whether there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An in-memory row-major matrix: the simplest [`VectorSource`].
///
/// ```
/// use fiq::ann::{Matrix, VectorSource};
/// let m = Matrix::new(2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
/// assert_eq!(m.len(), 2);
/// assert_eq!(m.row(1), &[0.0, 1.0]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    dim: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// Wraps `data` (row-major, `len * dim` values).
    pub fn new(dim: usize, data: Vec<f32>) -> Result<Matrix, AnnError> {
        if dim == 0 {
            return Err(AnnError::invalid("dim", 0, "must be positive"));
        }
        if data.len() % dim != 0 {
            return Err(AnnError::DimensionMismatch {
                what: format!("matrix data of {} values", data.len()),
                expected: dim,
                got: data.len() % dim,
            });
        }
        Ok(Matrix { dim, data })
    }

    /// Builds from rows, normalizing each to unit length; a row without a direction (zero or
    /// non-finite) is refused, naming it.
    pub fn from_rows_normalized(dim: usize, rows: &[Vec<f32>]) -> Result<Matrix, AnnError> {
        let mut data = Vec::with_capacity(rows.len() * dim);
        for (i, row) in rows.iter().enumerate() {
            if row.len() != dim {
                return Err(AnnError::DimensionMismatch {
                    what: format!("row {i}"),
                    expected: dim,
                    got: row.len(),
                });
            }
            data.extend_from_slice(row);
        }
        crate::vector::normalize_rows(&mut data, dim).map_err(|(row, problem)| {
            AnnError::NoDirection {
                what: format!("row {row}"),
                problem,
            }
        })?;
        Matrix::new(dim, data)
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
}

impl VectorSource for Matrix {
    fn dim(&self) -> usize {
        self.dim
    }
    fn len(&self) -> usize {
        self.data.len() / self.dim
    }
    fn row(&self, id: usize) -> &[f32] {
        &self.data[id * self.dim..(id + 1) * self.dim]
    }
    fn blocks(&self) -> Vec<VectorBlock<'_>> {
        vec![VectorBlock::F32 {
            base_id: 0,
            rows: &self.data,
        }]
    }
}
