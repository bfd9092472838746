//! `fiq-index tune`: the smallest nprobe reaching a recall target, recorded as the index default.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use fiq::index::Index;
use fiq::pipeline::{measure_nprobe, record_nprobe, TuneQueries, TuneTarget};

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
    let queries = match &args.queries {
        Some(path) => {
            let q = fiq::npy::read_matrix(path)?;
            ensure!(
                q.dim == index.dim(),
                "{} holds {}-dimensional queries, the index {}",
                path.display(),
                q.dim,
                index.dim()
            );
            TuneQueries::Vectors(q.data)
        }
        None => TuneQueries::HeldOut {
            count: args.num_queries,
            seed: args.seed,
        },
    };
    let target = TuneTarget {
        k: args.k,
        recall: args.target_recall,
        queries,
    };
    let (report, record) = measure_nprobe(&index, &target)?;
    drop(index);
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
