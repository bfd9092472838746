//! The flags that choose and configure an encoder, shared by every subcommand that encodes.

use std::path::PathBuf;

use anyhow::Context;
use fiq::encoder::{ClipEncoder, ComputeDevice, EncoderOptions, Normalization, Precision, Resize};

/// Which model encodes, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model directory in the Hugging Face layout (config.json, model.safetensors, tokenizer.json).
    /// Default: fiq's built-in model (models/fiq-default in the repository, compiled into the binary;
    /// $FIQ_DEFAULT_MODEL names another), a small CLIP trained only on synthetic FashionIQ garments;
    /// pass a real CLIP checkpoint for real catalogs.
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
    /// The defaults of every flag, with `model` (for commands that take only `--model`).
    pub fn for_model(model: Option<PathBuf>) -> ModelArgs {
        ModelArgs {
            model,
            batch_size: 32,
            resize: "shortside".into(),
            targetpad_ratio: 1.25,
            normalization: "clip".into(),
            device: "cpu".into(),
            precision: "f32".into(),
            quiet: false,
        }
    }

    /// The model directory: `--model`, or the built-in default model if it is present.
    pub fn model_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.model {
            Some(dir) => Ok(dir.clone()),
            None => crate::default_model::dir(),
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
