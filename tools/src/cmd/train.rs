//! `fiq-index train`: fine-tune the encoder (its text tower, its image tower or both), or train a learned
//! fusion (CLIP4Cir's Combiner, or a learned projection) on cached features: image vectors from an index
//! keyed by FashionIQ image names, text vectors encoded by the index's model once and kept in
//! `OUT/text-features/` (or read from a cache made elsewhere).

use anyhow::{bail, Context};
use fiq::encoder::Encoder;
use fiq::encoder::EncoderOptions;
use fiq::fashioniq::{Category, Dataset, LoadOptions, Split};
use fiq::fusion::{CombinerConfig, LearnedFusionKind};
use fiq::index::Index;
use fiq::train::{
    fine_tune_encoder, synthetic, train, FineTuneData, FineTuneOptions, LossOptions, Mining,
    TextCache, TrainOptions, TrainingSet, TunedTowers, Validation,
};
use std::path::PathBuf;

/// Arguments of `fiq-index train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// FashionIQ root (captions/, image_splits/); images are not read.
    #[arg(long)]
    pub fashioniq: PathBuf,
    /// Index holding the image vectors, keyed by image name (train and val images).
    #[arg(long)]
    pub index: PathBuf,
    /// A text feature cache made elsewhere: a folder with `texts.json` (a JSON array of strings) and
    /// `features.npy` (float32, one row per text, the index's dimension). It must hold the four training
    /// variants of every train triplet and the evaluation text of every val triplet; a missing text is an
    /// error naming it. Default: the texts are encoded by the model (--model, the index's) and kept in
    /// OUT/text-features/, so a rerun encodes nothing again.
    #[arg(long)]
    pub text_features: Option<PathBuf>,
    /// Synthetic FashionIQ only: write the index from the attribute file (if it does not exist) and use
    /// fiq's fake bag-of-attribute-words text features instead of a cache. Not CLIP.
    #[arg(long, conflicts_with = "text_features")]
    pub synthetic_features: bool,
    /// What to train.
    #[arg(long, value_enum, default_value_t = What::Combiner)]
    pub what: What,
    /// Output folder: `last/` (checkpoint, rewritten every epoch) and `best/` (best validation score).
    #[arg(long)]
    pub out: PathBuf,
    /// Resume from a checkpoint folder (`OUT/last`); the other options must match the original run.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Categories to train on (default: all three).
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<Category>,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Triplets per step (default 128 for the Combiner and projection, 64 for encoder fine-tuning).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (default 1e-4 for the Combiner and projection, 2e-5 for encoder fine-tuning).
    #[arg(long)]
    pub lr: Option<f64>,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Warmup steps.
    #[arg(long, default_value_t = 50)]
    pub warmup: u64,
    /// Global gradient-norm clip.
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Logit scale (inverse temperature); CLIP4Cir uses 100, CLIP's own learned value. For a model that
    /// learned a softer one lower it: the Combiner on the built-in model does best at 10 (README).
    #[arg(long, default_value_t = 100.0)]
    pub logit_scale: f32,
    /// Hard-negative weighting β (0: plain InfoNCE).
    #[arg(long, default_value_t = 0.0)]
    pub hard_negative_beta: f32,
    /// Negatives mined from the index per query (0: off).
    #[arg(long, default_value_t = 0)]
    pub mined_negatives: usize,
    /// Re-mine every this many epochs.
    #[arg(long, default_value_t = 2)]
    pub mine_every: usize,
    /// Positive-aware mining: mine only items scoring below this fraction of the target's score (0.95,
    /// as NV-Retriever does), so that near-equal answers to a partial caption are not pushed away;
    /// while the model still ranks a target low these are the items just below it (semi-hard
    /// negatives), however deep the search must go to find them. `off` mines the nearest non-targets,
    /// which lost to unmined training on the hard synthetic level (BENCHMARKS.md) where this won.
    #[arg(long, value_name = "FRACTION|off", default_value = "0.95", value_parser = parse_below_target)]
    pub mine_below_target: BelowTarget,
    /// Draw the --mined-negatives at random from this many nearest candidates, a fresh draw at every
    /// mining (ANCE draws from the top 200), instead of taking the nearest: fewer near-duplicates of the
    /// target, more different negatives over a run. 0 takes the nearest.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub mine_pool: usize,
    /// Always use the evaluation text instead of CLIP4Cir's four caption variants.
    #[arg(long)]
    pub no_caption_augmentation: bool,
    /// Encoder fine-tuning: train only the last N transformer blocks of each tuned tower (with its final
    /// layer norm and projection). Default: every block and the embeddings.
    #[arg(long)]
    pub trainable_blocks: Option<usize>,
    /// Combiner projection width (default 5× the feature dimension).
    #[arg(long)]
    pub projection_dim: Option<usize>,
    /// Combiner hidden width (default 10× the feature dimension).
    #[arg(long)]
    pub hidden_dim: Option<usize>,
    /// Combiner dropout.
    #[arg(long, default_value_t = 0.5)]
    pub dropout: f32,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The index's model: the checkpoint fine-tuned by --what text-encoder/vision-encoder/encoder, the
    /// encoder of the training and validation texts otherwise (see --text-features). Default: fiq's
    /// built-in model.
    #[arg(long)]
    pub model: Option<PathBuf>,
}

