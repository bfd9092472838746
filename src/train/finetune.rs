//! Fine-tuning the encoder itself, as the study fiq comes from does: the text tower, the image tower or
//! both, under the contrastive loss of [`super::loss`] on sum-fused queries (in-batch negatives with
//! hard-negative weighting, plus negatives mined from the index with fiq's own exact search and re-mined
//! on a schedule with the model of that moment).
//!
//! A text-tower run leaves the index's image vectors valid: the checkpoint it writes keeps the image
//! tower's bytes, so its fingerprint carries the same image-tower digest and the index accepts it
//! ([`crate::index::ModelInfo::accepts`]). A run that tunes the image tower makes a model whose image
//! vectors differ from the index's: `build` must re-encode the gallery, and the old index refuses it.
//!
//! Image-tower runs read each image from the path its index row records (`ItemMeta::source`), so the
//! index must have been built from image files. Mining searches the index's stored vectors, which for an
//! image-tower run are the base model's (the queries are the current model's): the negatives are the
//! base space's nearest, refreshed as the text side moves.

use super::data::{ResolvedSplit, ResolvedTriplet, TextFeatures};
use super::loss::{contrastive_loss, LossOptions, MinedBatch};
use super::miner::{mine_hard_negatives, Mining, MiningQuery};
use super::optim::{learning_rate, AdamW, ParamsAdamW};
use super::trainer::{
    check_common_options, checkpoint_error, evaluate_with_texts, progress_bar, scratch_index,
    write_json, EpochRecord, RunState, BEST_DIR, LAST_DIR,
};
use super::TrainError;
use crate::encoder::trainable::{unit_rows, Tower, TrainableClip, ENCODE_CHUNK};
use crate::encoder::{ClipEncoder, Encoder, EncoderOptions};
use crate::fashioniq::{eval_query_text, Dataset};
use crate::fusion::Fusion;
use crate::index::Index;
use candle_core::{Device, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "state.json";
/// The record of the run, next to the weights of `best/` and `last/`.
pub const RUN_RECORD_FILE: &str = "fiq-train.json";
/// Preprocessed images kept in memory across steps (an image-tower run reads each many times).
const PIXEL_CACHE_BYTES: usize = 2 << 30;

/// Which towers a fine-tuning run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TunedTowers {
    /// The text tower and its projection; the index's image vectors stay valid.
    Text,
    /// The image tower and its projection; the gallery must be re-encoded.
    Image,
    /// Both towers.
    Both,
}

impl TunedTowers {
    fn text(self) -> bool {
        matches!(self, TunedTowers::Text | TunedTowers::Both)
    }

    fn image(self) -> bool {
        matches!(self, TunedTowers::Image | TunedTowers::Both)
    }

    /// Whether an index built by the base model must be rebuilt for the fine-tuned one.
    pub fn needs_rebuild(self) -> bool {
        self.image()
    }
}

impl std::fmt::Display for TunedTowers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TunedTowers::Text => "the text tower",
            TunedTowers::Image => "the image tower",
            TunedTowers::Both => "both towers",
        })
    }
}

/// How to fine-tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneOptions {
    /// The towers that train.
    pub towers: TunedTowers,
    /// Train only the last this many blocks of each tuned tower (with its final norm and projection);
    /// `None` trains every block and the embeddings.
    pub trainable_blocks: Option<usize>,
    /// Passes over the training triplets.
    pub epochs: usize,
    /// Triplets per step.
    pub batch_size: usize,
    /// Peak learning rate (encoders want far less than heads: 1e-5 to 1e-4).
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Linear warmup steps before the cosine decay.
    pub warmup_steps: u64,
    /// Gradients are scaled down when their global L2 norm exceeds this.
    pub max_grad_norm: f64,
    /// Multiplies cosine similarities (CLIP4Cir: 100).
    pub logit_scale: f32,
    /// Hard-negative concentration β of the in-batch and mined negatives; 0 weights them equally.
    pub hard_negative_beta: f32,
    /// Hard negatives mined from the index (off by default).
    #[serde(flatten)]
    pub mining: Mining,
    /// Draw one of CLIP4Cir's four caption variants per triplet and step; off uses the evaluation text.
    pub caption_augmentation: bool,
    /// Seeds shuffling and caption draws.
    pub seed: u64,
    /// Show a progress bar on stderr.
    #[serde(skip)]
    pub progress: bool,
    /// Stop (with a checkpoint) after this epoch, to resume later; the schedule still spans `epochs`.
    #[serde(skip)]
    pub stop_after_epoch: Option<usize>,
}

