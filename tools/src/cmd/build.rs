//! `fiq-index build`: encode a FashionIQ catalog into an index.

use std::path::PathBuf;

use anyhow::Context;
use fiq::pipeline::{build_catalog, BuildOptions};

/// Encode the gallery images of a FashionIQ tree into an index (created if missing).
///
/// Resumable: the index is committed every --commit-every images, and a rerun skips images already in
/// it. Unreadable images are skipped and listed in INDEX/skipped-images.tsv, never aborting the build.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory to create or resume.
    #[arg(long)]
    out: PathBuf,
    /// Images encoded between commits.
    #[arg(long, default_value_t = 1024)]
    commit_every: usize,
    #[command(flatten)]
    dataset: crate::dataset_args::DatasetArgs,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dataset = args.dataset.load()?;
    let encoder = args.model.load()?;
    let options = BuildOptions {
        commit_every: args.commit_every,
        progress: !args.model.quiet,
    };
    let report = build_catalog(&dataset, &encoder, &args.out, &options)?;
    if !report.skipped.is_empty() {
        let log = args.out.join("skipped-images.tsv");
        let lines: String = report
            .skipped
            .iter()
            .map(|s| {
                format!(
                    "{}\t{}\t{}\n",
                    s.name,
                    s.path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    s.reason
                )
            })
            .collect();
        std::fs::write(&log, lines).with_context(|| format!("writing {}", log.display()))?;
        eprintln!(
            "{} images skipped; see {}",
            report.skipped.len(),
            log.display()
        );
    }
    eprintln!(
        "{}: added {} images ({} already present); encode {:.1?}, index {:.1?}",
        args.out.display(),
        report.added,
        report.already_present,
        report.encode_time,
        report.index_time
    );
    Ok(())
}