/// `--mine-below-target`: a fraction, or `off`.
#[derive(Debug, Clone, Copy)]
pub struct BelowTarget(Option<f32>);

fn parse_below_target(value: &str) -> Result<BelowTarget, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(BelowTarget(None));
    }
    match value.parse::<f32>() {
        Ok(ratio) if ratio > 0.0 && ratio.is_finite() => Ok(BelowTarget(Some(ratio))),
        _ => Err(format!(
            "expected a positive fraction such as 0.95, or `off`, not {value:?}"
        )),
    }
}

impl Args {
    fn mining(&self) -> Mining {
        Mining {
            negatives: self.mined_negatives,
            every: self.mine_every,
            below_target: self.mine_below_target.0,
            pool: self.mine_pool,
        }
    }
}

/// `--what` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// Fine-tune the text tower of --model (a transformers CLIP checkpoint); the index's image vectors
    /// stay valid, so the checkpoint queries the existing index without a rebuild.
    TextEncoder,
    /// Fine-tune the image tower of --model; `build` must re-encode the gallery with the new checkpoint.
    VisionEncoder,
    /// Fine-tune both towers; `build` must re-encode the gallery.
    Encoder,
    /// CLIP4Cir's Combiner on cached features.
    Combiner,
    /// Learned linear maps before a sum, on cached features.
    Projection,
}

impl What {
    fn towers(self) -> Option<TunedTowers> {
        match self {
            What::TextEncoder => Some(TunedTowers::Text),
            What::VisionEncoder => Some(TunedTowers::Image),
            What::Encoder => Some(TunedTowers::Both),
            What::Combiner | What::Projection => None,
        }
    }
}

