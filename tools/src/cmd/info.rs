//! `fiq-index info`: what an index holds.

use std::path::PathBuf;

use fiq::index::Index;

/// Show what an index holds: size, dimension, model, segments, ANN index and settings.
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
        if manifest.ann_files.is_empty() {
            println!("ann        none (exact search)");
        } else {
            println!("ann        {}", manifest.ann_params);
        }
        for (name, value) in &manifest.settings {
            println!("setting    {name} = {value}");
        }
    }
    Ok(())
}
