//! The training loop: batches, augmentation, mining, optimization, validation and checkpoints.

use super::data::{TrainingSet, Validation};
use super::loss::{contrastive_loss, LossOptions, MinedBatch};
use super::miner::{mine_hard_negatives, Mining, MiningQuery};
use super::optim::{learning_rate, AdamW, ParamsAdamW};
use super::TrainError;
use crate::eval::{evaluate, EvalOptions, EvalReport};
use crate::fusion::combiner::{forward, initial_weights, save_model, tensor_error};
use crate::fusion::{Combiner, CombinerConfig, Fusion};
use crate::index::{Index, SearchMode};
use crate::pipeline::{CategoryGalleries, IndexBackend, TextSource};
use crate::rng::SplitMix64;
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The checkpoint folder under the output folder, rewritten after every epoch.
pub const LAST_DIR: &str = "last";
/// The best model so far by validation score.
pub const BEST_DIR: &str = "best";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "state.json";

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The model to train.
    pub model: CombinerConfig,
    /// Passes over the training set.
    pub epochs: usize,
    /// Triplets per step.
    pub batch_size: usize,
    /// Peak learning rate (CLIP4Cir's Combiner: 2e-5 with batch 4096; small sets want more).
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Linear warmup steps before the cosine decay.
    pub warmup_steps: u64,
    /// Gradients are scaled down when their global L2 norm exceeds this.
    pub max_grad_norm: f64,
    /// Loss settings (logit scale, hard-negative weighting).
    pub loss: LossOptions,
    /// Hard negatives mined from the index (off by default).
    pub mining: Mining,
    /// Draw one of CLIP4Cir's four caption variants per triplet and step; off uses the evaluation text.
    pub caption_augmentation: bool,
    /// Seeds initialization, shuffling, caption draws and dropout.
    pub seed: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Stop (with a checkpoint) after this epoch, to resume later; the schedule still spans `epochs`.
    pub stop_after_epoch: Option<usize>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            model: CombinerConfig::combiner(512),
            epochs: 10,
            batch_size: 128,
            learning_rate: 1e-4,
            weight_decay: 0.01,
            warmup_steps: 50,
            max_grad_norm: 1.0,
            loss: LossOptions::default(),
            mining: Mining::default(),
            caption_augmentation: true,
            seed: 0,
            progress: false,
            stop_after_epoch: None,
        }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    pub loss: f64,
    /// Training triplets per second (forward, backward, update; not mining or validation).
    pub examples_per_second: f64,
    /// Mean R@10 and R@50 over categories on the validation split, when there is one.
    pub recall_at_10: Option<f64>,
    /// See `recall_at_10`.
    pub recall_at_50: Option<f64>,
    /// Mean mined negatives per training query in the epoch, when it mined: below the number asked
    /// for when galleries are too small to hold them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mined_per_query: Option<f64>,
}

impl EpochRecord {
    /// `(mean R@10 + mean R@50) / 2`, the number the best checkpoint is chosen by.
    pub fn score(&self) -> Option<f64> {
        Some((self.recall_at_10? + self.recall_at_50?) / 2.0)
    }

    /// An epoch's record from its mean loss, its speed and its validation report, if validated.
    pub(super) fn measured(
        epoch: usize,
        loss: f64,
        examples_per_second: f64,
        report: Option<&EvalReport>,
    ) -> EpochRecord {
        EpochRecord {
            epoch,
            loss,
            examples_per_second,
            recall_at_10: report.and_then(|r| recall_at(r, 10)),
            recall_at_50: report.and_then(|r| recall_at(r, 50)),
            mined_per_query: None,
        }
    }

    /// The record with the epoch's mined negatives counted (`mined[i]`: query `i`'s), if any were.
    pub(super) fn with_mined(self, mined: &[Vec<u64>]) -> EpochRecord {
        if mined.is_empty() {
            return self;
        }
        let total: usize = mined.iter().map(Vec::len).sum();
        EpochRecord {
            mined_per_query: Some(total as f64 / mined.len() as f64),
            ..self
        }
    }

    /// The line printed after the epoch.
    pub(super) fn summary_line(&self) -> String {
        format!(
            "epoch {}: loss {:.4}, {:.0} triplets/s{}{}",
            self.epoch,
            self.loss,
            self.examples_per_second,
            self.mined_per_query
                .map(|mean| format!(", {mean:.1} mined negatives per query"))
                .unwrap_or_default(),
            self.score()
                .map(|s| format!(", val (R@10+R@50)/2 = {:.2}", s * 100.0))
                .unwrap_or_default()
        )
    }
}

