//! `fiq-index build`: fill an index (from a FashionIQ tree or a vector file) and build its IVF index.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use fiq::index::{Index, IndexWriter};
use fiq::pipeline::{build_catalog, BuildOptions};

/// Fill an index and build its IVF (FAISS) index, in one of three ways:
///
///   --fashioniq ROOT: encode the split's gallery images with the model (resumable: the index is
///     committed every --commit-every images, and a rerun skips images already in it; unreadable
///     images are skipped and listed in INDEX/skipped-images.tsv, never aborting the build);
///   --vectors FILE.npy --keys FILE.txt: import L2-normalized float32 rows (like `import`);
///   neither: the index at --out exists already (for example from `import`); only the IVF index is
///     (re)built.
///
/// Then the IVF index is built over every item and committed with the index (--no-ivf skips it; search
/// is then exact). `fiq-index tune` picks its nprobe; `fiq-index eval-ann` measures it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory to create, resume or give an IVF index.
    #[arg(long)]
    out: PathBuf,
    /// Vectors to import: a 2-D float32 .npy array, one row per item.
    #[arg(long, requires = "keys", conflicts_with = "fashioniq")]
    vectors: Option<PathBuf>,
    /// Keys of the imported vectors, one per line (row i gets line i).
    #[arg(long, requires = "vectors")]
    keys: Option<PathBuf>,
    /// Images encoded between commits (--fashioniq).
    #[arg(long, default_value_t = 1024)]
    commit_every: usize,
    #[command(flatten)]
    dataset: crate::dataset_args::DatasetArgs,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
    #[command(flatten)]
    ann: crate::ann_args::AnnArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match (&args.dataset.fashioniq, &args.vectors, &args.keys) {
        (Some(_), _, _) => encode_catalog(&args)?,
        (None, Some(vectors), Some(keys)) => {
            super::import::import(vectors, keys, &args.out, false, "", "external")?
        }
        _ if Index::open(&args.out).is_ok() => {}
        _ => bail!(
            "{} is not an index yet: give --fashioniq ROOT (encode images) or --vectors FILE.npy \
             --keys FILE.txt (import vectors) to fill it",
            args.out.display()
        ),
    }
    build_ivf(&args)
}

fn encode_catalog(args: &Args) -> anyhow::Result<()> {
    let dataset = args.dataset.load()?;
    let encoder = args.model.load()?;
    let options = BuildOptions {
        commit_every: args.commit_every,
        progress: !args.model.quiet,
    };
    let report = build_catalog(&dataset, &encoder, &args.out, &options)?;
    if !report.skipped.is_empty() {
        let log = crate::output::write_skipped_log(&args.out, &report.skipped)?;
        eprintln!(
            "{} images skipped; see {}",
            report.skipped.len(),
            log.display()
        );
    }
    eprintln!(
        "{}: added {} images ({} already present); decode {:.1?}, encode {:.1?}, index {:.1?}",
        args.out.display(),
        report.added,
        report.already_present,
        report.decode_time,
        report.encode_time,
        report.index_time
    );
    Ok(())
}

fn build_ivf(args: &Args) -> anyhow::Result<()> {
    let mut writer = IndexWriter::open(&args.out)?;
    let Some(params) = args.ann.params(writer.total_rows() as usize) else {
        if !args.model.quiet {
            eprintln!("no IVF index (--no-ivf): searches are exact");
        }
        return Ok(());
    };
    let bar = if args.model.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("{msg:>6} [{bar:40}] {pos}/{len} {elapsed}")
                .expect("the template is valid")
                .progress_chars("=> "),
        )
    };
    let start = Instant::now();
    let record = writer
        .build_ann(&params, &bar)
        .with_context(|| format!("building the IVF index of {}", args.out.display()))?;
    writer.commit()?;
    drop(writer); // the tuning below records its nprobe through a writer of its own
    bar.finish_and_clear();
    eprintln!(
        "{}: IVF index {} over {} vectors in {:.1} s (k-means on {}, FAISS {})",
        args.out.display(),
        record.factory,
        record.len,
        start.elapsed().as_secs_f64(),
        record.trained_on,
        record.faiss_simd
    );
    if args.ann.nprobe.is_some() || args.ann.no_tune {
        eprintln!(
            "{}: nprobe {} as given; `fiq-index tune` measures one for a target recall",
            args.out.display(),
            record.nprobe
        );
        return Ok(());
    }
    tune_after_build(args, &record)
}

/// Measures the smallest nprobe reaching the recall target and records it, so that a fresh index
/// searches at a measured setting rather than a rule of thumb (nlist / 32 probed one list of 16 in a
/// small catalog and lost a fifth of the exact top-10).
fn tune_after_build(args: &Args, record: &fiq::ann::AnnRecord) -> anyhow::Result<()> {
    let for_fashioniq = args.dataset.fashioniq.is_some();
    let k = args
        .ann
        .tune_k
        .unwrap_or(if for_fashioniq { 50 } else { 10 });
    let target = args
        .ann
        .tune_recall
        .unwrap_or(if for_fashioniq { 0.99 } else { 0.95 });
    let started = Instant::now();
    let index = Index::open(&args.out)?;
    let (report, tuned) = super::tune::measure(&index, None, 500, 1, k, target)
        .with_context(|| format!("tuning nprobe of {}", args.out.display()))?;
    drop(index);
    let Some(chosen) = report.chosen else {
        eprintln!(
            "{}: warning: recall@{k} never reaches {target} on held-out queries; nprobe stays {} \
             (finer codes or a larger --rerank-factor would help)",
            args.out.display(),
            record.nprobe
        );
        return Ok(());
    };
    super::tune::record_nprobe(&args.out, &tuned, chosen)?;
    let recall = report
        .points
        .iter()
        .find(|p| p.nprobe == chosen)
        .map_or(f64::NAN, |p| p.recall);
    eprintln!(
        "{}: nprobe {chosen} of {} lists: recall@{k} {recall:.3} against exact search on {} held-out \
         queries (target {target}; measured in {:.1} s; `fiq-index tune` shows the trade-off)",
        args.out.display(),
        tuned.nlist,
        report.queries,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
