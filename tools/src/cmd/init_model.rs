//! `fiq-index init-model`: a model directory with freshly drawn weights, to train from scratch.

use anyhow::Context;
use std::path::PathBuf;

/// Write a CLIP model with random weights (transformers' initialization, seeded) from a config.json
/// and a tokenizer.json: the starting point for training a model from scratch with `fiq-index train
/// --what encoder --model OUT`. Build the index it trains against with the same `--model OUT`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Hugging Face CLIP `config.json`, or a model directory holding one (and, without
    /// `--tokenizer`, its `tokenizer.json`).
    #[arg(long)]
    pub config: PathBuf,
    /// The `tokenizer.json` to copy into the model (default: the one beside `--config`).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Output model directory (created if missing; its model files are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the draw; the same seed writes the same weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `fiq-index init-model`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (config, beside) = if args.config.is_dir() {
        (args.config.join("config.json"), args.config.clone())
    } else {
        let dir = args.config.parent().map(PathBuf::from).unwrap_or_default();
        (args.config.clone(), dir)
    };
    let tokenizer = args
        .tokenizer
        .clone()
        .unwrap_or_else(|| beside.join("tokenizer.json"));
    fiq::encoder::initialize_clip(&config, &tokenizer, &args.out, args.seed).with_context(
        || {
            format!(
                "initializing a model from {} into {}",
                config.display(),
                args.out.display()
            )
        },
    )?;
    println!(
        "wrote {} (random weights, seed {})",
        args.out.display(),
        args.seed
    );
    Ok(())
}
