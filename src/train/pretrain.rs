//! Training both towers of a CLIP model on a synthetic tree's attributes: the recipe fiq's built-in model
//! (`models/fiq-default`) is made with, run by fiq itself from a model directory (`fiq-index init-model`
//! for a model from scratch, or any checkpoint of the same family to continue from).
//!
//! Fine-tuning ([`super::fine_tune_encoder`]) learns from a tree's fixed triplets. Here the generator's
//! attribute file is the supervision, so every epoch draws fresh compositions. Each step takes
//! `batch_size` reference images of the train split and, for each:
//! - a target whose attributes differ from the reference's in one or two (even odds), captioned the
//!   way the generator captions its triplets, as one of CLIP4Cir's four training variants;
//! - a hard negative one attribute away from the target.
//!
//! The loss is the sum of two InfoNCE terms, each with its own learned temperature (clamped at 100, as
//! CLIP does):
//! - **composed**: the sum-fused query (fiq's `sum` fusion) against every image of the step;
//! - **image-text**: CLIP's symmetric loss between every image of the step and a caption of all its
//!   attributes (`synth::absolute_caption`).
//!
//! In both, an image with exactly the positive's attributes (an attribute twin) is masked out of the
//! softmax: it is as good an answer as the positive, not a negative. Weight decay spares biases, norms
//! and embeddings. The run writes `OUT/last/` every epoch and `OUT/best/` when validation on the tree's
//! val split (sum fusion, the FashionIQ protocol, exact search) improves; `resume` continues a stopped
//! run bit for bit.

