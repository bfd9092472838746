//! The contrastive (InfoNCE) loss between fused queries and target images, with hard negatives.
//!
//! For query `i` with target `t_i`, scores are `s = scale · cos(q_i, ·)`; the negatives are the other
//! targets of the batch (except copies of `t_i`) and, when given, the query's mined negatives. The loss is
//!
//! ```text
//! L_i = −s(t_i) + log( exp s(t_i) + Σ_n w_in · exp s(n) )
//! w_in = N_i · softmax_n(β · cos(q_i, n))      (treated as a constant; β = 0 gives w = 1, plain InfoNCE)
//! ```
//!
//! averaged over the batch: the importance weighting of Robinson et al. ("Contrastive learning with hard
//! negative samples"), which up-weights the negatives nearest the query.

use candle_core::{Tensor, D};

/// Added to a logit to remove it from the softmax.
const MASKED: f32 = -1e9;

/// Loss settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOptions {
    /// Multiplies cosine similarities (CLIP4Cir: a fixed 100, i.e. temperature 0.01).
    pub logit_scale: f32,
    /// Hard-negative concentration β; 0 weights all negatives equally.
    pub hard_negative_beta: f32,
}

impl Default for LossOptions {
    fn default() -> Self {
        LossOptions {
            logit_scale: 100.0,
            hard_negative_beta: 0.0,
        }
    }
}

/// Mined negatives for a batch: `vectors` is `[batch, per_query, dim]`; `valid[i * per_query + m]` says
/// whether slot `m` of query `i` holds a negative (a small gallery can leave slots empty).
#[derive(Debug)]
pub struct MinedBatch<'a> {
    /// The negatives' vectors.
    pub vectors: &'a Tensor,
    /// Which slots are real.
    pub valid: &'a [bool],
}

/// The mean loss over the batch. `queries` and `targets` are `[batch, dim]` and unit-length;
/// `target_ids[i]` identifies target `i`, so a target appearing twice in a batch is never a negative of
/// its own query.
pub fn contrastive_loss(
    queries: &Tensor,
    targets: &Tensor,
    target_ids: &[u64],
    mined: Option<&MinedBatch<'_>>,
    options: &LossOptions,
) -> candle_core::Result<Tensor> {
    let batch = target_ids.len();
    let scale = f64::from(options.logit_scale);
    let scores = (queries.matmul(&targets.t()?)? * scale)?;
    let device = queries.device();
    let eye = Tensor::eye(batch, candle_core::DType::F32, device)?;
    let positive = scores.mul(&eye)?.sum_keepdim(1)?;
    let mut valid: Vec<bool> = (0..batch * batch)
        .map(|cell| target_ids[cell / batch] != target_ids[cell % batch])
        .collect();
    let negatives = match mined {
        Some(mined) => {
            let per_query = mined.vectors.dim(1)?;
            let mined_scores = (queries
                .unsqueeze(1)?
                .matmul(&mined.vectors.transpose(1, 2)?)?
                * scale)?
                .squeeze(1)?;
            let mut combined = Vec::with_capacity(batch * (batch + per_query));
            for row in 0..batch {
                combined.extend_from_slice(&valid[row * batch..(row + 1) * batch]);
                combined.extend_from_slice(&mined.valid[row * per_query..(row + 1) * per_query]);
            }
            valid = combined;
            Tensor::cat(&[&scores, &mined_scores], 1)?
        }
        None => scores,
    };
    let width = negatives.dim(1)?;
    let adjust = log_weights(
        &negatives.detach().to_vec2::<f32>()?,
        &valid,
        width,
        options,
    );
    let adjust = Tensor::from_vec(adjust, (batch, width), device)?;
    let logits = Tensor::cat(&[&positive, &(negatives + adjust)?], 1)?;
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let log_sum_exp = (logits
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + max)?;
    (log_sum_exp - positive)?.mean_all()
}

/// `log w` for every negative (see the module docs), or [`MASKED`] where there is no negative.
fn log_weights(
    scores: &[Vec<f32>],
    valid: &[bool],
    width: usize,
    options: &LossOptions,
) -> Vec<f32> {
    let beta = options.hard_negative_beta / options.logit_scale;
    let mut out = vec![MASKED; scores.len() * width];
    for (row, row_scores) in scores.iter().enumerate() {
        let cells = || (0..width).filter(|&col| valid[row * width + col]);
        let count = cells().count();
        if count == 0 {
            continue;
        }
        let peak = cells()
            .map(|col| beta * row_scores[col])
            .fold(f32::NEG_INFINITY, f32::max);
        let log_total = cells()
            .map(|col| (beta * row_scores[col] - peak).exp())
            .sum::<f32>()
            .ln()
            + peak;
        for col in cells() {
            out[row * width + col] = (count as f32).ln() + beta * row_scores[col] - log_total;
        }
    }
    out
}

/// Mean cross-entropy of `logits` (rows × columns) with `targets[row]` the right column, where `masked`
/// (row-major, one per cell) removes a cell from its row's softmax: a negative that is not one (an image
/// with the target's exact attributes). The target cell itself must not be masked.
pub(crate) fn masked_cross_entropy(
    logits: &Tensor,
    targets: &[u32],
    masked: &[bool],
) -> candle_core::Result<Tensor> {
    let (rows, columns) = logits.dims2()?;
    let adjust: Vec<f32> = masked
        .iter()
        .map(|&off| if off { MASKED } else { 0.0 })
        .collect();
    let adjust = Tensor::from_vec(adjust, (rows, columns), logits.device())?;
    let targets = Tensor::from_slice(targets, rows, logits.device())?;
    candle_nn::loss::cross_entropy(&(logits + adjust)?, &targets)
}
