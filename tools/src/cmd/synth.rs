//! `fiq-index synth`: write a synthetic FashionIQ tree (images, captions, splits, attribute file).

use anyhow::Context;
use fiq::synth::{generate, Difficulty, ImageFormat, ImageLayout, SynthOptions, ATTRIBUTE_FILE};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Write a synthetic FashionIQ tree: images, captions, splits and the attribute file, seeded (`--difficulty
/// hard` for a benchmark with headroom for training).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder (created if missing); gets captions/, image_splits/, images/ and the attribute file.
    #[arg(long)]
    pub out: PathBuf,
    /// Images per category, over train/val/test (60/20/20).
    #[arg(long, default_value_t = 1000)]
    pub per_category: usize,
    /// Seed; the same seed writes byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image side in pixels.
    #[arg(long, default_value_t = 64)]
    pub size: u32,
    /// Image folder layout.
    #[arg(long, value_enum, default_value_t = LayoutArg::Flat)]
    pub layout: LayoutArg,
    /// Image file format.
    #[arg(long, value_enum, default_value_t = FormatArg::Png)]
    pub format: FormatArg,
    /// How hard the task is. easy: a small vocabulary, every change named (sum fusion of the default
    /// model nearly solves it). hard: FashionIQ's shape: near-neighbour shades, fits and prints, one to
    /// three changes of which captions name one or two, synonyms the default model never saw, varied
    /// placement, background and lighting.
    #[arg(long, value_enum, default_value_t = DifficultyArg::Easy)]
    pub difficulty: DifficultyArg,
}

/// `--difficulty` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DifficultyArg {
    /// The small vocabulary the default model was trained on.
    Easy,
    /// Headroom for training: near neighbours, partial captions, unseen synonyms, nuisance variation.
    Hard,
}

/// `--layout` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LayoutArg {
    /// images/NAME.ext, as FashionIQ is distributed.
    Flat,
    /// images/{category}/NAME.ext.
    PerCategory,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// PNG.
    Png,
    /// JPEG, quality 90.
    Jpeg,
}

/// Generates the tree and prints what was written and how fast.
pub fn run(args: Args) -> anyhow::Result<()> {
    let options = SynthOptions {
        per_category: args.per_category,
        seed: args.seed,
        size: args.size,
        layout: match args.layout {
            LayoutArg::Flat => ImageLayout::Flat,
            LayoutArg::PerCategory => ImageLayout::PerCategory,
        },
        format: match args.format {
            FormatArg::Png => ImageFormat::Png,
            FormatArg::Jpeg => ImageFormat::Jpeg,
        },
        difficulty: match args.difficulty {
            DifficultyArg::Easy => Difficulty::Easy,
            DifficultyArg::Hard => Difficulty::Hard,
        },
    };
    let started = Instant::now();
    let summary = generate(&args.out, &options)
        .with_context(|| format!("generating synthetic FashionIQ in {}", args.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let report = format!(
        "wrote {} images ({:.1} MiB), {} triplets to {} in {:.2} s: {:.0} images/s on {} threads\nattributes: {}\n",
        summary.images,
        summary.image_bytes as f64 / (1024.0 * 1024.0),
        summary.triplets,
        args.out.display(),
        seconds,
        summary.images as f64 / seconds,
        rayon::current_num_threads(),
        args.out.join(ATTRIBUTE_FILE).display()
    );
    print_ignoring_closed_pipe(&report)
}

/// Prints `text`; a reader that went away (`| head`) is not a failure of the command.
fn print_ignoring_closed_pipe(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