impl Default for FineTuneOptions {
    fn default() -> Self {
        FineTuneOptions {
            towers: TunedTowers::Text,
            trainable_blocks: None,
            epochs: 5,
            batch_size: 64,
            learning_rate: 5e-5,
            weight_decay: 0.01,
            warmup_steps: 20,
            max_grad_norm: 1.0,
            logit_scale: 100.0,
            hard_negative_beta: 0.0,
            mining: Mining::default(),
            caption_augmentation: true,
            seed: 0,
            progress: false,
            stop_after_epoch: None,
        }
    }
}

impl FineTuneOptions {
    fn loss(&self) -> LossOptions {
        LossOptions {
            logit_scale: self.logit_scale,
            hard_negative_beta: self.hard_negative_beta,
        }
    }
}

/// What fine-tuning runs on.
#[derive(Debug, Clone, Copy)]
pub struct FineTuneData<'a> {
    /// The training split (triplets with targets).
    pub train: &'a Dataset,
    /// The validation split, evaluated after every epoch (the best epoch is kept in `best/`).
    pub validation: Option<&'a Dataset>,
    /// The index the base model built over the split's images (keys are image names): image vectors for
    /// a text-tower run, image paths for an image-tower run, and the gallery negatives are mined from.
    pub index: &'a Index,
}

/// The record of a run, written as `fiq-train.json` beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The checkpoint the run started from.
    pub base_model: PathBuf,
    /// Its identity (the index's model check compares against it).
    pub base_fingerprint: String,
    /// The FashionIQ root of the training split.
    pub data: PathBuf,
    /// The index the image vectors and negatives came from.
    pub index: PathBuf,
    /// Training triplets used, and skipped (an image not in the index).
    pub train_triplets: usize,
    /// See `train_triplets`.
    pub skipped_triplets: usize,
    /// The options.
    pub options: FineTuneOptions,
    /// Whether `build` must re-encode the gallery for this model.
    pub needs_rebuild: bool,
    /// The epoch of the best validation score.
    pub best_epoch: Option<usize>,
    /// One record per epoch (loss, triplets/s, validation R@10 and R@50).
    pub history: Vec<EpochRecord>,
}

/// What a fine-tuning run produced.
#[derive(Debug, Clone)]
pub struct FineTuneSummary {
    /// The run's record (also in `OUT/best/fiq-train.json` and `OUT/last/fiq-train.json`).
    pub record: RunRecord,
    /// The model directory of the best epoch (`OUT/best`), or of the last when nothing was validated.
    pub best_model: PathBuf,
    /// The model directory of the last epoch (`OUT/last`), which `resume` continues from.
    pub last_model: PathBuf,
}

