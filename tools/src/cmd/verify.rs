//! `fiq-index verify`: check every checksum.

use std::path::PathBuf;

use fiq::index::Index;

/// Check every checksum and structural rule of an index: headers, sections, keys, metadata, tombstones,
/// ANN files, and that every vector is finite. Reads the whole index. Exits non-zero on the first problem,
/// naming the file and what is wrong.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory.
    index: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let index = Index::open(&args.index)?;
    let report = index.verify()?;
    println!(
        "ok: {} version {}: {} segments, {} rows ({} deleted), {} ANN files, {:.1} MiB checked in {:.2?}",
        args.index.display(),
        report.generation,
        report.segments,
        report.rows,
        report.deleted,
        report.ann_files,
        report.bytes_checked as f64 / (1 << 20) as f64,
        started.elapsed()
    );
    Ok(())
}
