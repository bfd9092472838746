//! Fusing a reference-image vector and a modification-text vector into one query vector.
//!
//! ```
//! use fiq::fusion::{fuse, Fusion};
//! let query = fuse(&[1.0, 0.0], &[0.0, 1.0], &Fusion::Sum)?;
//! let half = std::f32::consts::FRAC_1_SQRT_2;
//! assert!((query[0] - half).abs() < 1e-6 && (query[1] - half).abs() < 1e-6);
//! # Ok::<(), fiq::fusion::FusionError>(())
//! ```
//!
//! A learned fusion (CLIP4Cir's Combiner, or a learned projection; see [`Combiner`]) is the
//! [`Fusion::Combiner`] variant holding the trained model, dispatched in [`fuse`] and [`fuse_batch`] like the
//! two closed-form methods.

pub(crate) mod combiner;

pub use combiner::{Combiner, CombinerConfig, CombinerError, LearnedFusionKind};
use std::sync::Arc;

/// How a query is fused from a reference image and a text.
///
/// Both inputs are L2-normalized before they are combined, so the weights act on directions, not on whatever
/// norms the two encoders happen to produce (index rows are stored normalized; the text encoder's are not
/// guaranteed to be). The result is L2-normalized.
#[derive(Debug, Clone, PartialEq)]
pub enum Fusion {
    /// `normalize(normalize(image) + normalize(text))`: CLIP4Cir's element-wise-sum baseline on
    /// normalized features; the same as `Weighted { alpha: 0.5 }`.
    Sum,
    /// `normalize((1 - alpha) * normalize(image) + alpha * normalize(text))`, `alpha` in `[0, 1]`:
    /// 0 is image only, 1 is text only.
    Weighted {
        /// The text's weight.
        alpha: f32,
    },
    /// A trained model (`fiq-index train` output, loaded with [`Combiner::load_cpu`]).
    Combiner(Arc<Combiner>),
}

/// Why a query could not be fused. Row numbers refer to the batch; a single [`fuse`] is row 0.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FusionError {
    /// The image and text vectors differ in length.
    #[error("row {row}: image vector has {image} dimensions, text vector {text}")]
    DimensionMismatch {
        /// The row.
        row: usize,
        /// The image vector's length.
        image: usize,
        /// The text vector's length.
        text: usize,
    },
    /// A batch whose flat length is not a multiple of the dimension, or a zero dimension.
    #[error("{which} batch of {len} values does not split into rows of {dim}")]
    BatchShape {
        /// `image` or `text`.
        which: &'static str,
        /// The flat length.
        len: usize,
        /// The stated dimension.
        dim: usize,
    },
    /// An input holds NaN or infinity.
    #[error("row {row}: {which} vector has a non-finite value at index {index}")]
    NotFinite {
        /// The row.
        row: usize,
        /// `image` or `text`.
        which: &'static str,
        /// The first offending index.
        index: usize,
    },
    /// An input (or, for opposite inputs, the combination) has zero length and no direction.
    #[error("row {row}: {which} vector is zero and cannot be normalized")]
    ZeroVector {
        /// The row.
        row: usize,
        /// `image`, `text` or `fused`.
        which: &'static str,
    },
    /// The learned fusion model failed on this row.
    #[error("row {row}: learned fusion failed")]
    Learned {
        /// The row.
        row: usize,
        /// What failed.
        #[source]
        source: CombinerError,
    },
    /// A weight outside `[0, 1]` or NaN.
    #[error("fusion weight alpha = {alpha} is not in [0, 1]")]
    InvalidAlpha {
        /// The weight given.
        alpha: f32,
    },
}

impl Fusion {
    /// The text weight of a closed-form method, checked.
    fn text_weight(&self) -> Result<f32, FusionError> {
        match *self {
            Fusion::Sum => Ok(0.5),
            Fusion::Weighted { alpha } if (0.0..=1.0).contains(&alpha) => Ok(alpha),
            Fusion::Weighted { alpha } => Err(FusionError::InvalidAlpha { alpha }),
            Fusion::Combiner(_) => unreachable!("learned fusion has no closed-form weight"),
        }
    }
}

/// Fuses one image vector and one text vector into a unit-length query vector.
///
/// ```
/// use fiq::fusion::{fuse, Fusion, FusionError};
/// let text_only = fuse(&[3.0, 0.0], &[0.0, 2.0], &Fusion::Weighted { alpha: 1.0 })?;
/// assert_eq!(text_only, vec![0.0, 1.0]);
/// assert!(matches!(fuse(&[1.0], &[1.0, 0.0], &Fusion::Sum), Err(FusionError::DimensionMismatch { .. })));
/// # Ok::<(), FusionError>(())
/// ```
pub fn fuse(image: &[f32], text: &[f32], method: &Fusion) -> Result<Vec<f32>, FusionError> {
    if let Fusion::Combiner(model) = method {
        return fuse_learned(model, image, text, image.len());
    }
    let alpha = method.text_weight()?;
    let mut out = vec![0.0; image.len()];
    fuse_row(0, image, text, alpha, &mut out)?;
    Ok(out)
}