/// Fine-tunes the Hugging Face CLIP checkpoint in `model_dir` on `data`, writing `out/last/` (a model
/// directory `--model` loads, plus the optimizer state) every epoch and `out/best/` when the validation
/// score improves. With `resume` (an `out/last/` folder), continues that run so that the result equals
/// an uninterrupted one with the same options.
pub fn fine_tune_encoder(
    model_dir: &Path,
    encoder_options: &EncoderOptions,
    data: FineTuneData<'_>,
    options: &FineTuneOptions,
    out: &Path,
    resume: Option<&Path>,
) -> Result<FineTuneSummary, TrainError> {
    check_options(options)?;
    let index = data.index;
    let base = ClipEncoder::load(model_dir, encoder_options)?;
    index
        .check_model(base.info())
        .map_err(|source| TrainError::Index {
            context: "the index must be built by the model being fine-tuned",
            source: Box::new(source.into()),
        })?;
    let model = TrainableClip::load(resume.unwrap_or(model_dir), encoder_options)?;
    if model.dim() != index.dim() {
        return Err(TrainError::ModelDimension {
            model: model.dim(),
            index: index.dim(),
        });
    }
    let split = ResolvedSplit::resolve(data.train, index)?;
    let tokens = tokenize_triplets(&model, &split.triplets)?;
    let frozen = |tower| match options.trainable_blocks {
        Some(n) => model.blocks(tower).saturating_sub(n),
        None => 0,
    };
    let text_frozen = if options.towers.text() {
        frozen(Tower::Text)
    } else {
        model.blocks(Tower::Text)
    };
    let image_frozen = if options.towers.image() {
        frozen(Tower::Image)
    } else {
        model.blocks(Tower::Image)
    };
    let mut trainable = Vec::new();
    if options.towers.text() {
        trainable.extend(model.trainable(Tower::Text, text_frozen));
    }
    if options.towers.image() {
        trainable.extend(model.trainable(Tower::Image, image_frozen));
    }
    let mut optimizer = AdamW::new(
        &trainable,
        ParamsAdamW {
            lr: options.learning_rate,
            weight_decay: options.weight_decay,
            ..ParamsAdamW::default()
        },
    )
    .map_err(compute("creating the optimizer"))?;
    let mut state = RunState::new(options.seed);
    if let Some(dir) = resume {
        check_resumed_options(dir, RUN_RECORD_FILE, options)?;
        state = load_run_state(dir, &mut optimizer, &[])?;
    }
    let mut record = RunRecord {
        base_model: model_dir.to_owned(),
        base_fingerprint: base.info().fingerprint.clone(),
        data: data.train.root().to_owned(),
        index: index.path().to_owned(),
        train_triplets: split.triplets.len(),
        skipped_triplets: split.skipped,
        options: options.clone(),
        needs_rebuild: options.towers.needs_rebuild(),
        best_epoch: state.best_epoch,
        history: state.history.clone(),
    };
    drop(base);
    let pixels = PixelCache::default();
    let run = Run {
        model: &model,
        index,
        split: &split,
        tokens: &tokens,
        options,
        text_frozen,
        image_frozen,
        pixels: &pixels,
    };
    let steps_per_epoch = split.triplets.len().div_ceil(options.batch_size) as u64;
    let total_steps = steps_per_epoch * options.epochs as u64;
    let progress = progress_bar(options.progress, total_steps, state.optimizer_steps);
    let last_epoch = options
        .stop_after_epoch
        .unwrap_or(options.epochs)
        .min(options.epochs);
    for epoch in state.epochs_done..last_epoch {
        if options.mining.due(epoch, !state.mined.is_empty()) {
            progress.set_message("mining hard negatives");
            state.mined = run.mine(Mining::draw_seed(options.seed, epoch))?;
        }
        let mut order: Vec<usize> = (0..split.triplets.len()).collect();
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
            let loss = run.step(batch, &mut optimizer, &mut state)?;
            loss_sum += loss;
            state.optimizer_steps += 1;
            progress.set_message(format!("epoch {} loss {loss:.4}", epoch + 1));
            progress.inc(1);
        }
        let seconds = started.elapsed().as_secs_f64();
        let report = match data.validation {
            Some(validation) => {
                progress.set_message("validating");
                Some(run.validate(validation, &out.join("validation-index"))?)
            }
            None => None,
        };
        let epoch_record = EpochRecord::measured(
            epoch + 1,
            loss_sum / steps_per_epoch as f64,
            split.triplets.len() as f64 / seconds.max(1e-9),
            report.as_ref(),
        )
        .with_mined(&state.mined);
        crate::progress::println_above(&progress, options.progress, epoch_record.summary_line());
        let improved = state.push_epoch(epoch_record);
        record.best_epoch = state.best_epoch;
        record.history = state.history.clone();
        if improved {
            let best = out.join(BEST_DIR);
            model.save(&best)?;
            write_json(&best.join(RUN_RECORD_FILE), &record)?;
        }
        save_checkpoint(
            &out.join(LAST_DIR),
            &model,
            &optimizer,
            &state,
            (RUN_RECORD_FILE, &record),
            &[],
        )?;
    }
    progress.finish_and_clear();
    let (best_model, last_model) = finish_run(out, state.best_epoch);
    Ok(FineTuneSummary {
        record,
        best_model,
        last_model,
    })
}