/// The saved progress of a run, next to the weights and optimizer moments in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RunState {
    pub(super) epochs_done: usize,
    pub(super) optimizer_steps: u64,
    pub(super) rng: SplitMix64,
    pub(super) mined: Vec<Vec<u64>>,
    pub(super) history: Vec<EpochRecord>,
    pub(super) best_epoch: Option<usize>,
}

impl RunState {
    /// Appends the epoch just done; returns whether its validation score is the best so far (it is then
    /// recorded as the best epoch).
    pub(super) fn push_epoch(&mut self, record: EpochRecord) -> bool {
        let best_score = self
            .best_epoch
            .and_then(|best| self.history.get(best - 1))
            .and_then(EpochRecord::score);
        let improved = record
            .score()
            .is_some_and(|score| best_score.is_none_or(|best| score > best));
        if improved {
            self.best_epoch = Some(record.epoch);
        }
        self.epochs_done = record.epoch;
        self.history.push(record);
        improved
    }

    /// A run that has not started, its random stream seeded.
    pub(super) fn new(seed: u64) -> RunState {
        RunState {
            epochs_done: 0,
            optimizer_steps: 0,
            rng: SplitMix64::new(seed),
            mined: Vec::new(),
            history: Vec::new(),
            best_epoch: None,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// One record per epoch, including epochs done before a resume.
    pub history: Vec<EpochRecord>,
    /// The epoch of the best validation score, if validated.
    pub best_epoch: Option<usize>,
    /// The trained model after the last epoch.
    pub model: Arc<Combiner>,
}

/// Trains a learned fusion on `train` (image vectors from `index`), validating on `validation` after each
/// epoch; writes `out/last/` every epoch and `out/best/` when the score improves. With `resume`, continues
/// from a `last/` checkpoint (weights, optimizer moments, random stream, mined negatives), so the result
/// equals an uninterrupted run with the same options.
pub fn train(
    train: &TrainingSet,
    validation: Option<&Validation>,
    index: &Index,
    options: &TrainOptions,
    out: &Path,
    resume: Option<&Path>,
) -> Result<TrainSummary, TrainError> {
    check_options(options, index.dim())?;
    let device = Device::Cpu;
    let mut rng = SplitMix64::new(options.seed);
    let weights = initial_weights(&options.model, rng.next_u64(), &device)?;
    let vars = to_vars(&options.model, weights)?;
    let mut optimizer = AdamW::new(
        &vars,
        ParamsAdamW {
            lr: options.learning_rate,
            weight_decay: options.weight_decay,
            ..ParamsAdamW::default()
        },
    )
    .map_err(tensor_error("creating the optimizer"))?;
    let mut state = RunState {
        epochs_done: 0,
        optimizer_steps: 0,
        rng,
        mined: Vec::new(),
        history: Vec::new(),
        best_epoch: None,
    };
    if let Some(dir) = resume {
        state = load_checkpoint(dir, options, &vars, &mut optimizer)?;
    }
    let steps_per_epoch = train.examples.len().div_ceil(options.batch_size) as u64;
    let total_steps = steps_per_epoch * options.epochs as u64;
    let image_rows = ImageRows::new(index);
    let progress = progress_bar(options.progress, total_steps, state.optimizer_steps);

    let last_epoch = options
        .stop_after_epoch
        .unwrap_or(options.epochs)
        .min(options.epochs);
    for epoch in state.epochs_done..last_epoch {
        if options.mining.due(epoch, !state.mined.is_empty()) {
            let model = snapshot(&options.model, &vars)?;
            state.mined = mine(
                train,
                index,
                &image_rows,
                &model,
                &options.mining,
                Mining::draw_seed(options.seed, epoch),
            )?;
        }
        let mut order: Vec<usize> = (0..train.examples.len()).collect();
        state.rng.shuffle(&mut order);
        let started = Instant::now();
        let mut loss_sum = 0.0;
        for batch in order.chunks(options.batch_size) {
            let lr = learning_rate(
                state.optimizer_steps,
                total_steps,
                options.warmup_steps,
                options.learning_rate,
            );
            optimizer.set_learning_rate(lr);
            let loss = step(
                train,
                &image_rows,
                options,
                &vars,
                &mut optimizer,
                &mut state,
                batch,
            )?;
            loss_sum += loss;
            state.optimizer_steps += 1;
            progress.set_message(format!("epoch {} loss {loss:.4}", epoch + 1));
            progress.inc(1);
        }
        let seconds = started.elapsed().as_secs_f64();
        let model = Arc::new(snapshot(&options.model, &vars)?);
        let report = match validation {
            Some(validation) => Some(evaluate_fusion(
                validation,
                index,
                Fusion::Combiner(Arc::clone(&model)),
            )?),
            None => None,
        };
        let record = EpochRecord::measured(
            epoch + 1,
            loss_sum / steps_per_epoch as f64,
            train.examples.len() as f64 / seconds.max(1e-9),
            report.as_ref(),
        )
        .with_mined(&state.mined);
        crate::progress::println_above(&progress, options.progress, record.summary_line());
        if state.push_epoch(record.clone()) {
            model.save(out.join(BEST_DIR))?;
            write_json(&out.join(BEST_DIR).join("metrics.json"), &record)?;
        }
        save_checkpoint(
            &out.join(LAST_DIR),
            &options.model,
            &vars,
            &optimizer,
            &state,
        )?;
    }
    progress.finish_and_clear();
    Ok(TrainSummary {
        history: state.history,
        best_epoch: state.best_epoch,
        model: Arc::new(snapshot(&options.model, &vars)?),
    })
}

fn check_options(options: &TrainOptions, dim: usize) -> Result<(), TrainError> {
    if options.model.feature_dim != dim {
        return Err(TrainError::ModelDimension {
            model: options.model.feature_dim,
            index: dim,
        });
    }
    check_common_options(
        options.epochs,
        options.batch_size,
        options.learning_rate,
        options.max_grad_norm,
    )?;
    options.mining.check()?;
    if !(options.loss.logit_scale > 0.0 && options.loss.logit_scale.is_finite()) {
        return Err(TrainError::InvalidOption {
            name: "logit scale",
            value: options.loss.logit_scale.to_string(),
        });
    }
    Ok(())
}

/// Index rows by id, copied once (training reads each many times).
struct ImageRows<'a> {
    index: &'a Index,
}

impl<'a> ImageRows<'a> {
    fn new(index: &'a Index) -> ImageRows<'a> {
        ImageRows { index }
    }

    fn gather(&self, ids: impl Iterator<Item = u64>, out: &mut Vec<f32>) -> Result<(), TrainError> {
        for id in ids {
            let row = self.index.vector(id).ok_or(TrainError::MissingRow { id })?;
            out.extend_from_slice(&row);
        }
        Ok(())
    }
}

fn to_vars(
    config: &CombinerConfig,
    mut weights: HashMap<String, Tensor>,
) -> Result<Vec<(String, Var)>, TrainError> {
    config
        .parameters()
        .into_iter()
        .map(|(name, _)| {
            let tensor = weights.remove(&name).ok_or(TrainError::Model(
                crate::fusion::CombinerError::WeightShape {
                    name: name.clone(),
                    expected: Vec::new(),
                    found: Vec::new(),
                },
            ))?;
            let var = Var::from_tensor(&tensor).map_err(tensor_error("making a parameter"))?;
            Ok((name, var))
        })
        .collect()
}

fn current_weights(vars: &[(String, Var)]) -> HashMap<String, Tensor> {
    vars.iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect()
}

/// An inference copy of the current weights (later updates do not reach it).
fn snapshot(config: &CombinerConfig, vars: &[(String, Var)]) -> Result<Combiner, TrainError> {
    let mut copied = HashMap::new();
    for (name, var) in vars {
        let tensor = var
            .as_tensor()
            .copy()
            .map_err(tensor_error("copying weights"))?;
        copied.insert(name.clone(), tensor);
    }
    Ok(Combiner::from_weights(
        config.clone(),
        copied,
        &Device::Cpu,
    )?)
}

/// One optimizer step on `batch`; returns its loss.
fn step(
    train: &TrainingSet,
    images: &ImageRows<'_>,
    options: &TrainOptions,
    vars: &[(String, Var)],
    optimizer: &mut AdamW,
    state: &mut RunState,
    batch: &[usize],
) -> Result<f64, TrainError> {
    let dim = options.model.feature_dim;
    let rows = batch.len();
    let examples: Vec<_> = batch.iter().map(|&i| &train.examples[i]).collect();
    let mut reference = Vec::with_capacity(rows * dim);
    images.gather(examples.iter().map(|e| e.candidate), &mut reference)?;
    let mut target = Vec::with_capacity(rows * dim);
    images.gather(examples.iter().map(|e| e.target), &mut target)?;
    let mut text = Vec::with_capacity(rows * dim);
    for example in &examples {
        let variant = if options.caption_augmentation {
            state.rng.below(4)
        } else {
            0
        };
        text.extend_from_slice(train.texts.row(example.texts[variant]));
    }
    let per_query = options.mining.negatives;
    let mut mined = Vec::new();
    let mut valid = Vec::new();
    if per_query > 0 {
        for &i in batch {
            let ids = &state.mined[i];
            images.gather(ids.iter().copied(), &mut mined)?;
            // Empty slots get a zero vector, masked out of the softmax.
            mined.resize(mined.len() + (per_query - ids.len()) * dim, 0.0);
            valid.extend((0..per_query).map(|slot| slot < ids.len()));
        }
    }
    let target_ids: Vec<u64> = examples.iter().map(|e| e.target).collect();
    let dropout = options.model.dropout;
    let rng = &mut state.rng;
    let mut masks = |shape: &[usize]| -> candle_core::Result<Tensor> {
        let count: usize = shape.iter().product();
        let keep = 1.0 / (1.0 - dropout);
        let values: Vec<f32> = (0..count)
            .map(|_| if rng.unit() < dropout { 0.0 } else { keep })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu)
    };
    let run = || -> candle_core::Result<(f64, candle_core::backprop::GradStore)> {
        let tensor =
            |values: Vec<f32>, shape: &[usize]| Tensor::from_vec(values, shape, &Device::Cpu);
        let reference = tensor(reference, &[rows, dim])?;
        let text = tensor(text, &[rows, dim])?;
        let target = tensor(target, &[rows, dim])?;
        let weights = current_weights(vars);
        let dropout_masks: Option<&mut dyn FnMut(&[usize]) -> candle_core::Result<Tensor>> =
            if dropout > 0.0 {
                Some(&mut masks)
            } else {
                None
            };
        let queries = forward(&options.model, &weights, &reference, &text, dropout_masks)?;
        let mined_tensor;
        let mined_batch = if per_query > 0 {
            mined_tensor = tensor(mined, &[rows, per_query, dim])?;
            Some(MinedBatch {
                vectors: &mined_tensor,
                valid: &valid,
            })
        } else {
            None
        };
        let loss = contrastive_loss(
            &queries,
            &target,
            &target_ids,
            mined_batch.as_ref(),
            &options.loss,
        )?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        Ok((value, loss.backward()?))
    };
    let (loss, grads) = run().map_err(tensor_error("computing the loss"))?;
    if !loss.is_finite() {
        return Err(TrainError::NonFiniteLoss {
            step: state.optimizer_steps,
        });
    }
    optimizer
        .step_clipped(&grads, options.max_grad_norm)
        .map_err(tensor_error("updating parameters"))?;
    Ok(loss)
}

/// Mined negatives for every training example, from queries fused with `model` and the evaluation text.
fn mine(
    train: &TrainingSet,
    index: &Index,
    images: &ImageRows<'_>,
    model: &Combiner,
    mining: &Mining,
    draw_seed: u64,
) -> Result<Vec<Vec<u64>>, TrainError> {
    let mut references = Vec::new();
    images.gather(train.examples.iter().map(|e| e.candidate), &mut references)?;
    let texts: Vec<f32> = train
        .examples
        .iter()
        .flat_map(|e| train.texts.row(e.texts[0]).iter().copied())
        .collect();
    let fused = model.fuse_batch(&references, &texts)?;
    let dim = model.config().feature_dim;
    let queries: Vec<MiningQuery<'_>> = train
        .examples
        .iter()
        .zip(fused.chunks_exact(dim))
        .map(|(example, query)| MiningQuery {
            query,
            target: example.target,
            gallery: example.gallery,
        })
        .collect();
    mine_hard_negatives(index, &queries, &train.galleries, mining, draw_seed).map_err(|source| {
        TrainError::Index {
            context: "mining hard negatives",
            source: Box::new(source),
        }
    })
}

/// The FashionIQ validation protocol with `fusion` (learned or closed-form), the index holding the images.
pub fn evaluate_fusion(
    validation: &Validation,
    index: &Index,
    fusion: Fusion,
) -> Result<EvalReport, TrainError> {
    evaluate_with_texts(&validation.dataset, &validation.texts, index, fusion)
}

/// [`evaluate_fusion`] on a split and its evaluation texts' vectors, held apart.
pub(super) fn evaluate_with_texts(
    dataset: &crate::fashioniq::Dataset,
    texts: &super::TextFeatures,
    index: &Index,
    fusion: Fusion,
) -> Result<EvalReport, TrainError> {
    let index_error = |context: &'static str| {
        move |source: crate::Error| TrainError::Index {
            context,
            source: Box::new(source),
        }
    };
    let galleries =
        CategoryGalleries::of(index, dataset).map_err(index_error("finding the galleries"))?;
    let mut backend = IndexBackend::new(index, TextSource::Cached(texts), &galleries);
    backend.set_mode(Some(SearchMode::Exact));
    let options = EvalOptions {
        fusion,
        ..EvalOptions::default()
    };
    Ok(evaluate(dataset, &backend, &options)?)
}

