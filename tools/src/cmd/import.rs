//! `fiq-index import`: vectors from a numpy file into a new (or existing) index.

use std::path::PathBuf;

use fiq::pipeline::{import_vectors, ImportOptions};

/// Import float32 vectors from a .npy file and their keys from a text file into an index.
///
/// Vectors are L2-normalized on import (inner product then is cosine similarity). Row i of the .npy
/// file gets the key on line i of the keys file. The index is committed atomically at the end: an
/// interrupted import leaves the index as it was.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A 2-D float32 (or float64) .npy array, one vector per row.
    #[arg(long)]
    vectors: PathBuf,
    /// A text file with one key per line (for FashionIQ, the ASINs), as many lines as rows.
    #[arg(long)]
    keys: PathBuf,
    /// The index directory to create.
    #[arg(long)]
    out: PathBuf,
    /// Append to an existing index at --out instead of creating one.
    #[arg(long)]
    append: bool,
    /// Category stored with every imported item (for example `dress`).
    #[arg(long, default_value = "")]
    category: String,
    /// Name of the model that made the vectors, recorded in the index.
    #[arg(long, default_value = "external")]
    model_name: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = ImportOptions {
        append: args.append,
        category: args.category,
        model_name: args.model_name,
        progress: true,
    };
    let report = import_vectors(&args.vectors, &args.keys, &args.out, &options)?;
    eprintln!("{}: {report}", args.out.display());
    Ok(())
}