/// Fuses a batch: `images` and `texts` are row-major with `dim` values per row; the result is too.
pub fn fuse_batch(
    images: &[f32],
    texts: &[f32],
    dim: usize,
    method: &Fusion,
) -> Result<Vec<f32>, FusionError> {
    if let Fusion::Combiner(model) = method {
        return fuse_learned(model, images, texts, dim);
    }
    let alpha = method.text_weight()?;
    for (which, values) in [("image", images), ("text", texts)] {
        if dim == 0 || values.len() % dim != 0 {
            return Err(FusionError::BatchShape {
                which,
                len: values.len(),
                dim,
            });
        }
    }
    if images.len() != texts.len() {
        // Rows differ in count, not in width: report the first row that has no partner.
        let row = images.len().min(texts.len()) / dim;
        return Err(FusionError::DimensionMismatch {
            row,
            image: if images.len() > texts.len() { dim } else { 0 },
            text: if texts.len() > images.len() { dim } else { 0 },
        });
    }
    let mut out = vec![0.0; images.len()];
    for (row, ((image, text), fused)) in images
        .chunks_exact(dim)
        .zip(texts.chunks_exact(dim))
        .zip(out.chunks_exact_mut(dim))
        .enumerate()
    {
        fuse_row(row, image, text, alpha, fused)?;
    }
    Ok(out)
}

/// Checks rows the way the closed-form methods do (same errors), then runs the model on the whole batch.
fn fuse_learned(
    model: &Combiner,
    images: &[f32],
    texts: &[f32],
    dim: usize,
) -> Result<Vec<f32>, FusionError> {
    for (which, values) in [("image", images), ("text", texts)] {
        if dim == 0 || values.len() % dim != 0 {
            return Err(FusionError::BatchShape {
                which,
                len: values.len(),
                dim,
            });
        }
    }
    if images.len() != texts.len() {
        return Err(FusionError::DimensionMismatch {
            row: images.len().min(texts.len()) / dim,
            image: if images.len() > texts.len() { dim } else { 0 },
            text: if texts.len() > images.len() { dim } else { 0 },
        });
    }
    for (row, (image, text)) in images
        .chunks_exact(dim)
        .zip(texts.chunks_exact(dim))
        .enumerate()
    {
        checked_norm(row, "image", image)?;
        checked_norm(row, "text", text)?;
    }
    model
        .fuse_batch(images, texts)
        .map_err(|source| FusionError::Learned { row: 0, source })
}

fn fuse_row(
    row: usize,
    image: &[f32],
    text: &[f32],
    alpha: f32,
    out: &mut [f32],
) -> Result<(), FusionError> {
    if image.len() != text.len() {
        return Err(FusionError::DimensionMismatch {
            row,
            image: image.len(),
            text: text.len(),
        });
    }
    let image_norm = checked_norm(row, "image", image)?;
    let text_norm = checked_norm(row, "text", text)?;
    let (image_scale, text_scale) = ((1.0 - alpha) / image_norm, alpha / text_norm);
    for ((fused, &i), &t) in out.iter_mut().zip(image).zip(text) {
        *fused = image_scale * i + text_scale * t;
    }
    let fused_norm = norm(out);
    if fused_norm <= 0.0 {
        return Err(FusionError::ZeroVector {
            row,
            which: "fused",
        });
    }
    out.iter_mut().for_each(|value| *value /= fused_norm);
    Ok(())
}

fn norm(values: &[f32]) -> f32 {
    // Accumulate in f64: CLIP vectors are short, but unnormalized inputs can be large.
    values
        .iter()
        .map(|&value| f64::from(value) * f64::from(value))
        .sum::<f64>()
        .sqrt() as f32
}

fn checked_norm(row: usize, which: &'static str, values: &[f32]) -> Result<f32, FusionError> {
    if let Some(index) = values.iter().position(|value| !value.is_finite()) {
        return Err(FusionError::NotFinite { row, which, index });
    }
    let length = norm(values);
    if length > 0.0 && length.is_finite() {
        Ok(length)
    } else {
        Err(FusionError::ZeroVector { row, which })
    }
}

#[cfg(test)]
mod tests;
