//! `fiq-index eval`: Recall and Precision at 10 and 50 by the FashionIQ protocol.

use std::path::PathBuf;

use anyhow::Context;
use fiq::eval::EvalOptions;
use fiq::fusion::Fusion;
use fiq::index::Index;
use fiq::pipeline::evaluate_index;

/// Evaluate composed retrieval on a FashionIQ split: each triplet's reference image and its two
/// captions ("C1 and c2") form a query, searched in its category's gallery.
///
/// Recall@K: the fraction of queries whose target is among the first K results. Precision@K: the number
/// of relevant results in the first K divided by K, averaged over queries; FashionIQ has exactly one
/// relevant target per query, so P@K = R@K / K. Averages are unweighted means over categories, as in the
/// papers. The reference image stays in the gallery (FashionIQ protocol) unless --exclude-reference.
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
    #[command(flatten)]
    dataset: crate::dataset_args::DatasetArgs,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dataset = args.dataset.load()?;
    let index = Index::open(&args.index)?;
    let encoder = args.model.load()?;
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
    let mut reports = Vec::new();
    for fusion in fusions {
        let options = EvalOptions {
            fusion,
            exclude_reference: args.exclude_reference,
            ..EvalOptions::default()
        };
        let report = evaluate_index(&dataset, &index, &encoder, &options)?;
        println!("{report}");
        reports.push(report);
    }
    if let Some(path) = &args.json {
        let json: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| Ok(serde_json::from_str(&r.to_json()?)?))
            .collect::<anyhow::Result<_>>()?;
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
