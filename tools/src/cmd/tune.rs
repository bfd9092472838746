//! `fiq-index tune`: the smallest nprobe reaching a recall target, recorded as the index default.

use std::path::PathBuf;

use anyhow::{Context, Result};
use fiq::ann::{held_out_queries, tune_nprobe, AnnRecord, VectorSource};

use super::ann_store::{AnnDir, MappedNpy};

/// Pick the smallest nprobe whose recall@k against exact search reaches a target on held-out queries,
/// print the nprobe / recall / QPS trade-off, and record the choice as the index's default.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ANN directory (made by `fiq-index build`).
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
    let mut dir = AnnDir::read(&args.index)?;
    let (vectors, mut ann) = dir.open()?;
    let queries = match &args.queries {
        Some(path) => {
            let q = MappedNpy::open(path, false)?;
            q.check_normalized()?;
            (0..q.len())
                .flat_map(|i| q.row(i).iter().copied())
                .collect::<Vec<f32>>()
        }
        None => held_out_queries(&vectors, args.num_queries, args.seed)?
            .as_slice()
            .to_vec(),
    };
    let report = tune_nprobe(&ann, &vectors, &queries, args.k, args.target_recall)?;

    let nlist = ann.nlist();
    let len = ann.len();
    println!(
        "{}: nlist {nlist}, {len} vectors, {} held-out queries, target recall@{} >= {}",
        ann.record().factory,
        report.queries,
        report.k,
        report.target
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
        println!("dry run: the recorded nprobe stays {}", ann.record().nprobe);
        return Ok(());
    }
    ann.set_default_nprobe(chosen)?;
    let json = ann.record().to_json();
    AnnRecord::from_json(&json)?;
    dir.files[0].params = json;
    dir.write()?;
    println!(
        "recorded nprobe = {chosen} in {}",
        args.index.join(super::ann_store::MANIFEST).display()
    );
    Ok(())
}
