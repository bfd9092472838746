//! `fiq-index add`: add items to an existing index (vectors, or images encoded by the model), replacing
//! items with the same key, in one commit.

use std::path::PathBuf;

use anyhow::Context;

/// Add items to an existing index in one atomic commit: vectors from a .npy file with their keys, or
/// every image file in a directory (key = file name without extension), encoded by the model.
///
/// A key already in the index is replaced: its old row is deleted in the same commit. A crash or kill at
/// any moment leaves the index as it was or with every item added, never in between. Images that cannot
/// be read are skipped and listed in INDEX/skipped-images.tsv. Rows added after the IVF index was built
/// are searched exactly until `fiq-index compact` (or a rebuild) takes them into the IVF lists.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory.
    index: PathBuf,
    /// A directory of image files to encode (jpg, jpeg, png, webp, tif, tiff, bmp).
    #[arg(long, conflicts_with_all = ["vectors", "keys"], required_unless_present = "vectors")]
    images: Option<PathBuf>,
    /// A 2-D float32 (or float64) .npy array, one vector per row.
    #[arg(long, requires = "keys")]
    vectors: Option<PathBuf>,
    /// One key per line, row i of --vectors gets line i.
    #[arg(long, requires = "vectors")]
    keys: Option<PathBuf>,
    /// Category stored with every added item (for example `dress`).
    #[arg(long, default_value = "")]
    category: String,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let report = match (&args.images, &args.vectors, &args.keys) {
        (Some(images), _, _) => {
            let encoder = args.model.load()?;
            let progress = !args.model.quiet;
            fiq::pipeline::upsert_image_dir(&args.index, images, &args.category, &encoder, progress)
                .with_context(|| format!("adding the images of {}", images.display()))?
        }
        (None, Some(vectors), Some(keys)) => {
            let options = fiq::pipeline::ImportOptions {
                append: true,
                category: args.category.clone(),
                model_name: String::new(),
                progress: !args.model.quiet,
            };
            let report = fiq::pipeline::import_vectors(vectors, keys, &args.index, &options)
                .with_context(|| {
                    format!("adding {} to {}", vectors.display(), args.index.display())
                })?;
            fiq::pipeline::AddReport {
                added: report.rows - report.replaced,
                replaced: report.replaced,
                skipped: Vec::new(),
                generation: report.generation,
            }
        }
        _ => anyhow::bail!("give --images DIR, or --vectors FILE.npy with --keys FILE.txt"),
    };
    if !report.skipped.is_empty() {
        let log = crate::output::write_skipped_log(&args.index, &report.skipped)?;
        eprintln!(
            "{} images skipped; see {}",
            report.skipped.len(),
            log.display()
        );
    }
    println!(
        "{}: version {}: {} added, {} replaced, {} skipped",
        args.index.display(),
        report.generation,
        report.added,
        report.replaced,
        report.skipped.len()
    );
    Ok(())
}