/// A scratch index at `dir` (replaced if present) holding `rows` (key, unit vector, metadata), for
/// validating a model whose image vectors are not the index's.
pub(super) fn scratch_index<'a>(
    dir: &Path,
    dim: usize,
    rows: impl Iterator<Item = (&'a str, &'a [f32], &'a crate::index::ItemMeta)>,
) -> Result<Index, TrainError> {
    let index_error = |context: &'static str| {
        move |source: crate::Error| TrainError::Index {
            context,
            source: Box::new(source),
        }
    };
    let _ = std::fs::remove_dir_all(dir);
    let mut writer =
        crate::index::IndexWriter::create(dir, dim, crate::index::ModelInfo::default())
            .map_err(index_error("creating the validation index"))?;
    for (key, vector, meta) in rows {
        writer
            .add(key, vector, meta)
            .map_err(index_error("writing the validation index"))?;
    }
    writer
        .commit()
        .map_err(index_error("committing the validation index"))?;
    Index::open(dir).map_err(index_error("opening the validation index"))
}

pub(super) fn recall_at(report: &EvalReport, k: usize) -> Option<f64> {
    report.average.iter().find(|m| m.k == k).map(|m| m.recall)
}

pub(super) fn progress_bar(show: bool, total: u64, done: u64) -> indicatif::ProgressBar {
    let bar = crate::progress::bar_if(show, total, "training");
    bar.set_position(done);
    bar
}