/// Trains, printing one line per epoch and where the models are.
pub fn run(args: Args) -> anyhow::Result<()> {
    let args = &args;
    if let Some(towers) = args.what.towers() {
        return fine_tune(args, towers);
    }
    if args.synthetic_features && !args.index.exists() {
        let images = synthetic::write_index(&args.fashioniq, &args.index)
            .with_context(|| format!("writing fake-feature index {}", args.index.display()))?;
        eprintln!(
            "wrote {images} fake image vectors to {}",
            args.index.display()
        );
    }
    let index = Index::open(&args.index)
        .with_context(|| format!("opening index {}", args.index.display()))?;
    let dim = index.dim();
    let texts = TextFeatureSource::choose(args, &index)?;
    let encoder = |batch: &[String]| texts.encode(batch);
    let load = |split| load_split(args, split);
    let train_set = TrainingSet::build(&load(Split::Train)?, &index, &encoder)
        .context("preparing the training triplets")?;
    let validation =
        Validation::build(load(Split::Val)?, dim, &encoder).context("preparing validation")?;
    texts.keep()?;
    eprintln!(
        "{} training triplets ({} skipped: an image not in the index)",
        train_set.examples.len(),
        train_set.skipped
    );
    let model = match args.what {
        What::TextEncoder | What::VisionEncoder | What::Encoder => {
            unreachable!("encoder fine-tuning returned at the top of run")
        }
        What::Projection => CombinerConfig::projection(dim),
        What::Combiner => CombinerConfig {
            projection_dim: args.projection_dim.unwrap_or(dim * 5),
            hidden_dim: args.hidden_dim.unwrap_or(dim * 10),
            dropout: args.dropout,
            ..CombinerConfig::combiner(dim)
        },
    };
    if model.kind == LearnedFusionKind::Projection && args.projection_dim.is_some() {
        bail!("--projection-dim applies to --what combiner only");
    }
    let options = TrainOptions {
        model,
        epochs: args.epochs,
        batch_size: args.batch_size.unwrap_or(128),
        learning_rate: args.lr.unwrap_or(1e-4),
        weight_decay: args.weight_decay,
        warmup_steps: args.warmup,
        max_grad_norm: args.max_grad_norm,
        loss: LossOptions {
            logit_scale: args.logit_scale,
            hard_negative_beta: args.hard_negative_beta,
        },
        mining: args.mining(),
        caption_augmentation: !args.no_caption_augmentation,
        seed: args.seed,
        progress: true,
        stop_after_epoch: None,
    };
    if args.trainable_blocks.is_some() {
        bail!("--trainable-blocks applies to encoder fine-tuning only");
    }
    let summary = train(
        &train_set,
        Some(&validation),
        &index,
        &options,
        &args.out,
        args.resume.as_deref(),
    )
    .context("training")?;
    print_history(&summary.history);
    if let Some(best) = summary.best_epoch {
        let record = &summary.history[best - 1];
        println!(
            "best epoch {best}: R@10 {:.2}, R@50 {:.2} -> {}",
            record.recall_at_10.unwrap_or_default() * 100.0,
            record.recall_at_50.unwrap_or_default() * 100.0,
            args.out.join(fiq::train::BEST_DIR).display()
        );
    }
    Ok(())
}

/// `--what text-encoder | vision-encoder | encoder`.
fn fine_tune(args: &Args, towers: TunedTowers) -> anyhow::Result<()> {
    if args.synthetic_features || args.text_features.is_some() {
        bail!("--synthetic-features and --text-features apply to the Combiner and projection only: encoder fine-tuning encodes its own texts");
    }
    if args.projection_dim.is_some() || args.hidden_dim.is_some() {
        bail!("--projection-dim and --hidden-dim apply to --what combiner only");
    }
    let model_dir = crate::model_args::ModelArgs::for_model(args.model.clone()).model_dir()?;
    let index = Index::open(&args.index)
        .with_context(|| format!("opening index {}", args.index.display()))?;
    let load = |split| load_split(args, split);
    let train_split = load(Split::Train)?;
    let validation = load(Split::Val)?;
    let options = FineTuneOptions {
        towers,
        trainable_blocks: args.trainable_blocks,
        epochs: args.epochs,
        batch_size: args.batch_size.unwrap_or(64),
        learning_rate: args.lr.unwrap_or(2e-5),
        weight_decay: args.weight_decay,
        warmup_steps: args.warmup,
        max_grad_norm: args.max_grad_norm,
        logit_scale: args.logit_scale,
        hard_negative_beta: args.hard_negative_beta,
        mining: args.mining(),
        caption_augmentation: !args.no_caption_augmentation,
        seed: args.seed,
        progress: true,
        stop_after_epoch: None,
    };
    let data = FineTuneData {
        train: &train_split,
        validation: Some(&validation),
        index: &index,
    };
    eprintln!("fine-tuning {towers} of {}", model_dir.display());
    let summary = fine_tune_encoder(
        &model_dir,
        &EncoderOptions::default(),
        data,
        &options,
        &args.out,
        args.resume.as_deref(),
    )
    .context("fine-tuning the encoder")?;
    let record = &summary.record;
    eprintln!(
        "{} training triplets ({} skipped: an image not in the index)",
        record.train_triplets, record.skipped_triplets
    );
    print_history(&record.history);
    if let Some(best) = record.best_epoch {
        let epoch = &record.history[best - 1];
        println!(
            "best epoch {best}: R@10 {:.2}, R@50 {:.2} -> {} (a model directory: pass it as --model)",
            epoch.recall_at_10.unwrap_or_default() * 100.0,
            epoch.recall_at_50.unwrap_or_default() * 100.0,
            summary.best_model.display()
        );
    }
    if towers.needs_rebuild() {
        println!(
            "the image tower changed: rebuild the index with --model {} before querying with it",
            summary.best_model.display()
        );
    } else {
        println!("the image tower is unchanged: the index answers the new model as it is");
    }
    Ok(())
}

