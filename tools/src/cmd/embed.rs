//! `fiq-index embed`: encode images or texts with a CLIP checkpoint into a float32 `.npy` matrix.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use fiq::encoder::{
    ClipEncoder, ComputeDevice, Encoder, EncoderOptions, ImageSource, Normalization, Precision,
    Resize,
};
use npyz::WriterBuilder;

/// Encode images or texts into L2-normalized float32 rows of an .npy file, in input order.
///
/// An image that cannot be read or decoded is reported on stderr and skipped; `--rows` lists which input
/// each row came from, so skipped images never shift rows silently.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory in the Hugging Face layout (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// Image files, or directories whose image files (jpg, jpeg, png, webp, bmp, tiff) are taken in
    /// name order.
    #[arg(long, num_args = 1.., required_unless_present = "texts", conflicts_with = "texts")]
    pub images: Vec<PathBuf>,
    /// A UTF-8 text file with one text per line.
    #[arg(long)]
    pub texts: Option<PathBuf>,
    /// Output .npy file: shape (rows, embed_dim), little-endian float32.
    #[arg(long)]
    pub out: PathBuf,
    /// Optional text file listing, line by line, the input (path or line number) of each output row.
    #[arg(long)]
    pub rows: Option<PathBuf>,
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
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = EncoderOptions {
        device: parse_device(&args.device)?,
        precision: match args.precision.as_str() {
            "f16" => Precision::F16,
            "bf16" => Precision::BF16,
            _ => Precision::F32,
        },
        resize: match args.resize.as_str() {
            "targetpad" => Resize::TargetPad {
                ratio: args.targetpad_ratio,
            },
            _ => Resize::ShortSide,
        },
        normalization: match args.normalization.as_str() {
            "imagenet" => Normalization::ImageNet,
            _ => Normalization::Clip,
        },
        batch_size: args.batch_size,
        progress: !args.quiet,
    };
    let encoder = ClipEncoder::load(&args.model, &options)
        .with_context(|| format!("loading model {}", args.model.display()))?;

    let (labels, vectors) = match &args.texts {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let lines: Vec<&str> = text.lines().collect();
            let vectors = encoder
                .encode_texts(&lines)
                .with_context(|| format!("encoding texts of {}", path.display()))?;
            let labels = (1..=lines.len())
                .map(|n| format!("{}:{n}", path.display()))
                .collect();
            (labels, vectors)
        }
        None => {
            let paths = expand_image_paths(&args.images)?;
            let sources: Vec<ImageSource<'_>> = paths.iter().map(ImageSource::from).collect();
            let results = encoder.encode_images(&sources).context("encoding images")?;
            let mut labels = Vec::new();
            let mut vectors = Vec::new();
            let mut skipped = 0usize;
            for (path, result) in paths.iter().zip(results) {
                match result {
                    Ok(vector) => {
                        labels.push(path.display().to_string());
                        vectors.push(vector);
                    }
                    Err(error) => {
                        skipped += 1;
                        eprintln!("skipped: {}", error_chain(&error));
                    }
                }
            }
            if skipped > 0 {
                eprintln!("{skipped} of {} images skipped", paths.len());
            }
            (labels, vectors)
        }
    };

    write_npy(&args.out, &vectors, encoder.info().embed_dim)?;
    if let Some(rows) = &args.rows {
        let mut file = BufWriter::new(
            std::fs::File::create(rows).with_context(|| format!("creating {}", rows.display()))?,
        );
        for label in &labels {
            writeln!(file, "{label}")?;
        }
        file.flush()
            .with_context(|| format!("writing {}", rows.display()))?;
    }
    eprintln!(
        "wrote {} rows x {} to {} (model {}, fingerprint {})",
        vectors.len(),
        encoder.info().embed_dim,
        args.out.display(),
        encoder.info().name,
        encoder.info().fingerprint
    );
    Ok(())
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

fn expand_image_paths(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    const EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"];
    let mut paths = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("listing {}", input.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                })
                .collect();
            found.sort();
            paths.extend(found);
        } else {
            // A missing file is reported per image by the encoder, like a corrupt one.
            paths.push(input.clone());
        }
    }
    Ok(paths)
}

fn write_npy(path: &Path, vectors: &[Vec<f32>], dim: usize) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[vectors.len() as u64, dim as u64])
        .writer(BufWriter::new(file))
        .begin_nd()
        .with_context(|| format!("writing {}", path.display()))?;
    for vector in vectors {
        writer
            .extend(vector.iter().copied())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    writer
        .finish()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
