//! `fiq-index import`: vectors from a numpy file into a new (or existing) index.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use fiq::index::{IndexWriter, ItemMeta, ModelInfo};

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
    import(
        &args.vectors,
        &args.keys,
        &args.out,
        args.append,
        &args.category,
        &args.model_name,
    )
}

/// Reads `vectors` and `keys` and adds them to the index at `out` (created unless `append`), in one
/// commit.
pub fn import(
    vectors: &Path,
    keys: &Path,
    out: &Path,
    append: bool,
    category: &str,
    model_name: &str,
) -> anyhow::Result<()> {
    let matrix = fiq::npy::read_matrix(vectors)?;
    let keys_path = keys;
    let keys = fiq::keys::read_keys(keys_path)?;
    if keys.len() != matrix.rows {
        bail!(
            "{} has {} rows but {} has {} keys; they must match one to one",
            vectors.display(),
            matrix.rows,
            keys_path.display(),
            keys.len()
        );
    }
    let mut writer = if append {
        IndexWriter::open(out)?
    } else {
        let model = ModelInfo {
            name: model_name.to_owned(),
            fingerprint: String::new(),
            preprocessing: String::new(),
        };
        IndexWriter::create(out, matrix.dim, model)?
    };
    if writer.dim() != matrix.dim {
        bail!(
            "{} holds {}-dimensional vectors, the index {}",
            vectors.display(),
            matrix.dim,
            writer.dim()
        );
    }
    let bar = fiq::progress::bar(matrix.rows as u64, "importing");
    let meta = ItemMeta {
        category: category.to_owned(),
        source: String::new(),
    };
    for (i, key) in keys.iter().enumerate() {
        writer
            .add(key, matrix.row(i), &meta)
            .with_context(|| format!("row {i} of {}", vectors.display()))?;
        if i % 4096 == 0 {
            bar.set_position(i as u64);
        }
    }
    bar.finish_and_clear();
    let generation = writer.commit()?;
    eprintln!(
        "imported {} vectors of dimension {} into {} (version {generation})",
        matrix.rows,
        matrix.dim,
        out.display()
    );
    Ok(())
}
