//! Training learned fusions (CLIP4Cir's Combiner, a learned projection) on cached features.
//!
//! Image vectors come from an [`Index`](crate::Index) whose keys are FashionIQ image names; text vectors
//! come from a caller's text encoder ([`TextEncoder`]), called once per distinct text before training.
//! Nothing here knows which encoder made the vectors, so training runs on CPU in minutes.
//!
//! The public surface is what a caller needs to run a training: [`train`] with [`TrainOptions`], the
//! data ([`TrainingSet`], [`Validation`], [`TextCache`]) and the outcome ([`TrainSummary`]). Inside:
//! `data.rs` (triplets resolved to index ids, their four caption variants encoded), `loss.rs` (InfoNCE
//! between fused queries and targets, with in-batch hard-negative weighting and mined negatives),
//! `miner.rs` (each query's nearest non-target gallery items, by exact search in fiq's index), `optim.rs`
//! (AdamW with checkpointable state, gradient clipping, warmup + cosine schedule), `trainer.rs` (the
//! loop, per-epoch validation through the pipeline's index backend, checkpoints and resume), and
//! [`synthetic`] (fake image and text features for synthetic FashionIQ: tests and benchmarks only, not
//! CLIP).

mod data;
mod finetune;
mod loss;
mod miner;
mod optim;
mod pretrain;
pub mod synthetic;
mod text_cache;
mod trainer;

pub use data::{Example, TextEncoder, TextFeatures, TrainingSet, Validation};
pub use finetune::{
    fine_tune_encoder, FineTuneData, FineTuneOptions, FineTuneSummary, RunRecord, TunedTowers,
    RUN_RECORD_FILE,
};
pub use loss::LossOptions;
#[cfg(test)]
pub(crate) use loss::{contrastive_loss, MinedBatch};
pub use miner::Mining;
#[cfg(test)]
use miner::{mine_hard_negatives, MiningQuery};
#[cfg(test)]
use optim::{clip_grad_norm, learning_rate, AdamW};
pub use pretrain::{
    pretrain_on_synthetic, PretrainOptions, PretrainRecord, PretrainSummary, PRETRAIN_RECORD_FILE,
};
pub use text_cache::TextCache;

pub use trainer::{
    evaluate_fusion, last_checkpoint, train, EpochRecord, TrainOptions, TrainSummary, BEST_DIR,
    LAST_DIR,
};

use crate::fashioniq::Split;
use crate::fusion::{CombinerConfig, CombinerError};
use std::path::PathBuf;

/// Why training could not run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The index failed (a key look-up, a search).
    #[error("{context}")]
    Index {
        /// What was being done.
        context: &'static str,
        /// The index's error.
        #[source]
        source: Box<crate::Error>,
    },
    /// An id of the training set has no row in the index.
    #[error("index row {id} is missing or deleted")]
    MissingRow {
        /// The id.
        id: u64,
    },
    /// The caller's text encoder failed.
    #[error("encoding a batch of {count} texts")]
    TextEncoder {
        /// Texts in the batch.
        count: usize,
        /// The encoder's error.
        #[source]
        source: crate::eval::BackendError,
    },
    /// The text encoder returned the wrong number of vectors.
    #[error("the text encoder returned {found} vectors for {expected} texts")]
    TextCount {
        /// Texts given.
        expected: usize,
        /// Vectors returned.
        found: usize,
    },
    /// A text vector of the wrong length or with NaN/infinity.
    #[error(
        "text {text:?}: vector has {found} dimensions (expected {expected}) or a non-finite value"
    )]
    TextVector {
        /// The text.
        text: String,
        /// The index's dimension.
        expected: usize,
        /// The vector's length.
        found: usize,
    },
    /// The split has no targets (FashionIQ test).
    #[error("{split} split has no targets to train on")]
    NoTargets {
        /// The split.
        split: Split,
    },
    /// No triplet of the split has both images in the index.
    #[error("{split} split: no triplet has both images in the index ({skipped} skipped)")]
    NoExamples {
        /// The split.
        split: Split,
        /// Triplets skipped.
        skipped: usize,
    },
    /// The model's feature dimension is not the index's.
    #[error("the model takes {model}-dimensional features, the index holds {index}")]
    ModelDimension {
        /// The model's.
        model: usize,
        /// The index's.
        index: usize,
    },
    /// An option out of range.
    #[error("invalid {name}: {value}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The loss became NaN or infinite.
    #[error("the loss is not finite at step {step}; lower the learning rate")]
    NonFiniteLoss {
        /// The optimizer step.
        step: u64,
    },
    /// The model (building, running, saving, loading).
    #[error(transparent)]
    Model(#[from] CombinerError),
    /// A checkpoint file could not be written or read.
    #[error("checkpoint {path}: {detail}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A checkpoint of another model than the one requested.
    #[error("checkpoint {path} holds {saved:?}, but {requested:?} was requested")]
    ResumeMismatch {
        /// The checkpoint folder.
        path: PathBuf,
        /// Its config.
        saved: CombinerConfig,
        /// The requested config.
        requested: CombinerConfig,
    },
    /// Per-epoch validation failed.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// The encoder being fine-tuned could not be loaded, run or saved.
    #[error(transparent)]
    Encoder(#[from] crate::encoder::EncoderError),
    /// An image of an image-tower run could not be read.
    #[error(transparent)]
    Image(#[from] crate::encoder::ImageError),
    /// An image-tower run needs each row's image, and this row records no path.
    #[error("index row {key:?} records no image path; fine-tuning the image tower needs an index built from image files")]
    NoImagePath {
        /// The row's key.
        key: String,
    },
    /// A tensor operation of fine-tuning failed.
    #[error("{context}: {detail}")]
    Compute {
        /// What fiq was doing.
        context: &'static str,
        /// The tensor library's message.
        detail: String,
    },
}

#[cfg(test)]
mod tests;
