//! `fiq-index remove`: delete items by key, in one commit.

use std::path::PathBuf;

use anyhow::Context;
use fiq::index::IndexWriter;

/// Delete the items named in a keys file (one key per line) from an index, in one atomic commit. Keys
/// not in the index are reported and otherwise ignored, so removing twice (for example after a crash)
/// is harmless. A removed key never comes back unless it is added again; its row is reclaimed by
/// `fiq-index compact`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory.
    index: PathBuf,
    /// One key per line.
    #[arg(long)]
    keys: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let keys = fiq::keys::read_keys(&args.keys)?;
    let mut writer = IndexWriter::open(&args.index)?;
    let report = writer
        .remove_keys(&keys)
        .with_context(|| format!("removing the keys of {}", args.keys.display()))?;
    let generation = writer.commit()?;
    if !report.missing.is_empty() {
        let shown: Vec<&str> = report.missing.iter().take(5).map(String::as_str).collect();
        eprintln!(
            "{} keys were not in the index (first: {})",
            report.missing.len(),
            shown.join(", ")
        );
    }
    println!(
        "{}: version {generation}: {} removed, {} not found",
        args.index.display(),
        report.removed,
        report.missing.len()
    );
    Ok(())
}