use super::finetune::{
    check_resumed_options, compute, finish_run, load_run_state, save_checkpoint, validation_texts,
};
use super::loss::masked_cross_entropy;
use super::optim::{learning_rate, AdamW, ParamsAdamW};
use super::trainer::{
    check_common_options, evaluate_with_texts, progress_bar, scratch_index, write_json,
    EpochRecord, RunState, BEST_DIR, LAST_DIR,
};
use super::TrainError;
use crate::encoder::trainable::{unit_rows, Tower, TrainableClip, ENCODE_CHUNK};
use crate::encoder::EncoderOptions;
use crate::fashioniq::{
    training_query_text, Category, Dataset, LoadOptions, Split, TrainingCaption,
};
use crate::fusion::Fusion;
use crate::index::ItemMeta;
use crate::rng::SplitMix64;
use crate::synth::attributes::{AttributeKind, Attributes};
use crate::synth::{
    absolute_caption, image_path, relative_captions, AttributeFile, ImageRecord, SynthOptions,
};
use candle_core::{Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The record of a run, written as `fiq-pretrain.json` beside the weights of `best/` and `last/`.
pub const PRETRAIN_RECORD_FILE: &str = "fiq-pretrain.json";
/// The composed term's temperature, kept in the checkpoint's optimizer file (it is not a CLIP tensor).
const COMPOSED_SCALE: &str = "composed_logit_scale";
/// Both temperatures are clamped here, as CLIP clamps its own.
const MAX_LOGIT_SCALE: f32 = 100.0;
/// Attempts at finding a target for a reference before it is left out of the step.
const TARGET_ATTEMPTS: usize = 20;

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainOptions {
    /// Passes of `steps_per_epoch` steps.
    pub epochs: usize,
    /// Reference images per step (each brings a target and a hard negative: three images).
    pub batch_size: usize,
    /// Steps per epoch; `None`: the train split's images divided by the batch size.
    pub steps_per_epoch: Option<usize>,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay (not on biases, norms and embeddings).
    pub weight_decay: f64,
    /// Linear warmup steps before the cosine decay.
    pub warmup_steps: u64,
    /// Gradients are scaled down when their global L2 norm exceeds this.
    pub max_grad_norm: f64,
    /// Validate (and maybe keep `best/`) every this many epochs, and after the last.
    pub validate_every: usize,
    /// Seeds the draws of references, targets, negatives and captions.
    pub seed: u64,
    /// Show a progress bar on stderr.
    #[serde(skip)]
    pub progress: bool,
    /// Stop (with a checkpoint) after this epoch, to resume later; the schedule still spans `epochs`.
    #[serde(skip)]
    pub stop_after_epoch: Option<usize>,
}

impl Default for PretrainOptions {
    /// The settings `models/fiq-default` was trained with.
    fn default() -> Self {
        PretrainOptions {
            epochs: 20,
            batch_size: 128,
            steps_per_epoch: None,
            learning_rate: 1e-3,
            weight_decay: 0.05,
            warmup_steps: 100,
            max_grad_norm: 1.0,
            validate_every: 2,
            seed: 0,
            progress: false,
            stop_after_epoch: None,
        }
    }
}

/// The record of a run (`fiq-pretrain.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainRecord {
    /// The model directory the run started from.
    pub base_model: PathBuf,
    /// The synthetic tree.
    pub data: PathBuf,
    /// The generator options of the tree (from its attribute file).
    pub synth: SynthOptions,
    /// Images of the train split.
    pub train_images: usize,
    /// The options.
    pub options: PretrainOptions,
    /// The epoch of the best validation score.
    pub best_epoch: Option<usize>,
    /// One record per epoch (loss, references/s, validation R@10 and R@50 when validated).
    pub history: Vec<EpochRecord>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct PretrainSummary {
    /// The run's record.
    pub record: PretrainRecord,
    /// The model directory of the best validated epoch (`OUT/best`), or `OUT/last` when none was.
    pub best_model: PathBuf,
    /// The model directory of the last epoch (`OUT/last`), which `resume` continues from.
    pub last_model: PathBuf,
}

/// Trains both towers of the CLIP model in `model_dir` on the synthetic tree `data` (made by
/// `fiq-index synth`; its attribute file is the supervision), writing `out/last/` every epoch and
/// `out/best/` when validation improves. With `resume` (an `out/last/` folder), continues that run so
/// that the result equals an uninterrupted one with the same options.
///
/// Memory: the train split's images are preprocessed once and kept (3 × size² floats each: 350 MB for
/// the built-in model's 7,200 images of 64 pixels).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fiq::encoder::{initialize_clip, EncoderOptions};
/// use fiq::synth::{generate, SynthOptions};
/// use fiq::train::{pretrain_on_synthetic, PretrainOptions};
/// use std::path::Path;
///
/// // The built-in model's recipe: its data, random weights of its architecture, its settings.
/// let data = Path::new("s7");
/// generate(data, &SynthOptions { per_category: 4000, seed: 7, ..SynthOptions::default() })?;
/// let default = Path::new("models/fiq-default");
/// initialize_clip(&default.join("config.json"), &default.join("tokenizer.json"), Path::new("random"), 0)?;
/// let summary = pretrain_on_synthetic(
///     Path::new("random"),
///     &EncoderOptions::default(),
///     data,
///     &PretrainOptions { progress: true, ..PretrainOptions::default() },
///     Path::new("trained"),
///     None,
/// )?;
/// println!("best epoch {:?}: {}", summary.record.best_epoch, summary.best_model.display());
/// # Ok(())
/// # }
/// ```
pub fn pretrain_on_synthetic(
    model_dir: &Path,
    encoder_options: &EncoderOptions,
    data: &Path,
    options: &PretrainOptions,
    out: &Path,
    resume: Option<&Path>,
) -> Result<PretrainSummary, TrainError> {
    check_options(options)?;
    let attributes = AttributeFile::read(data).map_err(|e| TrainError::InvalidOption {
        name: "synthetic tree",
        value: format!("{}: {e}", data.display()),
    })?;
    let model = TrainableClip::load(resume.unwrap_or(model_dir), encoder_options)?;
    let train = SplitImages::load(&model, data, &attributes, Split::Train)?;
    let validation = Dataset::load(
        data,
        &Category::ALL,
        Split::Val,
        LoadOptions::annotations_only(),
    )
    .map_err(|e| TrainError::InvalidOption {
        name: "validation split",
        value: e.to_string(),
    })?;
    let val_images = SplitImages::load(&model, data, &attributes, Split::Val)?;

    let composed_scale = Var::new(model.logit_scale_init(), &candle_core::Device::Cpu)
        .map_err(compute("creating the composed temperature"))?;
    let mut vars = model.trainable(Tower::Text, 0);
    vars.extend(model.trainable(Tower::Image, 0));
    let logit_scale = model
        .trainable_logit_scale()
        .map_err(compute("reading logit_scale"))?;
    vars.push(("logit_scale".to_owned(), logit_scale.clone()));
    vars.push((COMPOSED_SCALE.to_owned(), composed_scale.clone()));
    let mut optimizer = AdamW::with_decay(
        &vars,
        ParamsAdamW {
            lr: options.learning_rate,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-6,
            weight_decay: options.weight_decay,
        },
        |name, var| var.rank() >= 2 && !name.contains("embedding"),
    )
    .map_err(compute("creating the optimizer"))?;
    let extra = [(COMPOSED_SCALE, &composed_scale)];
    let mut state = RunState::new(options.seed);
    if let Some(dir) = resume {
        check_resumed_options(dir, PRETRAIN_RECORD_FILE, options)?;
        state = load_run_state(dir, &mut optimizer, &extra)?;
    }
    let mut record = PretrainRecord {
        base_model: model_dir.to_owned(),
        data: data.to_owned(),
        synth: attributes.options.clone(),
        train_images: train.attributes.len(),
        options: options.clone(),
        best_epoch: state.best_epoch,
        history: state.history.clone(),
    };
    let mut run = Pretrainer {
        model: &model,
        train: &train,
        difficulty: attributes.options.difficulty,
        composed_scale: &composed_scale,
        logit_scale: &logit_scale,
        tokens: HashMap::new(),
    };
    let steps_per_epoch = options
        .steps_per_epoch
        .unwrap_or(train.attributes.len() / options.batch_size)
        .max(1) as u64;
    let total_steps = steps_per_epoch * options.epochs as u64;
    let progress = progress_bar(options.progress, total_steps, state.optimizer_steps);
    let last_epoch = options
        .stop_after_epoch
        .unwrap_or(options.epochs)
        .min(options.epochs);
    for epoch in state.epochs_done..last_epoch {
        let mut order: Vec<usize> = (0..train.attributes.len()).collect();
        state.rng.shuffle(&mut order);
        let started = Instant::now();
        let (mut loss_sum, mut references) = (0.0, 0usize);
        for step in 0..steps_per_epoch as usize {
            // Consecutive windows of the shuffled order, wrapping when the epoch has more steps.
            let span = order.len() - options.batch_size.min(order.len()) + 1;
            let start = (step * options.batch_size) % span;
            let refs = &order[start..(start + options.batch_size).min(order.len())];
            optimizer.set_learning_rate(learning_rate(
                state.optimizer_steps,
                total_steps,
                options.warmup_steps,
                options.learning_rate,
            ));
            let outcome = run.step(
                refs,
                &mut optimizer,
                &mut state.rng,
                options,
                state.optimizer_steps,
            )?;
            if let Some(loss) = outcome {
                loss_sum += loss.composed + loss.image_text;
                references += loss.references;
                progress.set_message(format!(
                    "epoch {} loss {:.4} (composed {:.4}, image-text {:.4})",
                    epoch + 1,
                    loss.composed + loss.image_text,
                    loss.composed,
                    loss.image_text
                ));
            }
            state.optimizer_steps += 1;
            progress.inc(1);
        }
        let seconds = started.elapsed().as_secs_f64();
        let validate = (epoch + 1) % options.validate_every == 0 || epoch + 1 == options.epochs;
        let report = match validate {
            true => {
                progress.set_message("validating");
                Some(run.validate(&validation, &val_images, out)?)
            }
            false => None,
        };
        let epoch_record = EpochRecord::measured(
            epoch + 1,
            loss_sum / steps_per_epoch as f64,
            references as f64 / seconds.max(1e-9),
            report.as_ref(),
        );
        crate::progress::println_above(&progress, options.progress, epoch_record.summary_line());
        let improved = state.push_epoch(epoch_record);
        record.best_epoch = state.best_epoch;
        record.history = state.history.clone();
        if improved {
            let best = out.join(BEST_DIR);
            model.save(&best)?;
            write_json(&best.join(PRETRAIN_RECORD_FILE), &record)?;
        }
        save_checkpoint(
            &out.join(LAST_DIR),
            &model,
            &optimizer,
            &state,
            (PRETRAIN_RECORD_FILE, &record),
            &extra,
        )?;
    }
    progress.finish_and_clear();
    let (best_model, last_model) = finish_run(out, state.best_epoch);
    Ok(PretrainSummary {
        record,
        best_model,
        last_model,
    })
}

fn check_options(options: &PretrainOptions) -> Result<(), TrainError> {
    check_common_options(
        options.epochs,
        options.batch_size,
        options.learning_rate,
        options.max_grad_norm,
    )?;
    let invalid =
        |name: &'static str, value: String| Err(TrainError::InvalidOption { name, value });
    if options.steps_per_epoch == Some(0) {
        return invalid("steps per epoch", "0".into());
    }
    if options.validate_every == 0 {
        return invalid("validate every", "0".into());
    }
    if !(options.weight_decay >= 0.0 && options.weight_decay.is_finite()) {
        return invalid("weight decay", options.weight_decay.to_string());
    }
    Ok(())
}

/// One split's images, preprocessed once, with their names, files and attributes.
struct SplitImages {
    names: Vec<String>,
    /// The image files (recorded as the validation index's item sources).
    sources: Vec<PathBuf>,
    attributes: Vec<Attributes>,
    /// Images by their exact attributes (where targets and negatives are drawn from).
    by_attributes: HashMap<Attributes, Vec<usize>>,
    /// Preprocessed pixels, `per_image` floats each, in `attributes` order.
    pixels: Vec<f32>,
    per_image: usize,
}

impl SplitImages {
    fn load(
        model: &TrainableClip,
        root: &Path,
        file: &AttributeFile,
        split: Split,
    ) -> Result<SplitImages, TrainError> {
        let records: Vec<&ImageRecord> = file
            .images
            .iter()
            .filter(|record| record.split == split)
            .collect();
        if records.len() < 2 {
            return Err(TrainError::InvalidOption {
                name: "synthetic tree",
                value: format!(
                    "{}: the {split} split has {} images (at least 2 needed)",
                    root.display(),
                    records.len()
                ),
            });
        }
        let preprocessor = model.preprocessor();
        let sources: Vec<PathBuf> = records
            .iter()
            .map(|record| image_path(root, &file.options, record))
            .collect();
        let loaded: Vec<Vec<f32>> = sources
            .par_iter()
            .map(|path| preprocessor.load(path))
            .collect::<Result<_, _>>()?;
        let per_image = preprocessor.output_len();
        let mut by_attributes: HashMap<Attributes, Vec<usize>> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            by_attributes.entry(record.attributes).or_default().push(i);
        }
        Ok(SplitImages {
            names: records.iter().map(|record| record.name.clone()).collect(),
            sources,
            attributes: records.iter().map(|record| record.attributes).collect(),
            by_attributes,
            pixels: loaded.concat(),
            per_image,
        })
    }

    /// An image whose attributes are `garment`'s with each of `kinds` changed, or `None`.
    fn changed(
        &self,
        garment: Attributes,
        kinds: &[AttributeKind],
        difficulty: crate::synth::Difficulty,
        rng: &mut SplitMix64,
    ) -> Option<usize> {
        let wanted = garment.changed(kinds, difficulty, rng);
        let found = self.by_attributes.get(&wanted)?;
        Some(found[rng.below(found.len())])
    }

    fn gather(&self, images: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(images.len() * self.per_image);
        for &image in images {
            out.extend_from_slice(&self.pixels[image * self.per_image..][..self.per_image]);
        }
        out
    }
}

