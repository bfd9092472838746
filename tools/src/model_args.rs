//! The flags that choose and configure an encoder, shared by every subcommand that encodes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use fiq::encoder::{ClipEncoder, ComputeDevice, EncoderOptions, Normalization, Precision, Resize};

/// The built-in default model: a small CLIP trained on fiq's synthetic FashionIQ garments
/// (`tools/train_default_model.py`), committed in the repository at `models/fiq-default`. The path is fixed
/// at compile time, so a binary moved away from its checkout needs `--model`.
pub const DEFAULT_MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/fiq-default");

/// Which model encodes, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model directory in the Hugging Face layout (config.json, model.safetensors, tokenizer.json).
    /// Default: fiq's built-in model (models/fiq-default in the repository), a small CLIP trained only on
    /// synthetic FashionIQ garments; pass a real CLIP checkpoint for real catalogs.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// How images are squared: `shortside` (CLIP's resize + center crop) or `targetpad` (CLIP4Cir).
    #[arg(long, value_parser = ["shortside", "targetpad"], default_value = "shortside")]
    pub resize: String,
    /// Largest long/short side ratio `targetpad` leaves unpadded.
    #[arg(long, default_value_t = 1.25)]
    pub targetpad_ratio: f32,
    /// Pixel statistics: `clip` or `imagenet`.
    #[arg(long, value_parser = ["clip", "imagenet"], default_value = "clip")]
    pub normalization: String,
    /// `cpu`, or `cuda:N` (needs a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// `f32`, `f16` or `bf16` (the last two for GPUs).
    #[arg(long, value_parser = ["f32", "f16", "bf16"], default_value = "f32")]
    pub precision: String,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
}

impl ModelArgs {
    /// The model directory: `--model`, or the built-in default model if it is present.
    pub fn model_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.model {
            Some(dir) => Ok(dir.clone()),
            None => default_model_dir(Path::new(DEFAULT_MODEL_DIR)),
        }
    }

    /// Loads the encoder these flags describe.
    pub fn load(&self) -> anyhow::Result<ClipEncoder> {
        let model = self.model_dir()?;
        let options = EncoderOptions {
            device: self
                .device
                .parse::<ComputeDevice>()
                .map_err(anyhow::Error::msg)?,
            precision: self
                .precision
                .parse::<Precision>()
                .map_err(anyhow::Error::msg)?,
            resize: match self.resize.as_str() {
                "targetpad" => Resize::TargetPad {
                    ratio: self.targetpad_ratio,
                },
                _ => Resize::ShortSide,
            },
            normalization: match self.normalization.as_str() {
                "imagenet" => Normalization::ImageNet,
                _ => Normalization::Clip,
            },
            batch_size: self.batch_size,
            progress: !self.quiet,
        };
        ClipEncoder::load(&model, &options)
            .with_context(|| format!("loading model {}", model.display()))
    }
}

/// `dir` if it holds a model's config, else an error that names it and says what to do.
fn default_model_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.join("config.json").is_file() {
        return Ok(dir.to_path_buf());
    }
    bail!(
        "no --model given and the built-in default model is missing at {} \
         (it ships in the fiq repository as models/fiq-default); pass --model DIR with a Hugging Face \
         CLIP directory (config.json, model.safetensors, tokenizer.json)",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_default_model_names_the_path_and_the_flag() {
        let missing = Path::new("/nonexistent/fiq/models/fiq-default");
        let message = default_model_dir(missing).unwrap_err().to_string();
        assert!(
            message.contains("/nonexistent/fiq/models/fiq-default") && message.contains("--model"),
            "{message}"
        );
    }

    #[test]
    fn default_model_dir_is_the_committed_model() {
        let dir = default_model_dir(Path::new(DEFAULT_MODEL_DIR)).unwrap();
        assert!(dir.ends_with("models/fiq-default"), "{}", dir.display());
    }
}