fn check_options(options: &FineTuneOptions) -> Result<(), TrainError> {
    check_common_options(
        options.epochs,
        options.batch_size,
        options.learning_rate,
        options.max_grad_norm,
    )?;
    let invalid =
        |name: &'static str, value: String| Err(TrainError::InvalidOption { name, value });
    options.mining.check()?;
    if options.trainable_blocks == Some(0) {
        return invalid("trainable blocks", "0 (nothing would train)".into());
    }
    if !(options.logit_scale > 0.0 && options.logit_scale.is_finite()) {
        return invalid("logit scale", options.logit_scale.to_string());
    }
    Ok(())
}

/// The token ids of every triplet's four caption variants, tokenized once.
fn tokenize_triplets(
    model: &TrainableClip,
    triplets: &[ResolvedTriplet],
) -> Result<Vec<[Vec<u32>; 4]>, TrainError> {
    let texts: Vec<&str> = triplets
        .iter()
        .flat_map(|t| t.texts.iter().map(String::as_str))
        .collect();
    let mut ids = model.tokenize(&texts)?.into_iter();
    Ok(triplets
        .iter()
        .map(|_| std::array::from_fn(|_| ids.next().expect("four token lists per triplet")))
        .collect())
}

/// `validation`'s evaluation texts encoded by `model`'s current text tower.
pub(super) fn validation_texts(
    model: &TrainableClip,
    validation: &Dataset,
) -> Result<TextFeatures, TrainError> {
    let texts: Vec<String> = validation
        .categories()
        .flat_map(|category| validation.triplets(category))
        .map(|triplet| eval_query_text(&triplet.captions))
        .collect();
    let encoder = |batch: &[String]| {
        model
            .encode_texts(batch)
            .map_err(|e| -> crate::eval::BackendError { Box::new(e) })
    };
    TextFeatures::encode(texts, model.dim(), &encoder)
}

/// Preprocessed images by index id, kept while they fit [`PIXEL_CACHE_BYTES`].
#[derive(Default)]
struct PixelCache {
    images: Mutex<(HashMap<u64, std::sync::Arc<Vec<f32>>>, usize)>,
}

/// One run's fixed inputs.
struct Run<'a> {
    model: &'a TrainableClip,
    index: &'a Index,
    split: &'a ResolvedSplit,
    tokens: &'a [[Vec<u32>; 4]],
    options: &'a FineTuneOptions,
    text_frozen: usize,
    image_frozen: usize,
    pixels: &'a PixelCache,
}

pub(super) fn compute(context: &'static str) -> impl Fn(candle_core::Error) -> TrainError {
    move |e| TrainError::Compute {
        context,
        detail: e.to_string(),
    }
}

