//! The flags that choose how a reference image and a text are fused (`--fusion`, `--alpha`,
//! `--combiner`), shared by `eval` and `query`.

use std::path::PathBuf;

use anyhow::Context;
use fiq::fusion::Fusion;

/// How image and text vectors become one query vector.
#[derive(Debug, Clone, clap::Args)]
pub struct FusionArgs {
    /// How image and text vectors are fused: `sum`, `weighted` (see --alpha), `text` or `image` only,
    /// or `combiner`: a learned fusion trained by `fiq-index train` (see --combiner).
    #[arg(long, value_parser = ["sum", "weighted", "text", "image", "combiner"], default_value = "sum")]
    pub fusion: String,
    /// For --fusion combiner: a model folder written by `fiq-index train` (its `best/` or `last/`),
    /// trained on features of the same model as the index.
    #[arg(long, required_if_eq("fusion", "combiner"))]
    pub combiner: Option<PathBuf>,
    /// The text's weight for --fusion weighted (0: image only, 1: text only).
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f32,
}

impl FusionArgs {
    /// The fusion these flags describe, for vectors of `dim` components.
    pub fn fusion(&self, dim: usize) -> anyhow::Result<Fusion> {
        Ok(match self.fusion.as_str() {
            "weighted" => Fusion::Weighted { alpha: self.alpha },
            "text" => Fusion::Weighted { alpha: 1.0 },
            "image" => Fusion::Weighted { alpha: 0.0 },
            "combiner" => learned_fusion(self.combiner.as_deref(), dim)?,
            _ => Fusion::Sum,
        })
    }
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
