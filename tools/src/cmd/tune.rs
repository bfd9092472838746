//! `fiq-index tune`: the smallest nprobe reaching a recall target, recorded as the index default.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use fiq::ann::{held_out_queries, tune_nprobe, AnnRecord, TuneReport};
use fiq::index::{Index, IndexError, IndexWriter};

/// Pick the smallest nprobe whose recall@k against exact search reaches a target on held-out queries,
/// print the nprobe / recall / QPS trade-off, and record the choice as the index's default.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index (its IVF index made by `fiq-index build`).
    pub index: PathBuf,
    /// The recall@k to reach.
    #[arg(long, default_value_t = 0.95)]
    pub target_recall: f64,
    /// Neighbors per query.
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    /// Held-out query vectors (2-D f32 .npy, L2-normalized). Default: synthetic queries, each a catalog
    /// item moved half-way toward another, so none is in the catalog.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Synthetic queries to draw when --queries is not given.
    #[arg(long, default_value_t = 500)]
    pub num_queries: usize,
    /// Seed of the synthetic queries.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the table only; leave the recorded nprobe as it is.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args) -> Result<()> {
    let index = Index::open(&args.index)?;
    let (report, record) = measure(
        &index,
        args.queries.as_deref(),
        args.num_queries,
        args.seed,
        args.k,
        args.target_recall,
    )?;
    let (nlist, len) = (record.nlist, record.len);
    println!(
        "{}: nlist {nlist}, {len} vectors, {} held-out queries, target recall@{} >= {}",
        record.factory, report.queries, report.k, report.target
    );
    println!(
        "{:>7} {:>9} {:>14} {:>10} {:>10}",
        "nprobe", "% lists", "~vectors/query", "recall", "QPS"
    );
    for p in &report.points {
        let marker = if Some(p.nprobe) == report.chosen {
            "  <- chosen"
        } else {
            ""
        };
        println!(
            "{:>7} {:>8.2}% {:>14} {:>10.4} {:>10.0}{marker}",
            p.nprobe,
            100.0 * p.nprobe as f64 / nlist as f64,
            (len as f64 * p.nprobe as f64 / nlist as f64).round(),
            p.recall,
            p.qps
        );
    }
    let chosen = report.chosen.with_context(|| {
        format!(
            "recall@{} never reaches {} (best {:.4} at nprobe = nlist): use finer codes or a larger --rerank-factor",
            report.k,
            report.target,
            report.points.iter().map(|p| p.recall).fold(0.0, f64::max)
        )
    })?;
    if args.dry_run {
        println!("dry run: the recorded nprobe stays {}", record.nprobe);
        return Ok(());
    }
    let generation = record_nprobe(&args.index, &record, chosen)?;
    println!(
        "recorded nprobe = {chosen} in {} (version {generation})",
        args.index.display()
    );
    Ok(())
}

/// Recall and QPS of `index`'s IVF index at each nprobe against exact search, on `queries` (a .npy) or
/// `num_queries` synthetic held-out ones; with the IVF record measured.
pub fn measure(
    index: &Index,
    queries: Option<&std::path::Path>,
    num_queries: usize,
    seed: u64,
    k: usize,
    target_recall: f64,
) -> Result<(TuneReport, AnnRecord)> {
    let ann = index.ann().ok_or_else(|| IndexError::NoAnn {
        index: index.path().to_owned(),
    })?;
    let vectors = index.ann_source()?;
    let queries = query_vectors(index, queries, num_queries, seed)?;
    let report = tune_nprobe(ann, &vectors, &queries, k, target_recall)?;
    Ok((report, ann.record().clone()))
}

/// Records `nprobe` as the default of the IVF index `tuned` describes, unless that IVF index was
/// rebuilt meanwhile. Returns the new index version.
pub fn record_nprobe(path: &std::path::Path, tuned: &AnnRecord, nprobe: usize) -> Result<u64> {
    let mut record = tuned.clone();
    record.nprobe = nprobe;
    let mut writer = IndexWriter::open(path)?;
    // The IVF index may have been rebuilt since the tuning opened it; its nprobe would not apply.
    let current = Index::open(path)?;
    ensure!(
        current
            .ann_record()
            .map(|r| (&r.factory, r.len, r.lists_offset))
            == Some((&record.factory, record.len, record.lists_offset)),
        "the IVF index of {} changed while tuning; run tune again",
        path.display()
    );
    writer.set_ann_record(&record)?;
    Ok(writer.commit()?)
}

/// The queries of `path` (a 2-D f32 .npy, normalized here), or `n` synthetic held-out queries drawn
/// with `seed` from the rows the IVF index covers.
pub fn query_vectors(
    index: &Index,
    path: Option<&std::path::Path>,
    n: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    match path {
        Some(path) => {
            let q = fiq::npy::read_matrix(path)?;
            ensure!(
                q.dim == index.dim(),
                "{} holds {}-dimensional queries, the index {}",
                path.display(),
                q.dim,
                index.dim()
            );
            Ok(index.normalized_queries(&q.data)?)
        }
        None => Ok(held_out_queries(&index.ann_source()?, n, seed)?
            .as_slice()
            .to_vec()),
    }
}