/// The per-epoch table both kinds of training print.
pub(crate) fn print_history(history: &[fiq::train::EpochRecord]) {
    let mined = history
        .iter()
        .any(|record| record.mined_per_query.is_some());
    println!(
        "epoch  loss     examples/s  R@10    R@50{}",
        if mined { "  mined/query" } else { "" }
    );
    // An epoch that was not validated shows "-", not a recall of zero.
    let percent = |recall: Option<f64>| match recall {
        Some(recall) => format!("{:>6.2}", recall * 100.0),
        None => format!("{:>6}", "-"),
    };
    for record in history {
        let negatives = match (mined, record.mined_per_query) {
            (true, Some(mean)) => format!("  {mean:>11.1}"),
            (true, None) => format!("  {:>11}", "-"),
            (false, _) => String::new(),
        };
        println!(
            "{:>5}  {:<7.4}  {:>10.0}  {}  {}{negatives}",
            record.epoch,
            record.loss,
            record.examples_per_second,
            percent(record.recall_at_10),
            percent(record.recall_at_50)
        );
    }
}

/// Where training's text vectors come from.
enum TextFeatureSource {
    /// fiq's fake bag-of-attribute-words features (synthetic FashionIQ only).
    Synthetic,
    /// A cache made elsewhere: every text must be in it.
    Given(TextCache),
    /// The index's model, its vectors kept in `OUT/text-features/`.
    Model {
        encoder: Box<dyn Encoder>,
        cache: TextCache,
    },
}

impl TextFeatureSource {
    fn choose(args: &Args, index: &Index) -> anyhow::Result<TextFeatureSource> {
        if args.synthetic_features {
            return Ok(TextFeatureSource::Synthetic);
        }
        if let Some(dir) = &args.text_features {
            return Ok(TextFeatureSource::Given(TextCache::open(
                dir,
                index.dim(),
                None,
            )?));
        }
        let encoder = crate::model_args::ModelArgs::for_model(args.model.clone()).load()?;
        index
            .check_model(encoder.info())
            .context("the texts must be encoded by the index's model")?;
        let dir = args.out.join(TEXT_FEATURES_DIR);
        let cache = TextCache::open(&dir, index.dim(), Some(encoder.info()))?;
        if !cache.is_empty() {
            eprintln!("{} text vectors reused from {}", cache.len(), dir.display());
        }
        Ok(TextFeatureSource::Model {
            encoder: Box::new(encoder),
            cache,
        })
    }

    fn encode(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, fiq::eval::BackendError> {
        match self {
            TextFeatureSource::Synthetic => synthetic::encode_texts(texts),
            TextFeatureSource::Given(cache) => cache.lookup(texts),
            TextFeatureSource::Model { encoder, cache } => cache.encode(texts, &**encoder),
        }
    }

    /// Writes the model's text vectors to the cache folder, so a rerun encodes nothing again.
    fn keep(&self) -> anyhow::Result<()> {
        if let TextFeatureSource::Model { encoder, cache } = self {
            cache.save(Some(encoder.info()))?;
        }
        Ok(())
    }
}

/// Where `train` keeps the text vectors the model made, inside `--out`.
const TEXT_FEATURES_DIR: &str = "text-features";

/// The chosen categories (default all three) of one split, annotations only: training reads image
/// vectors (and, for image-tower runs, image paths) from the index.
fn load_split(args: &Args, split: Split) -> anyhow::Result<Dataset> {
    let categories = if args.categories.is_empty() {
        Category::ALL.to_vec()
    } else {
        args.categories.clone()
    };
    Dataset::load(
        &args.fashioniq,
        &categories,
        split,
        LoadOptions::annotations_only(),
    )
    .with_context(|| {
        format!(
            "loading FashionIQ {split} from {}",
            args.fashioniq.display()
        )
    })
}
