//! `fiq-index info`: what an index holds.

use std::path::PathBuf;

use fiq::index::Index;

/// Show what an index holds: size, dimension, model, segments, ANN index, its drift and settings.
/// Opening reads the manifest and segment headers only; nothing is verified (see `verify`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory.
    index: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let index = Index::open(&args.index)?;
    let manifest = index.snapshot().manifest();
    let drift = index.ivf_drift()?;
    let drift_json = drift.as_ref().map(|d| {
        serde_json::json!({
            "ratio": d.ratio,
            "built_residual": d.built_residual,
            "added_residual": d.added_residual,
            "built_rows": d.built_rows,
            "added_rows": d.added_rows,
            "compact_would_retrain": d.retrain_reason(index.len()),
        })
    });
    let segments: Vec<_> = manifest
        .segments
        .iter()
        .map(|s| serde_json::json!({"file": s.file, "first_id": s.base_id, "rows": s.count, "bytes": s.file_len}))
        .collect();
    let info = serde_json::json!({
        "path": args.index,
        "version": manifest.generation,
        "items": index.len(),
        "deleted": index.total_rows() - index.len(),
        "dim": manifest.dim,
        "vector_type": format!("{:?}", manifest.vector_type).to_lowercase(),
        "model": {"name": manifest.model.name, "fingerprint": manifest.model.fingerprint, "preprocessing": manifest.model.preprocessing},
        "segments": segments,
        "ann_files": manifest.ann_files.iter().map(|a| serde_json::json!({"name": a.name, "bytes": a.entry.len})).collect::<Vec<_>>(),
        "ann_params": manifest.ann_params,
        "ivf_rows": index.ann_record().map(|r| serde_json::json!({
            "built": r.len,
            "appended": r.appended.as_ref().map_or(0, |a| a.len),
            "searched_exactly": index.total_rows() - r.covered_rows() as u64,
        })),
        "ivf_drift": drift_json,
        "settings": manifest.settings,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("index      {}", args.index.display());
        println!("version    {}", manifest.generation);
        println!(
            "items      {} ({} deleted)",
            index.len(),
            index.total_rows() - index.len()
        );
        println!("vectors    {} x {:?}", manifest.dim, manifest.vector_type);
        println!(
            "model      {} {}",
            manifest.model.name, manifest.model.fingerprint
        );
        if !manifest.model.preprocessing.is_empty() {
            println!("preprocess {}", manifest.model.preprocessing);
        }
        println!("segments   {}", manifest.segments.len());
        for s in &manifest.segments {
            println!(
                "  {}  ids {}..{}  {} bytes",
                s.file,
                s.base_id,
                s.base_id + s.count,
                s.file_len
            );
        }
        match index.ann_record() {
            None => println!("ann        none (exact search)"),
            Some(r) => println!(
                "ann        {} ({} lists, default nprobe {}): {} rows in the built lists, {} in the \
                 appended lists, {} not yet filed (searched exactly)",
                r.factory,
                r.nlist,
                r.nprobe,
                r.len,
                r.appended.as_ref().map_or(0, |a| a.len),
                index.total_rows() - r.covered_rows() as u64
            ),
        }
        if let Some(d) = &drift {
            let verdict = d
                .retrain_reason(index.len())
                .unwrap_or_else(|| "compact keeps the centroids".into());
            println!(
                "ivf drift  {:.3} ({} rows added since training; residual {:.4} built, {}; {verdict})",
                d.ratio,
                d.added_rows,
                d.built_residual,
                d.added_residual
                    .map_or("none added".to_owned(), |r| format!("{r:.4} added"))
            );
        }
        for (name, value) in &manifest.settings {
            println!("setting    {name} = {value}");
        }
    }
    Ok(())
}