pub(super) fn checkpoint_error(path: &Path) -> impl Fn(String) -> TrainError + '_ {
    move |detail| TrainError::Checkpoint {
        path: path.to_owned(),
        detail,
    }
}

pub(super) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| checkpoint_error(path)(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| checkpoint_error(path)(e.to_string()))
}

fn save_checkpoint(
    dir: &Path,
    config: &CombinerConfig,
    vars: &[(String, Var)],
    optimizer: &AdamW,
    state: &RunState,
) -> Result<(), TrainError> {
    save_model(dir, config, &current_weights(vars))?;
    let (moments, _) = optimizer
        .state()
        .map_err(tensor_error("reading optimizer state"))?;
    let path = dir.join(OPTIMIZER_FILE);
    candle_core::safetensors::save(&moments, &path)
        .map_err(|e| checkpoint_error(&path)(e.to_string()))?;
    write_json(&dir.join(STATE_FILE), state)
}

fn load_checkpoint(
    dir: &Path,
    options: &TrainOptions,
    vars: &[(String, Var)],
    optimizer: &mut AdamW,
) -> Result<RunState, TrainError> {
    let model = Combiner::load(dir, &Device::Cpu)?;
    if model.config() != &options.model {
        return Err(TrainError::ResumeMismatch {
            path: dir.to_owned(),
            saved: model.config().clone(),
            requested: options.model.clone(),
        });
    }
    for (name, var) in vars {
        var.set(&model.weights()[name])
            .map_err(tensor_error("restoring weights"))?;
    }
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&state_path)
        .map_err(|e| checkpoint_error(&state_path)(e.to_string()))?;
    let state: RunState =
        serde_json::from_str(&text).map_err(|e| checkpoint_error(&state_path)(e.to_string()))?;
    let path = dir.join(OPTIMIZER_FILE);
    let moments = candle_core::safetensors::load(&path, &Device::Cpu)
        .map_err(|e| checkpoint_error(&path)(e.to_string()))?;
    optimizer
        .restore(&moments, state.optimizer_steps)
        .map_err(checkpoint_error(&path))?;
    Ok(state)
}

/// Where `train` writes the checkpoint it can resume from.
pub fn last_checkpoint(out: &Path) -> PathBuf {
    out.join(LAST_DIR)
}

/// The checks every training run makes on its basic options.
pub(super) fn check_common_options(
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    max_grad_norm: f64,
) -> Result<(), TrainError> {
    let invalid =
        |name: &'static str, value: String| Err(TrainError::InvalidOption { name, value });
    if epochs == 0 {
        return invalid("epochs", "0".into());
    }
    if batch_size < 2 {
        return invalid("batch size", batch_size.to_string());
    }
    if !(learning_rate > 0.0 && learning_rate.is_finite()) {
        return invalid("learning rate", learning_rate.to_string());
    }
    if max_grad_norm.is_nan() || max_grad_norm <= 0.0 {
        return invalid("max grad norm", max_grad_norm.to_string());
    }
    Ok(())
}
