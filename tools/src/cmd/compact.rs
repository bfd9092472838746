//! `fiq-index compact`: rewrite an index without its deleted rows.

use std::path::PathBuf;

use fiq::index::{IndexWriter, IvfOutcome, Retrain};

/// Rewrite an index without its deleted rows, in one atomic commit. Rows are renumbered (keys stay);
/// the IVF index gets the new row ids: its lists are refilled with the trained centroids, or new
/// centroids are trained when the drift measure (`fiq-index info`) says the data has moved away from
/// them (drift ratio above 1.25, or the catalog grown or shrunk twofold since training). The old files
/// are deleted once no reader holds them.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory.
    index: PathBuf,
    /// Train new centroids whatever the drift.
    #[arg(long, conflicts_with = "no_retrain")]
    retrain: bool,
    /// Keep the trained centroids whatever the drift.
    #[arg(long)]
    no_retrain: bool,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let retrain = match (args.retrain, args.no_retrain) {
        (true, _) => Retrain::Always,
        (_, true) => Retrain::Never,
        _ => Retrain::Auto,
    };
    // The IVF refill or retraining sets its own length and message.
    let bar = fiq::progress::bar_if(!args.quiet, 0, "compacting");
    let mut writer = IndexWriter::open(&args.index)?;
    let report = writer.compact(retrain, &bar)?;
    bar.finish_and_clear();
    let ivf = match &report.ivf {
        IvfOutcome::None => "no IVF index".to_owned(),
        IvfOutcome::Refilled => "IVF lists refilled with the trained centroids".to_owned(),
        IvfOutcome::Retrained { reason } => format!("IVF retrained ({reason})"),
        IvfOutcome::Dropped { reason } => format!("IVF index dropped ({reason})"),
    };
    let drift = report
        .drift
        .as_ref()
        .map_or(String::new(), |d| format!(", drift {:.3}", d.ratio));
    println!(
        "{}: version {}: {} rows -> {}{drift}; {ivf}",
        args.index.display(),
        report.generation,
        report.rows_before,
        report.rows_after
    );
    Ok(())
}