/// One reference of a step: its target, hard negative and the text of the change.
struct Composition {
    reference: usize,
    target: usize,
    negative: usize,
    text: String,
}

/// The losses of one step.
struct StepLoss {
    composed: f64,
    image_text: f64,
    references: usize,
}

struct Pretrainer<'a> {
    model: &'a TrainableClip,
    train: &'a SplitImages,
    difficulty: crate::synth::Difficulty,
    composed_scale: &'a Var,
    logit_scale: &'a Var,
    /// Token ids by text: the captions repeat across steps.
    tokens: HashMap<String, Vec<u32>>,
}

impl Pretrainer<'_> {
    /// A target (one or two attributes changed) and a hard negative (one more changed) for each
    /// reference; a reference with no such target in the split after a few draws is left out.
    fn compose(&self, references: &[usize], rng: &mut SplitMix64) -> Vec<Composition> {
        let kinds = AttributeKind::of(self.difficulty);
        let train = self.train;
        let mut out = Vec::with_capacity(references.len());
        for &reference in references {
            let garment = train.attributes[reference];
            for _ in 0..TARGET_ATTEMPTS {
                let mut changed = kinds.to_vec();
                rng.shuffle(&mut changed);
                changed.truncate(1 + rng.below(2));
                let Some(target) = train.changed(garment, &changed, self.difficulty, rng) else {
                    continue;
                };
                let target_garment = train.attributes[target];
                let one = [kinds[rng.below(kinds.len())]];
                let negative = train
                    .changed(target_garment, &one, self.difficulty, rng)
                    .unwrap_or_else(|| rng.below(train.attributes.len()));
                let captions = relative_captions(&garment, &target_garment, self.difficulty, rng);
                let text =
                    training_query_text(&captions, TrainingCaption::from_draw(rng.next_u64()));
                out.push(Composition {
                    reference,
                    target,
                    negative,
                    text,
                });
                break;
            }
        }
        out
    }

    /// Tokenizes the texts not seen before (the captions repeat across steps).
    fn tokenize_new(&mut self, texts: &[String]) -> Result<(), TrainError> {
        let missing: Vec<&str> = texts
            .iter()
            .filter(|text| !self.tokens.contains_key(*text))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let ids = self.model.tokenize(&missing)?;
            for (text, ids) in missing.iter().zip(ids) {
                self.tokens.insert((*text).to_owned(), ids);
            }
        }
        Ok(())
    }

    /// Optimizer step number `step` on `references`; `None` when fewer than two found a target.
    fn step(
        &mut self,
        references: &[usize],
        optimizer: &mut AdamW,
        rng: &mut SplitMix64,
        options: &PretrainOptions,
        step: u64,
    ) -> Result<Option<StepLoss>, TrainError> {
        let batch = self.compose(references, rng);
        let n = batch.len();
        if n < 2 {
            return Ok(None);
        }
        // The step's images: references, then targets, then hard negatives.
        let pool: Vec<usize> = batch
            .iter()
            .map(|c| c.reference)
            .chain(batch.iter().map(|c| c.target))
            .chain(batch.iter().map(|c| c.negative))
            .collect();
        let garments: Vec<Attributes> = pool.iter().map(|&i| self.train.attributes[i]).collect();
        let mut texts: Vec<String> = batch.iter().map(|c| c.text.clone()).collect();
        texts.extend(
            garments
                .iter()
                .map(|garment| absolute_caption(garment, self.difficulty, rng)),
        );
        self.tokenize_new(&texts)?;
        let sequences: Vec<&[u32]> = texts
            .iter()
            .map(|text| self.tokens[text].as_slice())
            .collect();

        let images = self
            .model
            .image_embeddings(self.train.gather(&pool), pool.len(), 0)
            .map_err(compute("encoding images"))?;
        let text = self
            .model
            .text_embeddings(&sequences, 0)
            .map_err(compute("encoding texts"))?;
        let width = pool.len();
        // Composed: query i's positive is column n + i; its attribute twins elsewhere are masked.
        let composed_targets: Vec<u32> = (n..2 * n).map(|column| column as u32).collect();
        let composed_mask: Vec<bool> = (0..n * width)
            .map(|cell| {
                let (row, column) = (cell / width, cell % width);
                column != n + row && garments[column] == garments[n + row]
            })
            .collect();
        // Image-text: image i's positive is caption i; twins masked both ways.
        let diagonal: Vec<u32> = (0..width as u32).collect();
        let twins: Vec<bool> = (0..width * width)
            .map(|cell| {
                let (row, column) = (cell / width, cell % width);
                row != column && garments[row] == garments[column]
            })
            .collect();
        let (composed, image_text) = (|| {
            let relative = text.narrow(0, 0, n)?;
            let absolute = text.narrow(0, n, width)?;
            let queries = unit_rows(&(images.narrow(0, 0, n)? + relative)?)?;
            let scale = |var: &Var| {
                var.as_tensor()
                    .exp()?
                    .minimum(MAX_LOGIT_SCALE)?
                    .reshape((1, 1))
            };
            let logits = queries
                .matmul(&images.t()?)?
                .broadcast_mul(&scale(self.composed_scale)?)?;
            let composed = masked_cross_entropy(&logits, &composed_targets, &composed_mask)?;
            let logits = images
                .matmul(&absolute.t()?)?
                .broadcast_mul(&scale(self.logit_scale)?)?;
            let image_to_text = masked_cross_entropy(&logits, &diagonal, &twins)?;
            let text_to_image =
                masked_cross_entropy(&logits.t()?.contiguous()?, &diagonal, &twins)?;
            let image_text = ((image_to_text + text_to_image)? * 0.5)?;
            Ok::<_, candle_core::Error>((composed, image_text))
        })()
        .map_err(compute("computing the loss"))?;
        let read = |t: &Tensor| -> Result<f64, TrainError> {
            Ok(f64::from(
                t.to_scalar::<f32>().map_err(compute("reading the loss"))?,
            ))
        };
        let loss = StepLoss {
            composed: read(&composed)?,
            image_text: read(&image_text)?,
            references: n,
        };
        if !(loss.composed + loss.image_text).is_finite() {
            return Err(TrainError::NonFiniteLoss { step });
        }
        let grads = (composed + image_text)
            .and_then(|total| total.backward())
            .map_err(compute("backward pass"))?;
        optimizer
            .step_clipped(&grads, options.max_grad_norm)
            .map_err(compute("updating parameters"))?;
        Ok(Some(loss))
    }

    /// The FashionIQ protocol on the tree's val split with sum fusion and the current model: its images
    /// encoded into a scratch index under `out`, its evaluation texts by the current text tower.
    fn validate(
        &self,
        validation: &Dataset,
        images: &SplitImages,
        out: &Path,
    ) -> Result<crate::eval::EvalReport, TrainError> {
        let all: Vec<usize> = (0..images.names.len()).collect();
        let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(all.len());
        for chunk in all.chunks(ENCODE_CHUNK) {
            vectors.extend(
                self.model
                    .encode_images(images.gather(chunk), chunk.len())?,
            );
        }
        let metas: Vec<ItemMeta> = (0..all.len())
            .map(|i| ItemMeta {
                category: images.attributes[i].category.as_str().to_owned(),
                source: images.sources[i].display().to_string(),
            })
            .collect();
        let index = scratch_index(
            &out.join("validation-index"),
            self.model.dim(),
            images
                .names
                .iter()
                .zip(&vectors)
                .zip(&metas)
                .map(|((name, vector), meta)| (name.as_str(), vector.as_slice(), meta)),
        )?;
        let features = validation_texts(self.model, validation)?;
        evaluate_with_texts(validation, &features, &index, Fusion::Sum)
    }
}
