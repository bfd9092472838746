//! `fiq-index embed`: encode images or texts with a CLIP checkpoint into a float32 `.npy` matrix.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use fiq::encoder::{Encoder, ImageSource};

/// Encode images or texts into L2-normalized float32 rows of an .npy file, in input order.
///
/// An image that cannot be read or decoded is reported on stderr and skipped; `--rows` lists which input
/// each row came from, so skipped images never shift rows silently.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: crate::model_args::ModelArgs,
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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let encoder = args.model.load()?;

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
                        eprintln!("skipped: {}", fiq::error::chain(&error));
                    }
                }
            }
            if skipped > 0 {
                eprintln!("{skipped} of {} images skipped", paths.len());
            }
            (labels, vectors)
        }
    };

    let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
    fiq::npy::write_matrix(&args.out, encoder.dim(), &flat)?;
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
        encoder.dim(),
        args.out.display(),
        encoder.info().name,
        encoder.info().fingerprint
    );
    Ok(())
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
