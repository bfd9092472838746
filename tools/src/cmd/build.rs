//! `fiq-index build`: fill an index (from a FashionIQ tree or a vector file) and build its IVF index.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use fiq::index::Index;
use fiq::pipeline::{
    build_catalog, build_ivf, import_vectors, tune_and_record, BuildOptions, ImportOptions,
    TuneTarget,
};

/// Fill an index and build its IVF (FAISS) index, in one of three ways:
///
///   --fashioniq ROOT: encode the split's gallery images with the model (resumable: the index is
///     committed every --commit-every images, and a rerun skips images already in it; unreadable
///     images are skipped and listed in INDEX/skipped-images.tsv, never aborting the build; the loader's
///     report is printed and the image names that resolve to no file are kept in
///     INDEX/missing-images.tsv);
///   --vectors FILE.npy --keys FILE.txt: import L2-normalized float32 rows (like `import`);
///   neither: the index at --out exists already (for example from `import`); only the IVF index is
///     (re)built.
///
/// Then the IVF index is built over every item and committed with the index (--no-ivf skips it; search
/// is then exact). `fiq-index tune` picks its nprobe; `fiq-index eval-ann` measures it.
///
/// With --sink milvus://HOST:PORT/COLLECTION (and --fashioniq) the images are encoded straight into a
/// Milvus collection instead of an index directory: created when missing (key, category, vector, fiq's
/// model record, an IVF_FLAT index of --ivf lists, default 4·√n), rows upserted by key in acknowledged
/// batches. --part i/n encodes only the i-th of n disjoint parts of the catalog (by a hash of the key),
/// so n processes can fill one collection at once; a rerun of a part skips what the collection holds.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory to create, resume or give an IVF index.
    #[arg(long, required_unless_present = "sink", conflicts_with = "sink")]
    out: Option<PathBuf>,
    /// Encode into this Milvus collection instead (milvus://HOST:PORT/COLLECTION; needs --fashioniq).
    #[arg(long, requires = "fashioniq")]
    sink: Option<fiq::milvus::MilvusUrl>,
    /// With --sink: encode only part i of n (1-based, "2/4"): n processes fill one collection.
    #[arg(long, requires = "sink")]
    part: Option<fiq::pipeline::Part>,
    #[command(flatten)]
    milvus: crate::milvus_args::MilvusArgs,
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
    if let Some(url) = &args.sink {
        return encode_into_milvus(&args, url);
    }
    let out = args
        .out
        .clone()
        .expect("clap requires --out without --sink");
    match (&args.dataset.fashioniq, &args.vectors, &args.keys) {
        (Some(_), _, _) => encode_catalog(&args)?,
        (None, Some(vectors), Some(keys)) => {
            let options = ImportOptions {
                append: false,
                category: String::new(),
                model_name: "external".into(),
                progress: !args.model.quiet,
            };
            let report = import_vectors(vectors, keys, &out, &options)?;
            eprintln!("{}: {report}", out.display());
        }
        _ if Index::open(&out).is_ok() => {}
        _ => bail!(
            "{} is not an index yet: give --fashioniq ROOT (encode images) or --vectors FILE.npy \
             --keys FILE.txt (import vectors) to fill it",
            out.display()
        ),
    }
    build_ivf_and_tune(&args, &out)
}

fn encode_into_milvus(args: &Args, url: &fiq::milvus::MilvusUrl) -> anyhow::Result<()> {
    if args.ann.factory.is_some() || args.ann.no_ivf {
        bail!(
            "--sink builds an IVF_FLAT index of --ivf lists; --factory and --no-ivf do not apply"
        );
    }
    let dataset = args.dataset.load()?;
    eprint!("{}", dataset.report());
    let encoder = args.model.load()?;
    let part = args.part.unwrap_or(fiq::pipeline::Part::WHOLE);
    // Every part computes the same nlist from the whole catalog's size.
    let catalog: usize = dataset.categories().map(|c| dataset.gallery(c).len()).sum();
    let nlist = args.ann.nlist(catalog);
    let nprobe = args.ann.nprobe.unwrap_or((nlist / 32).max(1));
    let options = fiq::pipeline::SinkOptions {
        batch: args.milvus.milvus_batch,
        connect: args.milvus.connect()?,
        progress: !args.model.quiet,
    };
    let report =
        fiq::pipeline::build_into_milvus(&dataset, &encoder, url, part, nlist, nprobe, &options)
            .with_context(|| format!("encoding part {part} into {url}"))?;
    for skipped in &report.skipped {
        eprintln!("skipped {}: {}", skipped.name, skipped.reason);
    }
    let record = report
        .record
        .as_ref()
        .expect("a finished build has its record");
    eprintln!(
        "{url}: part {part}: {} rows stored (acknowledged), {} already present, {} skipped, {} in \
         other parts; encode {:.1?}, insert {:.1?}, flush and load {:.1?}; the collection holds {} \
         rows ({} served through the IVF index, {} in segments too small to index; IVF_FLAT nlist {}, \
         nprobe {})",
        report.stored,
        report.already_present,
        report.skipped.len(),
        report.other_parts,
        report.encode_time,
        report.upsert_time,
        report.flush_time,
        report.collection_rows,
        report.coverage.indexed_rows,
        report.coverage.brute_force_rows,
        record.nlist,
        record.nprobe
    );
    Ok(())
}

