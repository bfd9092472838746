//! The flags that choose and configure an encoder, shared by every subcommand that encodes.

use std::path::PathBuf;

use anyhow::Context;
use fiq::encoder::{
    detect_family, load_encoder, ClipEncoder, ComputeDevice, EncoderOptions, Family, Normalization,
    Precision, Resize,
};

/// Which model encodes, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model directory: transformers CLIP (config.json, model.safetensors, tokenizer.json), OpenCLIP
    /// (open_clip_config.json, open_clip_model.safetensors, tokenizer.json) or transformers BLIP retrieval.
    /// Default: fiq's built-in model (models/fiq-default in the repository, compiled into the binary;
    /// $FIQ_DEFAULT_MODEL names another), a small CLIP trained only on synthetic FashionIQ garments; pass
    /// a real checkpoint for real catalogs.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Model family: `auto` (told from the directory's files), `clip`, `openclip` or `blip`.
    #[arg(long, value_parser = ["auto", "clip", "openclip", "blip"], default_value = "auto")]
    pub arch: String,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// How images are squared: `shortside` (CLIP's resize + center crop), `targetpad` (CLIP4Cir),
    /// `squash` (resize to the input size, aspect ignored: BLIP, the source study), or `auto`: the family's
    /// own (squash for BLIP, shortside otherwise).
    #[arg(long, value_parser = ["auto", "shortside", "targetpad", "squash"], default_value = "auto")]
    pub resize: String,
    /// Largest long/short side ratio `targetpad` leaves unpadded.
    #[arg(long, default_value_t = 1.25)]
    pub targetpad_ratio: f32,
    /// Pixel statistics: `clip`, `imagenet` (the source study's, with `--resize squash`), or `auto`: the
    /// family's own (`clip` for all three).
    #[arg(long, value_parser = ["auto", "clip", "imagenet"], default_value = "auto")]
    pub normalization: String,
    /// `cpu`, or `cuda:N` (needs a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// `f32`; `bf16`: on GPUs, and on CPUs with AVX512-BF16 (linear layers in bf16 with f32
    /// accumulation, on AMX tiles where the CPU has them; 3.5x f32's images/s on a Zen 5 EPYC, embeddings
    /// within 0.01 of f32; refused on CPUs without the units); `f16`: GPUs.
    #[arg(long, value_parser = ["f32", "f16", "bf16"], default_value = "f32")]
    pub precision: String,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
}

impl ModelArgs {
    /// The defaults of every flag, with `model` (for commands that take only `--model`); the defaults
    /// come from the flag definitions above, so there is one place that states them.
    pub fn for_model(model: Option<PathBuf>) -> ModelArgs {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: ModelArgs,
        }
        let mut args = <Defaults as clap::Parser>::parse_from(["fiq-index"]).args;
        args.model = model;
        args
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
        let family = match self.arch.as_str() {
            "auto" => detect_family(&model)
                .with_context(|| format!("loading model {}", model.display()))?,
            name => name.parse::<Family>().map_err(anyhow::Error::msg)?,
        };
        let (default_resize, default_normalization) = family.default_preprocessing();
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
                "shortside" => Resize::ShortSide,
                "squash" => Resize::Squash,
                _ => default_resize,
            },
            normalization: match self.normalization.as_str() {
                "imagenet" => Normalization::ImageNet,
                "clip" => Normalization::Clip,
                _ => default_normalization,
            },
            batch_size: self.batch_size,
            progress: !self.quiet,
        };
        load_encoder(&model, Some(family), &options)
            .with_context(|| format!("loading model {}", model.display()))
    }
}
