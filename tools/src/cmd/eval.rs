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
    /// How image and text vectors are fused: `sum`, `weighted` (see --alpha), `text` or `image` only,
    /// or `combiner`: a learned fusion trained by `fiq-index train` (see --combiner).
    #[arg(long, value_parser = ["sum", "weighted", "text", "image", "combiner"], default_value = "sum")]
    fusion: String,
    /// For --fusion combiner: a model folder written by `fiq-index train` (its `best/` or `last/`), trained
    /// on features of the same model as the index.
    #[arg(long, required_if_eq("fusion", "combiner"))]
    combiner: Option<PathBuf>,
    /// The text's weight for --fusion weighted.
    #[arg(long, default_value_t = 0.5)]
    alpha: f32,
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
    let index = Index::open(&args.index)?;
    let encoder = args.model.load()?;
    // The comparison tables name the encoder and preprocessing each row came from.
    let info = encoder.info();
    let encoder_json = serde_json::json!({"name": info.name, "fingerprint": info.fingerprint,
                                          "preprocessing": info.preprocessing});
    println!(
        "encoder {} (fingerprint {}), preprocessing {}\n",
        info.name, info.fingerprint, info.preprocessing
    );
    let chosen = match args.fusion.as_str() {
        "weighted" => Fusion::Weighted { alpha: args.alpha },
        "text" => Fusion::Weighted { alpha: 1.0 },
        "image" => Fusion::Weighted { alpha: 0.0 },
        "combiner" => learned_fusion(args.combiner.as_deref(), index.dim())?,
        _ => Fusion::Sum,
    };
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
                 search {:.2} s (IVF) vs {:.2} s (exact)\n",
                both.agreement.queries,
                overlap.join(", "),
                both.agreement.identical,
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
    for report in &mut reports {
        if let Some(fields) = report.as_object_mut() {
            fields.insert("encoder".into(), encoder_json.clone());
        }
    }
    if let Some(path) = &args.json {
        let json = &reports;
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Loads a trained Combiner (or projection) and checks that it fuses vectors of the index's dimension.
fn learned_fusion(dir: Option<&std::path::Path>, dim: usize) -> anyhow::Result<Fusion> {
    let dir = dir.context("--fusion combiner needs --combiner DIR")?;
    let model = fiq::fusion::Combiner::load_cpu(dir)
        .with_context(|| format!("loading the combiner {}", dir.display()))?;
    let feature_dim = model.config().feature_dim;
    anyhow::ensure!(
        feature_dim == dim,
        "the combiner {} fuses {feature_dim}-dimensional features, the index holds {dim}",
        dir.display()
    );
    Ok(Fusion::Combiner(std::sync::Arc::new(model)))
}