impl Run<'_> {
    /// Unit image vectors of index rows `ids` (batch, dim): the current image tower's when it trains
    /// (in the gradient graph), the index's stored ones otherwise.
    fn images(&self, ids: &[u64]) -> Result<Tensor, TrainError> {
        if self.options.towers.image() {
            let pixels = self.load_pixels(ids)?;
            return self
                .model
                .image_embeddings(pixels, ids.len(), self.image_frozen)
                .map_err(compute("encoding images"));
        }
        let dim = self.index.dim();
        let mut rows = Vec::with_capacity(ids.len() * dim);
        for &id in ids {
            let row = self.index.vector(id).ok_or(TrainError::MissingRow { id })?;
            rows.extend_from_slice(&row);
        }
        Tensor::from_vec(rows, (ids.len(), dim), &Device::Cpu).map_err(compute("image rows"))
    }

    /// Preprocessed pixels of index rows `ids`, read from the image paths the rows record.
    fn load_pixels(&self, ids: &[u64]) -> Result<Vec<f32>, TrainError> {
        let preprocessor = self.model.preprocessor();
        let per_image = preprocessor.output_len();
        let loaded: Vec<std::sync::Arc<Vec<f32>>> = ids
            .par_iter()
            .map(|&id| {
                if let Some(cached) = self.pixels.images.lock().expect("pixel cache").0.get(&id) {
                    return Ok(cached.clone());
                }
                let meta = self.index.meta(id).map_err(|source| TrainError::Index {
                    context: "reading an image row's metadata",
                    source: Box::new(source),
                })?;
                if meta.source.is_empty() {
                    let key = self.index.key(id).unwrap_or("?").to_owned();
                    return Err(TrainError::NoImagePath { key });
                }
                let pixels = std::sync::Arc::new(preprocessor.load(Path::new(&meta.source))?);
                let mut cache = self.pixels.images.lock().expect("pixel cache");
                if cache.1 + per_image * 4 <= PIXEL_CACHE_BYTES {
                    cache.1 += per_image * 4;
                    cache.0.insert(id, pixels.clone());
                }
                Ok(pixels)
            })
            .collect::<Result<_, TrainError>>()?;
        let mut out = Vec::with_capacity(ids.len() * per_image);
        for pixels in loaded {
            out.extend_from_slice(&pixels);
        }
        Ok(out)
    }

    /// Unit text vectors of `sequences` (batch, dim), in the gradient graph when the text tower trains.
    fn texts(&self, sequences: &[&[u32]]) -> Result<Tensor, TrainError> {
        let texts = self
            .model
            .text_embeddings(sequences, self.text_frozen)
            .map_err(compute("encoding texts"))?;
        Ok(match self.options.towers.text() {
            true => texts,
            false => texts.detach(),
        })
    }

    /// One optimizer step on `batch` (triplet positions); returns its loss.
    fn step(
        &self,
        batch: &[usize],
        optimizer: &mut AdamW,
        state: &mut RunState,
    ) -> Result<f64, TrainError> {
        let triplets: Vec<&ResolvedTriplet> =
            batch.iter().map(|&i| &self.split.triplets[i]).collect();
        let sequences: Vec<&[u32]> = batch
            .iter()
            .map(|&i| {
                let variant = if self.options.caption_augmentation {
                    state.rng.below(4)
                } else {
                    0
                };
                self.tokens[i][variant].as_slice()
            })
            .collect();
        let candidates: Vec<u64> = triplets.iter().map(|t| t.candidate).collect();
        let target_ids: Vec<u64> = triplets.iter().map(|t| t.target).collect();
        let per_query = self.options.mining.negatives;
        let mut mined_ids = Vec::new();
        let mut valid = Vec::new();
        if per_query > 0 {
            for (&i, triplet) in batch.iter().zip(&triplets) {
                let ids = &state.mined[i];
                mined_ids.extend_from_slice(ids);
                // Empty slots repeat the target; their logits are masked out of the softmax.
                mined_ids.extend(std::iter::repeat_n(triplet.target, per_query - ids.len()));
                valid.extend((0..per_query).map(|slot| slot < ids.len()));
            }
        }
        let text = self.texts(&sequences)?;
        let reference = self.images(&candidates)?;
        let target = self.images(&target_ids)?;
        let mined = match per_query {
            0 => None,
            _ => Some(
                self.images(&mined_ids)?
                    .reshape((batch.len(), per_query, self.index.dim())),
            ),
        }
        .transpose()
        .map_err(compute("mined negatives"))?;
        let loss = (|| {
            let queries = unit_rows(&(reference + text)?)?;
            let mined_batch = mined.as_ref().map(|vectors| MinedBatch {
                vectors,
                valid: &valid,
            });
            contrastive_loss(
                &queries,
                &target,
                &target_ids,
                mined_batch.as_ref(),
                &self.options.loss(),
            )
        })()
        .map_err(compute("computing the loss"))?;
        let value = f64::from(
            loss.to_scalar::<f32>()
                .map_err(compute("reading the loss"))?,
        );
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step: state.optimizer_steps,
            });
        }
        let grads = loss.backward().map_err(compute("backward pass"))?;
        optimizer
            .step_clipped(&grads, self.options.max_grad_norm)
            .map_err(compute("updating parameters"))?;
        Ok(value)
    }

    /// Unit vectors of index rows `ids` from the current image tower, outside any gradient graph.
    fn encode_images(&self, ids: &[u64]) -> Result<Vec<Vec<f32>>, TrainError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ENCODE_CHUNK) {
            let pixels = self.load_pixels(chunk)?;
            out.extend(self.model.encode_images(pixels, chunk.len())?);
        }
        Ok(out)
    }

    /// Each triplet's nearest gallery items (not its target) to its query made by the current model with
    /// the evaluation text, by exact search over the index's vectors.
    fn mine(&self, draw_seed: u64) -> Result<Vec<Vec<u64>>, TrainError> {
        let triplets = &self.split.triplets;
        let texts: Vec<String> = triplets.iter().map(|t| t.texts[0].clone()).collect();
        let text_vectors = self.model.encode_texts(&texts)?;
        let candidates: Vec<u64> = triplets.iter().map(|t| t.candidate).collect();
        let reference_vectors: Vec<Vec<f32>> = if self.options.towers.image() {
            self.encode_images(&candidates)?
        } else {
            candidates
                .iter()
                .map(|&id| {
                    self.index
                        .vector(id)
                        .map(|row| row.into_owned())
                        .ok_or(TrainError::MissingRow { id })
                })
                .collect::<Result<_, _>>()?
        };
        let fused: Vec<Vec<f32>> = reference_vectors
            .iter()
            .zip(&text_vectors)
            .map(|(image, text)| {
                crate::fusion::fuse(image, text, &Fusion::Sum).map_err(|e| TrainError::Compute {
                    context: "fusing a mining query",
                    detail: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        let queries: Vec<MiningQuery<'_>> = triplets
            .iter()
            .zip(&fused)
            .map(|(triplet, query)| MiningQuery {
                query,
                target: triplet.target,
                gallery: triplet.gallery,
            })
            .collect();
        mine_hard_negatives(
            self.index,
            &queries,
            &self.split.galleries,
            &self.options.mining,
            draw_seed,
        )
        .map_err(|source| TrainError::Index {
            context: "mining hard negatives",
            source: Box::new(source),
        })
    }

    /// The FashionIQ protocol on `validation` with sum fusion and the current model: texts encoded by
    /// the current text tower; when the image tower trains, the split's images re-encoded into a scratch
    /// index at `scratch` first.
    fn validate(
        &self,
        validation: &Dataset,
        scratch: &Path,
    ) -> Result<crate::eval::EvalReport, TrainError> {
        let features = validation_texts(self.model, validation)?;
        if !self.options.towers.image() {
            return evaluate_with_texts(validation, &features, self.index, Fusion::Sum);
        }
        let reencoded = self.reencode_split(validation, scratch)?;
        evaluate_with_texts(validation, &features, &reencoded, Fusion::Sum)
    }

    /// A scratch index of every image of `dataset` found in the index (galleries, references, targets),
    /// encoded by the current image tower under the same keys and metadata.
    fn reencode_split(&self, dataset: &Dataset, dir: &Path) -> Result<Index, TrainError> {
        let index_error = |context: &'static str| {
            move |source: crate::Error| TrainError::Index {
                context,
                source: Box::new(source),
            }
        };
        let mut names: Vec<&str> = Vec::new();
        for category in dataset.categories() {
            names.extend(dataset.gallery(category).iter().map(|i| i.name.as_str()));
            for triplet in dataset.triplets(category) {
                names.push(&triplet.candidate);
                names.extend(triplet.target.as_deref());
            }
        }
        let (ids, _) = self
            .index
            .key_ids(names.into_iter())
            .map_err(index_error("looking up the validation images"))?;
        let ids: Vec<u64> = ids.iter().collect();
        let vectors = self.encode_images(&ids)?;
        let mut rows = Vec::with_capacity(ids.len());
        for &id in &ids {
            let key = self.index.key(id).map_err(index_error("reading a key"))?;
            let meta = self
                .index
                .meta(id)
                .map_err(index_error("reading metadata"))?;
            rows.push((key, meta));
        }
        scratch_index(
            dir,
            self.index.dim(),
            rows.iter()
                .zip(&vectors)
                .map(|((key, meta), vector)| (*key, vector.as_slice(), meta)),
        )
    }
}

/// Writes a checkpoint of a run to `dir`: the model directory, the optimizer's moments (with `extra`
/// variables that are not model tensors, by name), the run state and the run's record (`record.0` is its
/// file name).
pub(super) fn save_checkpoint(
    dir: &Path,
    model: &TrainableClip,
    optimizer: &AdamW,
    state: &RunState,
    record: (&str, &impl Serialize),
    extra: &[(&str, &Var)],
) -> Result<(), TrainError> {
    model.save(dir)?;
    let (mut moments, _) = optimizer
        .state()
        .map_err(compute("reading optimizer state"))?;
    for (name, var) in extra {
        moments.insert((*name).to_owned(), var.as_tensor().clone());
    }
    let path = dir.join(OPTIMIZER_FILE);
    candle_core::safetensors::save(&moments, &path)
        .map_err(|e| checkpoint_error(&path)(e.to_string()))?;
    write_json(&dir.join(STATE_FILE), state)?;
    write_json(&dir.join(record.0), record.1)
}

/// Reads the run state of the checkpoint `dir` and restores the optimizer's moments and the `extra`
/// variables [`save_checkpoint`] wrote.
pub(super) fn load_run_state(
    dir: &Path,
    optimizer: &mut AdamW,
    extra: &[(&str, &Var)],
) -> Result<RunState, TrainError> {
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
    for (name, var) in extra {
        let saved = moments
            .get(*name)
            .ok_or_else(|| checkpoint_error(&path)(format!("no {name} saved")))?;
        var.set(saved)
            .map_err(|e| checkpoint_error(&path)(e.to_string()))?;
    }
    Ok(state)
}

/// Refuses to resume a run under other options than it started with (the schedule, the frozen blocks
/// and the data order all depend on them): `record_file` in `dir` is the run's record, whose `options`
/// field must equal `options`.
pub(super) fn check_resumed_options<O>(
    dir: &Path,
    record_file: &str,
    options: &O,
) -> Result<(), TrainError>
where
    O: PartialEq + std::fmt::Debug + serde::de::DeserializeOwned,
{
    #[derive(Deserialize)]
    struct Saved<O> {
        options: O,
    }
    let path = dir.join(record_file);
    let text =
        std::fs::read_to_string(&path).map_err(|e| checkpoint_error(&path)(e.to_string()))?;
    let saved: Saved<O> =
        serde_json::from_str(&text).map_err(|e| checkpoint_error(&path)(e.to_string()))?;
    if &saved.options != options {
        return Err(checkpoint_error(&path)(format!(
            "the run was started with other options: {:?}, now {:?}",
            saved.options, options
        )));
    }
    Ok(())
}

/// After a run's last epoch: removes the scratch validation index and names the model directories,
/// `(best, last)` (best is last when no epoch was validated).
pub(super) fn finish_run(out: &Path, best_epoch: Option<usize>) -> (PathBuf, PathBuf) {
    let _ = std::fs::remove_dir_all(out.join("validation-index"));
    let last_model = out.join(LAST_DIR);
    let best_model = match best_epoch {
        Some(_) => out.join(BEST_DIR),
        None => last_model.clone(),
    };
    (best_model, last_model)
}
