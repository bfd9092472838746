//! The flags that choose and configure an encoder, shared by every subcommand that encodes.

use std::path::PathBuf;

use anyhow::{bail, Context};
use fiq::encoder::{ClipEncoder, ComputeDevice, EncoderOptions, Normalization, Precision, Resize};

/// Which model encodes, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model directory in the Hugging Face layout (config.json, model.safetensors, tokenizer.json).
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
    /// Loads the encoder these flags describe.
    pub fn load(&self) -> anyhow::Result<ClipEncoder> {
        let options = EncoderOptions {
            device: parse_device(&self.device)?,
            precision: match self.precision.as_str() {
                "f16" => Precision::F16,
                "bf16" => Precision::BF16,
                _ => Precision::F32,
            },
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
        let Some(model) = &self.model else {
            bail!("give the model directory with --model DIR");
        };
        ClipEncoder::load(model, &options)
            .with_context(|| format!("loading model {}", model.display()))
    }
}

fn parse_device(text: &str) -> anyhow::Result<ComputeDevice> {
    if text == "cpu" {
        return Ok(ComputeDevice::Cpu);
    }
    match text.strip_prefix("cuda") {
        Some("") => Ok(ComputeDevice::Cuda(0)),
        Some(rest) => match rest.strip_prefix(':').and_then(|n| n.parse().ok()) {
            Some(ordinal) => Ok(ComputeDevice::Cuda(ordinal)),
            None => bail!("device {text:?}: expected cpu, cuda or cuda:N"),
        },
        None => bail!("device {text:?}: expected cpu, cuda or cuda:N"),
    }
}
