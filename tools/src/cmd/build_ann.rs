//! `fiq-index build`: an IVF index over a vector file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use fiq::ann::{AnnIndex, AnnParams, VectorSource};

use super::ann_store::{AnnDir, MappedNpy};

/// Build an IVF (FAISS) index over L2-normalized vectors.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vectors: a 2-D little-endian f32 .npy, one L2-normalized row per item (row i is id i).
    #[arg(long)]
    pub vectors: PathBuf,
    /// IVF-Flat with this many lists (shorthand for --factory IVF<N>,Flat).
    #[arg(long, conflicts_with = "factory")]
    pub ivf: Option<usize>,
    /// Any FAISS IVF factory string: IVF1024,Flat | IVF1024,SQ8 | IVF1024,PQ64 ...
    #[arg(long)]
    pub factory: Option<String>,
    /// Vectors sampled to train k-means (default 64 * nlist).
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Seed of the training sample.
    #[arg(long, default_value_t = 0x000F_1A55)]
    pub seed: u64,
    /// Default lists probed per query until `tune` records one (default nlist / 32).
    #[arg(long)]
    pub nprobe: Option<usize>,
    /// Compressed codes: candidates re-scored exactly per result.
    #[arg(long, default_value_t = 4)]
    pub rerank_factor: usize,
    /// Vectors added per FAISS call.
    #[arg(long, default_value_t = 65_536)]
    pub batch: usize,
    /// Train k-means and add on this CUDA device (builds with the `faiss-gpu` feature only).
    #[cfg(feature = "faiss-gpu")]
    #[arg(long)]
    pub gpu: Option<usize>,
    /// The output directory (created).
    pub out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let factory = match (&args.factory, args.ivf) {
        (Some(f), None) => f.clone(),
        (None, Some(nlist)) => format!("IVF{nlist},Flat"),
        _ => bail!("give --ivf NLIST or --factory STRING"),
    };
    let vectors_path = std::path::absolute(&args.vectors)
        .with_context(|| format!("resolving {}", args.vectors.display()))?;
    let vectors = MappedNpy::open(&vectors_path, false)?;
    vectors.check_normalized()?;
    let mut params = AnnParams::with_factory(factory)
        .with_seed(args.seed)
        .with_rerank_factor(args.rerank_factor);
    params.train_size = args.train_size;
    params.nprobe = args.nprobe;
    params.add_batch = args.batch;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg:>6} [{bar:40}] {pos}/{len} {elapsed}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    let start = Instant::now();
    #[cfg(feature = "faiss-gpu")]
    let ann = match args.gpu {
        Some(device) => AnnIndex::build_on_gpu(&vectors, &params, device, &bar)?,
        None => AnnIndex::build(&vectors, &params, &bar)?,
    };
    #[cfg(not(feature = "faiss-gpu"))]
    let ann = AnnIndex::build(&vectors, &params, &bar)?;
    let built = start.elapsed();
    let files = ann.write_files(&args.out)?;
    AnnDir {
        dir: args.out.clone(),
        vectors_path,
        files: files.clone(),
    }
    .write()?;
    remove_superseded(&args.out, &files[0].name);
    let r = ann.record();
    println!(
        "built {} over {} x {} in {:.1} s (trained on {}, nlist {}, default nprobe {}, FAISS {})",
        r.factory,
        vectors.len(),
        vectors.dim(),
        built.as_secs_f64(),
        r.trained_on,
        r.nlist,
        r.nprobe,
        r.faiss_simd
    );
    for f in &files {
        println!(
            "wrote {} ({} bytes, crc32 {:08x})",
            args.out.join(&f.name).display(),
            f.len,
            f.crc32
        );
    }
    Ok(())
}

/// Deletes FAISS files of earlier builds in `dir`; the manifest no longer names them. Best effort: a file
/// left behind wastes space but is never read.
fn remove_superseded(dir: &std::path::Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("ann-ivf-") && name.ends_with(".faiss") && name != keep {
            std::fs::remove_file(entry.path()).ok();
        }
    }
}
