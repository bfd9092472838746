//! `fiq-index pretrain`: train both towers of a CLIP model on a synthetic tree's attributes (the recipe
//! of fiq's built-in model).

use anyhow::Context;
use fiq::encoder::EncoderOptions;
use fiq::train::{pretrain_on_synthetic, PretrainOptions};
use std::path::PathBuf;

/// Train both towers of a CLIP model on a tree made by `fiq-index synth`, supervised by its attribute
/// file: every step draws fresh compositions (a reference, a target one or two attributes away with a
/// generated caption, a hard negative one more attribute away) and minimizes a composed InfoNCE (sum
/// fusion against every image of the step) plus CLIP's image-text loss on captions of each image's
/// attributes, with attribute twins masked. This is how fiq's built-in model is made (`synth --out s7
/// --per-category 4000 --seed 7`, then `init-model --config models/fiq-default --out random --seed 0`,
/// then `pretrain --synth s7 --model random --out trained`; tools/train_default_model.sh runs them and
/// evaluates the result).
///
/// The defaults are the built-in model's settings. Validation runs on the tree's val split every
/// --validate-every epochs; OUT/best is the best validated epoch, OUT/last the last (resume with
/// --resume OUT/last). Evaluate on a tree of another seed: the val split shares the train split's
/// generator.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A synthetic tree (`fiq-index synth --out DIR`, either difficulty): its synth-attributes.json,
    /// images and val captions.
    #[arg(long)]
    pub synth: PathBuf,
    /// The CLIP model directory to start from: `fiq-index init-model` output to train from scratch, or a
    /// checkpoint to continue.
    #[arg(long)]
    pub model: PathBuf,
    /// Output folder: `last/` (rewritten every epoch) and `best/`, both model directories.
    #[arg(long)]
    pub out: PathBuf,
    /// Resume from `OUT/last`; the other options must match the original run.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Epochs.
    #[arg(long, default_value_t = PretrainOptions::default().epochs)]
    pub epochs: usize,
    /// Reference images per step (three images each: reference, target, hard negative).
    #[arg(long, default_value_t = PretrainOptions::default().batch_size)]
    pub batch_size: usize,
    /// Steps per epoch (default: train images / batch size).
    #[arg(long)]
    pub steps_per_epoch: Option<usize>,
    /// Peak learning rate (AdamW, betas 0.9/0.98, warmup then cosine decay).
    #[arg(long, default_value_t = PretrainOptions::default().learning_rate)]
    pub lr: f64,
    /// Weight decay (not on biases, norms and embeddings).
    #[arg(long, default_value_t = PretrainOptions::default().weight_decay)]
    pub weight_decay: f64,
    /// Warmup steps.
    #[arg(long, default_value_t = PretrainOptions::default().warmup_steps)]
    pub warmup: u64,
    /// Global gradient-norm clip.
    #[arg(long, default_value_t = PretrainOptions::default().max_grad_norm)]
    pub max_grad_norm: f64,
    /// Validate every this many epochs (and after the last).
    #[arg(long, default_value_t = PretrainOptions::default().validate_every)]
    pub validate_every: usize,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `fiq-index pretrain`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let options = PretrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        steps_per_epoch: args.steps_per_epoch,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        warmup_steps: args.warmup,
        max_grad_norm: args.max_grad_norm,
        validate_every: args.validate_every,
        seed: args.seed,
        progress: !args.quiet,
        stop_after_epoch: None,
    };
    eprintln!(
        "training both towers of {} on {}",
        args.model.display(),
        args.synth.display()
    );
    let summary = pretrain_on_synthetic(
        &args.model,
        &EncoderOptions::default(),
        &args.synth,
        &options,
        &args.out,
        args.resume.as_deref(),
    )
    .with_context(|| {
        format!(
            "training {} on {}",
            args.model.display(),
            args.synth.display()
        )
    })?;
    let record = &summary.record;
    eprintln!("{} train images", record.train_images);
    super::train::print_history(&record.history);
    if let Some(best) = record.best_epoch {
        let epoch = &record.history[best - 1];
        println!(
            "best epoch {best}: val sum R@10 {:.2}, R@50 {:.2} -> {} (a model directory: pass it as --model)",
            epoch.recall_at_10.unwrap_or_default() * 100.0,
            epoch.recall_at_50.unwrap_or_default() * 100.0,
            summary.best_model.display()
        );
    }
    Ok(())
}
