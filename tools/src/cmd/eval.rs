//! `fiq-index eval`: Recall and Precision at 10 and 50 by the FashionIQ protocol.

use std::path::PathBuf;

use anyhow::Context;
use fiq::encoder::Encoder;
use fiq::eval::EvalOptions;
use fiq::fusion::Fusion;
use fiq::index::Index;
use fiq::pipeline::{evaluate_index, evaluate_index_both_ways};

/// Evaluate composed retrieval on a FashionIQ split: each triplet's reference image and its two
/// captions ("C1 and c2") form a query, searched in its category's gallery.
///
/// Recall@K: the fraction of queries whose target is among the first K results. Precision@K: the number
/// of relevant results in the first K divided by K, averaged over queries; FashionIQ has exactly one
/// relevant target per query, so P@K = R@K / K. Averages are unweighted means over categories, as in the
/// papers. The reference image stays in the gallery (FashionIQ protocol) unless --exclude-reference.
///
/// When the index has an IVF index, every table is computed twice, through the IVF index (its recorded
/// nprobe) and by exact search, with their agreement (recall@K of the IVF results against exact), so
/// that approximate search never hides a retrieval loss.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index built from this split's gallery with the same model.
    #[arg(long)]
    index: PathBuf,
    #[command(flatten)]
    fusion: crate::fusion_args::FusionArgs,
    /// Remove each query's reference image from its results.
    #[arg(long)]
    exclude_reference: bool,
    /// Also report the text-only and image-only baselines.
    #[arg(long)]
    baselines: bool,
    /// Write the report(s) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Search exactly only, even when the index has an IVF index.
    #[arg(long)]
    exact_only: bool,
    #[command(flatten)]
    dataset: crate::dataset_args::DatasetArgs,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dataset = args.dataset.load()?;
    // What the loader left out is part of the result: a query dropped for a missing image is not scored.
    eprint!("{}", dataset.report());
    let index = Index::open(&args.index)?;
    let encoder = args.model.load()?;
    // The tables name the encoder and preprocessing they came from.
    let info = encoder.info();
    println!(
        "encoder {} (fingerprint {}), preprocessing {}\n",
        info.name, info.fingerprint, info.preprocessing
    );
    let chosen = args.fusion.fusion(index.dim())?;
    let mut fusions = vec![chosen];
    if args.baselines {
        fusions.push(Fusion::Weighted { alpha: 1.0 });
        fusions.push(Fusion::Weighted { alpha: 0.0 });
    }
    let mut reports: Vec<serde_json::Value> = Vec::new();
    for fusion in fusions {
        let options = EvalOptions {
            fusion,
            exclude_reference: args.exclude_reference,
            ..EvalOptions::default()
        };
        if index.ann().is_some() && !args.exact_only {
            let both = evaluate_index_both_ways(&dataset, &index, &encoder, &options)?;
            println!(
                "through the IVF index (nprobe {}):\n{}",
                both.nprobe, both.ivf
            );
            println!("exact search:\n{}", both.exact);
            let overlap: Vec<String> = both
                .agreement
                .overlap_at
                .iter()
                .map(|(k, o)| format!("{:.2}% of exact top-{k}", 100.0 * o))
                .collect();
            println!(
                "IVF vs exact over {} queries: IVF returns {}; {} result lists identical; \
                 {} IVF queries answered exactly (their probed lists held too few gallery images); \
                 search {:.2} s (IVF) vs {:.2} s (exact)\n",
                both.agreement.queries,
                overlap.join(", "),
                both.agreement.identical,
                both.ivf_exact_fallbacks,
                both.ivf_search_time.as_secs_f64(),
                both.exact_search_time.as_secs_f64()
            );
            reports.push(serde_json::to_value(&both)?);
        } else {
            let report = evaluate_index(&dataset, &index, &encoder, &options)?;
            println!("{report}");
            reports.push(serde_json::from_str(&report.to_json()?)?);
        }
    }
    if let Some(timings) = encoder.timings() {
        eprintln!(
            "encoding: text tower {:.2} s, image tower {:.2} s, image decoding {:.2} s",
            timings.text_forward.as_secs_f64(),
            timings.image_forward.as_secs_f64(),
            timings.decode.as_secs_f64()
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "encoder": encoder.info(),
            "dataset": dataset.report(),
            "reports": reports,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