fn encode_catalog(args: &Args) -> anyhow::Result<()> {
    let out = args
        .out
        .as_deref()
        .expect("clap requires --out without --sink");
    let dataset = args.dataset.load()?;
    // What the loader left out (missing images by role, triplets dropped), told and kept.
    let load_report = dataset.report();
    eprint!("{load_report}");
    if !load_report.missing.is_empty() {
        eprintln!(
            "{} image names resolve to no file (see {})",
            load_report.missing.len(),
            out.join(MISSING_LOG).display()
        );
    }
    let encoder = args.model.load()?;
    let options = BuildOptions {
        commit_every: args.commit_every,
        progress: !args.model.quiet,
    };
    let report = build_catalog(&dataset, &encoder, out, &options)?;
    load_report
        .write_missing_log(out.join(MISSING_LOG))
        .context("keeping the loader's report with the index")?;
    // Written even when empty, so that a rebuild's log never shows an earlier run's skips.
    let log = crate::output::write_skipped_log(out, &report.skipped)?;
    if !report.skipped.is_empty() {
        eprintln!(
            "{} images skipped (missing or undecodable); see {}",
            report.skipped.len(),
            log.display()
        );
    }
    eprintln!(
        "{}: added {} images ({} already present); decode {:.1?}, encode {:.1?}, index {:.1?}",
        out.display(),
        report.added,
        report.already_present,
        report.decode_time,
        report.encode_time,
        report.index_time
    );
    Ok(())
}

/// The loader's list of image names that resolve to no file, kept in the index directory.
const MISSING_LOG: &str = "missing-images.tsv";

fn build_ivf_and_tune(args: &Args, out: &std::path::Path) -> anyhow::Result<()> {
    let rows = Index::open(out)?.total_rows() as usize;
    let Some(params) = args.ann.params(rows) else {
        if !args.model.quiet {
            eprintln!("no IVF index (--no-ivf): searches are exact");
        }
        return Ok(());
    };
    let bar = fiq::progress::bar_if(!args.model.quiet, 0, "IVF");
    let start = Instant::now();
    let record = build_ivf(out, &params, &bar)
        .with_context(|| format!("building the IVF index of {}", out.display()))?;
    bar.finish_and_clear();
    eprintln!(
        "{}: IVF index {} over {} vectors in {:.1} s (k-means on {}, FAISS {})",
        out.display(),
        record.factory,
        record.len,
        start.elapsed().as_secs_f64(),
        record.trained_on,
        record.faiss_simd
    );
    if args.ann.nprobe.is_some() || args.ann.no_tune {
        eprintln!(
            "{}: nprobe {} as given; `fiq-index tune` measures one for a target recall",
            out.display(),
            record.nprobe
        );
        return Ok(());
    }
    // Measure nprobe rather than guess it: nlist / 32 probed one list of 16 in a small catalog and
    // lost a fifth of the exact top-10.
    let mut target = TuneTarget::default_for(args.dataset.fashioniq.is_some());
    target.k = args.ann.tune_k.unwrap_or(target.k);
    target.recall = args.ann.tune_recall.unwrap_or(target.recall);
    let started = Instant::now();
    let (report, chosen) = tune_and_record(out, &target)
        .with_context(|| format!("tuning nprobe of {}", out.display()))?;
    let (k, goal) = (target.k, target.recall);
    let Some(chosen) = chosen else {
        eprintln!(
            "{}: warning: recall@{k} never reaches {goal} on held-out queries; nprobe stays {} \
             (finer codes or a larger --rerank-factor would help)",
            out.display(),
            record.nprobe
        );
        return Ok(());
    };
    let recall = report
        .points
        .iter()
        .find(|p| p.nprobe == chosen)
        .map_or(f64::NAN, |p| p.recall);
    eprintln!(
        "{}: nprobe {chosen} of {} lists: recall@{k} {recall:.3} against exact search on {} held-out \
         queries (target {goal}; measured in {:.1} s; `fiq-index tune` shows the trade-off)",
        out.display(),
        record.nlist,
        report.queries,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
